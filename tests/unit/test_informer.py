"""A watch the server refuses backs off to minutes; one that broke comes back within seconds.

A refused watch (401, 403) stays refused until someone changes a permission, and every try
is a request to the central cluster: a namespace that a tenant names and the credentials
may not read must not cost one every 30 s for ever. A broken watch, or a server that is
down, is retried within 30 s at most, so that imports follow moves soon after it is back.
"""

from __future__ import annotations

import pytest

from shared_services import informer
from shared_services.kube import KubeError


def _delays(error: KubeError, tries: int) -> list[float]:
    delays, delay = [], informer.BACKOFF_START
    for _ in range(tries):
        delay = informer.next_backoff(delay, error)
        delays.append(delay)
    return delays


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_watch_backs_off_to_minutes(status: int) -> None:
    delays = _delays(KubeError(status, "Forbidden", "services is forbidden"), 20)
    assert max(delays) == informer.REFUSED_BACKOFF_MAX
    assert informer.REFUSED_BACKOFF_MAX >= 120
    assert delays == sorted(delays)


@pytest.mark.parametrize("status", [0, 404, 429, 500, 503])
def test_a_broken_watch_comes_back_within_seconds(status: int) -> None:
    assert max(_delays(KubeError(status, "Error", "broken"), 20)) <= 30
