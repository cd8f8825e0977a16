"""The Service range the API server names when it refuses a ClusterIP outside it.

Before Kubernetes 1.33 no ServiceCIDR object says what the Service range is, so the
operator asks with a dry-run create of a Service whose ClusterIP lies outside any sane
range, and reads the range from the refusal. These are the API server's own words
(``ErrNotInRange`` of its allocator, and the family check of Service validation); anything
else, an admission policy's refusal say, names no range and is not mistaken for one.
"""

from __future__ import annotations

import ipaddress

import pytest

from shared_services.networks import named_range, pod_addresses, pod_fields


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            # Kubernetes 1.30's words, verbatim.
            'Service "shared-services-range-probe" is invalid: spec.clusterIPs: Invalid value: '
            '[]string{"203.0.113.254"}: failed to allocate IP 203.0.113.254: the provided IP '
            "(203.0.113.254) is not in the valid range. The range of valid IPs is 10.96.0.0/16",
            ipaddress.ip_network("10.96.0.0/16"),
        ),
        (
            'spec.clusterIPs: Invalid value: []string{"2001:db8:ffff::fffe"}: failed to '
            "allocate IP 2001:db8:ffff::fffe: the provided IP (2001:db8:ffff::fffe) is not in "
            "the valid range. The range of valid IPs is 2001:db8:96::/112",
            ipaddress.ip_network("2001:db8:96::/112"),
        ),
        (
            'Service "x" is invalid: spec.ipFamilies[0]: Invalid value: "IPv6": not configured '
            "on this cluster",
            "none",
        ),
        ("admission policy 'x' denied request: failed expression", None),
        ("The range of valid IPs is 10.96.0.1/16", None),  # not a range as a range is written
        ("The range of valid IPs is banana/16", None),
    ],
)
def test_the_range_is_read_from_the_refusal_and_only_from_it(
    message: str, expected: object
) -> None:
    assert named_range(message) == expected


def test_a_pod_is_kept_as_its_addresses_and_hostile_ones_are_skipped() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "n", "uid": "u", "resourceVersion": "9"},
        "spec": {"containers": [{"name": "c", "image": "app:1", "env": [{"x": "y" * 1000}]}]},
        "status": {
            "podIP": "10.50.0.1",
            "podIPs": [{"ip": "10.50.0.1"}, {"ip": "2001:db8:50::1"}, {"ip": 7}, {"ip": "x"}],
            "containerStatuses": [{"name": "c", "ready": True}],
        },
    }
    kept = pod_fields(pod)
    assert kept == {
        "metadata": {"name": "p", "namespace": "n", "uid": "u", "resourceVersion": "9"},
        "status": {"podIPs": [{"ip": "10.50.0.1"}, {"ip": "2001:db8:50::1"}, {"ip": "x"}]},
    }
    assert pod_addresses(kept) == (
        ipaddress.ip_address("10.50.0.1"),
        ipaddress.ip_address("2001:db8:50::1"),
    )
    # Only podIP, as some clusters still fill it alone.
    assert pod_fields({"status": {"podIP": "10.50.0.2"}})["status"] == {
        "podIPs": [{"ip": "10.50.0.2"}]
    }
    assert pod_addresses({"status": {"podIPs": "10.50.0.3"}}) == ()
