"""The one reader of metrics pages that the tests and the benchmark share."""

from __future__ import annotations

from harness.operator import total

PAGE = """\
# HELP apiserver_request_duration_seconds [STABLE] Response latency distribution.
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{resource="services",verb="POST",le="0.1"} 3
apiserver_request_duration_seconds_sum{resource="services",verb="POST"} 0.75
apiserver_request_duration_seconds_count{resource="services",verb="POST"} 4
apiserver_request_duration_seconds_sum{resource="endpoints",verb="POST"} 0.25
apiserver_request_duration_seconds_sum_other{resource="services"} 100
# TYPE shared_services_leading gauge
shared_services_leading 1
"""


def test_a_metric_is_the_sum_of_the_samples_whose_labels_include_the_given() -> None:
    name = "apiserver_request_duration_seconds_sum"
    assert total(PAGE, name) == 1.0
    assert total(PAGE, name, resource="services") == 0.75
    assert total(PAGE, name, resource="services", verb="POST") == 0.75
    assert total(PAGE, name, resource="services", verb="GET") == 0.0
    assert total(PAGE, "apiserver_request_duration_seconds_count") == 4.0


def test_a_sample_without_labels_and_an_absent_metric() -> None:
    assert total(PAGE, "shared_services_leading") == 1.0
    assert total(PAGE, "shared_services_leading", cluster="a") == 0.0
    assert total(PAGE, "shared_services_missing") == 0.0
