"""The rules that keep two replicas from leading at once, on a fake clock.

- A standby judges the lease expired only by its own clock: a whole lease duration after it
  last saw the record change. The holder's timestamps are never compared with it, however
  far they are off; they only make a renewal a change.
- A leader is certain of its leadership only until the start of its last successful renewal
  plus the renew deadline, which is shorter than the lease duration, so it stops writing
  before any standby can take over.
- Timings that break that margin are refused, as client-go refuses them.
- A client whose leadership is not certain sends no write at all (a distinct error, raised
  before anything goes on the wire); reads still go out.
"""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from shared_services import leader
from shared_services.kube import Fenced, Kube, KubeError
from shared_services.leader import Observation, Term, check_timing

DURATION, DEADLINE, RETRY = leader.LEASE_DURATION, leader.RENEW_DEADLINE, leader.RETRY_PERIOD


def _record(holder: str, renew: str, *, duration: int = 15) -> dict[str, object]:
    return {"holderIdentity": holder, "leaseDurationSeconds": duration, "renewTime": renew}


def test_client_go_defaults() -> None:
    assert (DURATION, DEADLINE, RETRY) == (15.0, 10.0, 2.0)
    check_timing(duration=DURATION, renew_deadline=DEADLINE, retry_period=RETRY)


@pytest.mark.parametrize(
    ("duration", "deadline", "retry", "complaint"),
    [
        (15, 15, 2, "longer than the renew deadline"),  # main's old rule: no margin at all
        (10, 12, 2, "longer than the renew deadline"),
        (15, 2.4, 2, "1.2 times the retry period"),
        (15, 10, 0, "positive"),
    ],
)
def test_timings_without_a_margin_are_refused(
    duration: float, deadline: float, retry: float, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        check_timing(duration=duration, renew_deadline=deadline, retry_period=retry)


def test_expiry_counts_from_when_this_replica_saw_the_record_change() -> None:
    seen = Observation()
    assert seen.expired(now=0.0, default_duration=DURATION)  # nothing seen: nothing to wait for
    # The holder's clock runs an hour ahead: its renewTime says nothing to this replica.
    assert seen.see(_record("a", "2099-01-01T00:00:00.000000Z"), now=100.0)
    assert not seen.expired(now=114.9, default_duration=DURATION)
    # The same record read again is no renewal: the time it was first seen stands.
    assert not seen.see(_record("a", "2099-01-01T00:00:00.000000Z"), now=110.0)
    assert seen.expired(now=115.0, default_duration=DURATION)


def test_a_renewal_is_any_change_of_the_record_even_to_an_older_time() -> None:
    seen = Observation()
    seen.see(_record("a", "2030-01-01T00:00:10.000000Z"), now=0.0)
    # The holder's clock jumped back: still a change, so still alive.
    assert seen.see(_record("a", "2020-01-01T00:00:00.000000Z"), now=14.0)
    assert not seen.expired(now=28.9, default_duration=DURATION)
    assert seen.expired(now=29.0, default_duration=DURATION)


def test_expiry_uses_the_holders_own_duration() -> None:
    seen = Observation()
    seen.see(_record("a", "x", duration=60), now=0.0)
    assert not seen.expired(now=59.0, default_duration=DURATION)
    assert seen.expired(now=60.0, default_duration=DURATION)
    assert seen.holder == "a"
    seen.see({"leaseDurationSeconds": 1}, now=61.0)  # released: nobody holds it
    assert seen.holder == ""


def test_leadership_is_certain_until_the_renewals_start_plus_the_deadline() -> None:
    term = Term(renew_deadline=DEADLINE)
    assert not term.certain(now=0.0)  # never renewed: a standby
    term.renewed(started=100.0)
    assert term.certain(now=109.99)
    assert term.remaining(now=104.0) == pytest.approx(6.0)
    assert not term.certain(now=110.0)
    assert term.remaining(now=111.0) == 0.0
    term.end()
    assert not term.certain(now=100.5)


def test_a_slow_renewal_buys_only_what_is_left_after_it_was_sent() -> None:
    term = Term(renew_deadline=DEADLINE)
    # Sent at 100, answered at 109: the server may have written it at 100 already.
    term.renewed(started=100.0)
    assert term.remaining(now=109.0) == pytest.approx(1.0)


@pytest.mark.parametrize("delay", [0.0, 0.5, 3.0, 9.9])
def test_the_leader_stops_before_any_standby_can_take_over(delay: float) -> None:
    # The leader sends a renewal at 100; the API server applies it at some moment after,
    # and a standby reads it ``delay`` seconds after the sending, at the earliest.
    term, seen = Term(renew_deadline=DEADLINE), Observation()
    term.renewed(started=100.0)
    seen.see(_record("leader", "t1"), now=100.0 + delay)
    takeover = next(
        t / 10 for t in range(1000, 3000) if seen.expired(now=t / 10, default_duration=DURATION)
    )
    last_write = max(t / 10 for t in range(1000, 3000) if term.certain(now=t / 10))
    assert last_write < takeover
    assert takeover - last_write >= DURATION - DEADLINE - 0.1


def _unreachable(may_write: bool) -> Kube:
    # Nothing listens on port 1: a request that is sent fails to connect.
    configuration = k8s.Configuration(host="https://127.0.0.1:1")
    configuration.retries = 0
    return Kube(k8s.ApiClient(configuration), may_write=lambda: may_write)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_fenced_client_sends_no_write(method: str) -> None:
    kube = _unreachable(False)
    with pytest.raises(Fenced) as refused:
        kube.request(method, "/api/v1/namespaces/web/services/db", body={})
    assert refused.value.temporary  # retried later, by then as a standby or not at all


def test_a_fenced_client_still_reads_and_an_open_one_writes() -> None:
    for kube, method in ((_unreachable(False), "GET"), (_unreachable(True), "PATCH")):
        with pytest.raises(KubeError) as failed:
            kube.request(method, "/api/v1/namespaces/web/services/db")
        assert not isinstance(failed.value, Fenced)
        assert failed.value.reason == "ConnectionError"
