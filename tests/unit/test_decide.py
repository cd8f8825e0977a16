"""The reconcile decision: given the caches and a resolved source, which writes, which status,
which Events.

* A resolved source becomes a Service, EndpointSlices and Endpoints holding exactly its
  allowed addresses and the import's ports; the status then says Ready/Synced and lists
  them. An import's first addresses make no Event; every later change makes one
  ``AddressesChanged`` Event saying "old -> new".
* A conflict keeps the addresses the status reported, says Ready False Conflict, and warns
  once when the conflict starts, not on every retry.
* A source still pending writes nothing for an import that already has a status (a restart
  must not churn), while a new import does show that it is pending.
* A source that cannot be known keeps the last known addresses and ports: those the
  operator last wrote, else those of the serving slices; never those of the status, which
  whoever may write it could fill with addresses no source gave.
* A source whose RemoteCluster is gone keeps the last known addresses within the grace,
  and after it serves nothing, saying why, with an ``AddressesChanged`` Event.
* With no ports anywhere nothing is written and the status says NoPorts.
* An address the policy refuses is never written; the rest still is, and the import
  warns once that it is not allowed.
* ``Plan.moves`` says whether a write moves a serving slice to other addresses.
* More addresses than an import serves (1,000, both families together) writes nothing
  and says ``TooManyAddresses``, rather than slices whose status cannot be written.
* An import in kube-system or in the operator's namespace, unless those are allowed, says
  ``NamespaceNotAllowed`` and what to do; nothing is written for it.
* An invalid spec keeps the addresses and ports in place and says why.
* Feeding a status back unchanged yields the same status, so an idle operator writes
  nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from shared_services import advice, api, builders, decide, policy, status
from shared_services.builders import ResolvedPort
from shared_services.decide import (
    Conclusion,
    Event,
    Plan,
    Serving,
    conclude,
    invalid_spec,
    last_known,
    namespace_refusal,
    plan,
    refused_namespace,
)
from shared_services.resolve import SourceState, after_gone

NAMESPACE = "shop"
NAME = "db"
UID = "0b6f6f0e-6a43-4c36-9a8e-3f1e2d7c5a10"

PG = ResolvedPort(name="pg", port=5432, target_port=5432, protocol="TCP")
PG_STATUS = {"name": "pg", "port": 5432, "targetPort": 5432, "protocol": "TCP"}

FIXED = {
    "source": {"addresses": ["198.51.100.10", "198.51.100.11"]},
    "ports": [{"name": "pg", "port": 5432}],
}
HOSTNAME = {"source": {"hostname": "db.example.com"}, "ports": [{"name": "pg", "port": 5432}]}
REMOTE = {"source": {"remoteService": {"cluster": "central", "namespace": "data", "name": "pg"}}}

OPEN = policy.AddressPolicy()
NO_NETWORKS = policy.ClusterNetworks()
# A kind-like local cluster: Service range 10.96.0.0/16, one Node with its Pod range.
LOCAL = policy.cluster_networks(
    service_cidrs=[{"metadata": {"name": "kubernetes"}, "spec": {"cidrs": ["10.96.0.0/16"]}}],
    nodes=[
        {
            "metadata": {"name": "worker-1"},
            "spec": {"podCIDRs": ["10.244.1.0/24"]},
            "status": {"addresses": [{"type": "InternalIP", "address": "172.18.0.3"}]},
        }
    ],
)


def _resolved(*addresses: str, ports: tuple[ResolvedPort, ...] | None = None) -> SourceState:
    """A source that resolved, as fixed addresses or a remote LoadBalancer resolve."""
    return SourceState(True, "Resolved", "fixed addresses", addresses=addresses, ports=ports)


UNREACHABLE = SourceState(False, "ClusterUnreachable", "RemoteCluster 'central' is unreachable")
UNREACHABLE_DNS = SourceState(False, "HostnameUnresolved", "db.example.com: timeout")


def _body(
    spec: Mapping[str, Any], *, old: Mapping[str, Any] | None = None, generation: int = 1
) -> dict[str, Any]:
    """An import as the API server returns it."""
    body: dict[str, Any] = {
        "apiVersion": api.API_VERSION,
        "kind": api.IMPORT_KIND,
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "uid": UID,
            "generation": generation,
            "resourceVersion": "4711",
        },
        "spec": dict(spec),
    }
    if old is not None:
        body["status"] = dict(old)
    return body


def _plan(
    body: Mapping[str, Any],
    source: SourceState,
    serving: Serving | None = None,
    *,
    address_policy: policy.AddressPolicy = OPEN,
    networks: policy.ClusterNetworks = NO_NETWORKS,
    families: frozenset[str] | None = None,
    written: Serving | None = None,
) -> Plan:
    spec = api.parse_import_spec(body["spec"], import_name=body["metadata"]["name"])
    return plan(
        body,
        spec,
        source,
        serving or Serving(),
        address_policy=address_policy,
        networks=networks,
        families=families,
        written=written,
    )


@dataclass(frozen=True)
class Round:
    """What one sync decides: the plan, and the conclusion when objects are written."""

    plan: Plan
    conclusion: Conclusion | None

    @property
    def status(self) -> dict[str, Any] | None:
        return self.conclusion.status if self.conclusion is not None else self.plan.status

    @property
    def events(self) -> tuple[Event, ...]:
        return self.conclusion.events if self.conclusion is not None else ()


def _sync(
    body: Mapping[str, Any],
    source: SourceState,
    serving: Serving | None = None,
    *,
    conflicts: Sequence[str] = (),
    previous_reason: str | None = None,
    address_policy: policy.AddressPolicy = OPEN,
    networks: policy.ClusterNetworks = NO_NETWORKS,
    written: Serving | None = None,
) -> Round:
    """Plan, and conclude as the reconciler does when the plan has objects to write.

    The previous Ready reason is, unless given, the one in the body's status: what the
    recorder remembers from having written it.
    """
    planned = _plan(
        body, source, serving, address_policy=address_policy, networks=networks, written=written
    )
    if planned.desired is None:
        return Round(planned, None)
    if previous_reason is None:
        previous_reason = _reason(body.get("status") or {}, "Ready")
    return Round(
        planned,
        conclude(body, planned, conflicts=list(conflicts), previous_reason=previous_reason),
    )


def _advised(message: str, reason: str) -> str:
    """A Ready message with its next step, as ``kubectl describe`` shows it."""
    said = advice.advised(message, reason, advice.IMPORT_STEPS)
    assert said != message, f"{reason} has no next step"
    return said


def _condition(status_: Mapping[str, Any] | None, type_: str) -> Mapping[str, Any]:
    assert status_ is not None
    found = [c for c in status_.get("conditions") or [] if c.get("type") == type_]
    assert len(found) == 1, status_
    condition: Mapping[str, Any] = found[0]
    return condition


def _reason(status_: Mapping[str, Any], type_: str) -> str:
    found = [c for c in status_.get("conditions") or [] if c.get("type") == type_]
    return str(found[0]["reason"]) if found else ""


def _triple(status_: Mapping[str, Any] | None, type_: str) -> tuple[str, str]:
    condition = _condition(status_, type_)
    return condition["status"], condition["reason"]


def _slice_addresses(desired: builders.Desired | None) -> dict[str, list[str]]:
    assert desired is not None
    return {
        s["addressType"]: [a for e in s["endpoints"] for a in e["addresses"]]
        for s in desired.endpoint_slices
    }


def _endpoints_addresses(desired: builders.Desired | None) -> list[str]:
    assert desired is not None
    return [a["ip"] for s in desired.endpoints.get("subsets") or [] for a in s["addresses"]]


# A time well before any test runs, so that a time carried over is told from a new one.
LONG_AGO = "2024-05-01T12:00:00Z"


def _aged(status_: Mapping[str, Any]) -> dict[str, Any]:
    """``status_`` as if written long ago: every time in it set to :data:`LONG_AGO`."""
    aged = dict(status_)
    if "lastChangeTime" in aged:
        aged["lastChangeTime"] = LONG_AGO
    aged["conditions"] = [{**c, "lastTransitionTime": LONG_AGO} for c in aged["conditions"]]
    return aged


def _synced_status(*addresses: str) -> dict[str, Any]:
    """The status an import has, since long ago, after a first sync of ``addresses``."""
    first = _sync(_body(FIXED), _resolved(*addresses))
    assert first.status is not None
    return _aged(first.status)


# --- a resolved source ---------------------------------------------------------------------


def test_a_resolved_source_gives_objects_holding_its_addresses_and_ports() -> None:
    planned = _plan(_body(FIXED), _resolved("198.51.100.10", "198.51.100.11"))

    assert planned.desired is not None
    assert planned.status is None
    service = planned.desired.service
    assert service["metadata"]["name"] == NAME
    assert service["metadata"]["namespace"] == NAMESPACE
    assert service["metadata"]["ownerReferences"][0]["uid"] == UID
    assert "selector" not in service["spec"]
    assert service["spec"]["ports"] == [PG_STATUS]
    assert _slice_addresses(planned.desired) == {"IPv4": ["198.51.100.10", "198.51.100.11"]}
    [slice_] = planned.desired.endpoint_slices
    assert slice_["metadata"]["labels"][builders.SERVICE_NAME_LABEL] == NAME
    assert slice_["ports"] == [{"name": "pg", "port": 5432, "protocol": "TCP"}]
    assert _endpoints_addresses(planned.desired) == ["198.51.100.10", "198.51.100.11"]
    assert planned.desired.endpoints["subsets"][0]["ports"] == [
        {"name": "pg", "port": 5432, "protocol": "TCP"}
    ]
    assert planned.ports == (PG,)
    assert planned.verdict.refused == ()


def test_dual_stack_addresses_get_a_slice_per_family_under_the_spec_service_name() -> None:
    spec = {**FIXED, "serviceName": "postgres", "ports": [{"port": 5432, "targetPort": 15432}]}
    planned = _plan(_body(spec), _resolved("2001:db8::7", "198.51.100.10"))

    assert planned.service_name == "postgres"
    assert planned.desired is not None
    assert planned.desired.service["metadata"]["name"] == "postgres"
    assert planned.desired.service["spec"]["ports"] == [
        {"port": 5432, "targetPort": 15432, "protocol": "TCP"}
    ]
    assert _slice_addresses(planned.desired) == {
        "IPv4": ["198.51.100.10"],
        "IPv6": ["2001:db8::7"],
    }
    assert planned.desired.endpoint_slices[0]["ports"] == [{"port": 15432, "protocol": "TCP"}]


def test_ports_come_from_the_spec_before_those_of_the_source() -> None:
    other = ResolvedPort(name="other", port=6543, target_port=6543, protocol="TCP")
    planned = _plan(_body(FIXED), _resolved("198.51.100.10", ports=(other,)))
    assert planned.ports == (PG,)


def test_a_remote_service_without_spec_ports_takes_the_source_ports() -> None:
    planned = _plan(_body(REMOTE), _resolved("203.0.113.5", ports=(PG,)))
    assert planned.desired is not None
    assert planned.desired.service["spec"]["ports"] == [PG_STATUS]


def test_a_first_sync_is_ready_and_lists_what_was_written_without_an_event() -> None:
    first = _sync(_body(FIXED), _resolved("198.51.100.10", "198.51.100.11"))

    assert first.conclusion is not None
    new = first.conclusion.status
    assert _triple(new, "Ready") == ("True", "Synced")
    assert _condition(new, "Ready")["message"] == (
        f"Service {NAME} points at 198.51.100.10, 198.51.100.11"
    )
    assert _triple(new, "SourceResolved") == ("True", "Resolved")
    assert new["addresses"] == ["198.51.100.10", "198.51.100.11"]
    assert new["ports"] == [PG_STATUS]
    assert new["observedGeneration"] == 1
    assert _condition(new, "Ready")["observedGeneration"] == 1
    assert new["lastChangeTime"]
    # 10,000 new imports must not start with 10,000 Events.
    assert first.conclusion.events == ()
    assert first.conclusion.addresses_changed
    assert not first.conclusion.conflicted


def test_a_later_change_of_addresses_records_one_event_old_to_new() -> None:
    old = _synced_status("198.51.100.10", "198.51.100.11")
    serving = Serving(addresses=("198.51.100.10", "198.51.100.11"), ports=(PG,))

    later = _sync(_body(FIXED, old=old), _resolved("198.51.100.12"), serving)

    assert later.conclusion is not None
    assert later.conclusion.events == (
        Event("Normal", "AddressesChanged", "198.51.100.10, 198.51.100.11 -> 198.51.100.12"),
    )
    assert later.conclusion.addresses_changed
    assert later.conclusion.status["addresses"] == ["198.51.100.12"]
    assert _triple(later.conclusion.status, "Ready") == ("True", "Synced")
    # Ready stayed True, so it has not transitioned; the addresses have just changed.
    assert _condition(later.conclusion.status, "Ready")["lastTransitionTime"] == LONG_AGO
    assert later.conclusion.status["lastChangeTime"] != LONG_AGO


def test_addresses_that_go_away_record_an_event_and_say_why_nothing_is_served() -> None:
    old = _synced_status("203.0.113.5")
    gone = SourceState(
        False, "NoIngress", "Service data/pg on central has no ingress", addresses=()
    )

    later = _sync(_body(REMOTE, old=old), gone, Serving(("203.0.113.5",), (PG,)))

    assert later.conclusion is not None
    assert _slice_addresses(later.plan.desired) == {}
    assert "subsets" not in later.plan.desired.endpoints  # type: ignore[union-attr]
    assert later.conclusion.events == (
        Event("Normal", "AddressesChanged", "203.0.113.5 -> (none)"),
    )
    assert _triple(later.conclusion.status, "Ready") == ("False", "NoIngress")
    assert _triple(later.conclusion.status, "SourceResolved") == ("False", "NoIngress")
    assert later.conclusion.status["addresses"] == []
    # The ports stay those the slices served, so the Service keeps them.
    assert later.conclusion.status["ports"] == [PG_STATUS]


def test_addresses_that_come_back_after_none_are_not_an_event_again() -> None:
    """Going to none had its Event; coming back is told by Ready, as a new import's is.

    A new import's status says it is pending (no addresses) before its first answer, so an
    Event for "(none) -> addresses" would be one per import at every start-up.
    """
    first = _synced_status("203.0.113.5")
    gone = SourceState(False, "NoIngress", "no ingress yet", addresses=())
    empty = _sync(_body(REMOTE, old=first), gone, Serving(("203.0.113.5",), (PG,)))
    assert empty.status is not None
    assert empty.status["addresses"] == []
    assert empty.events == (Event("Normal", "AddressesChanged", "203.0.113.5 -> (none)"),)

    back = _sync(_body(REMOTE, old=empty.status), _resolved("203.0.113.5", ports=(PG,)))

    assert back.events == ()
    assert back.status is not None
    assert back.status["addresses"] == ["203.0.113.5"]
    assert _triple(back.status, "Ready") == ("True", "Synced")


# --- conflicts -----------------------------------------------------------------------------

CONFLICT = "Service shop/db exists and is not managed by shared-services-operator"


def test_a_conflict_keeps_the_reported_addresses_and_warns_when_it_starts() -> None:
    old = _synced_status("198.51.100.10")
    body = _body(FIXED, old=old)

    started = _sync(body, _resolved("198.51.100.20"), conflicts=[CONFLICT])

    assert started.conclusion is not None
    assert started.conclusion.conflicted
    assert not started.conclusion.addresses_changed
    assert started.conclusion.events == (Event("Warning", "Conflict", CONFLICT),)
    assert _triple(started.conclusion.status, "Ready") == ("False", "Conflict")
    assert _condition(started.conclusion.status, "Ready")["message"] == _advised(
        CONFLICT, "Conflict"
    )
    assert started.conclusion.status["addresses"] == ["198.51.100.10"]
    assert started.conclusion.status["lastChangeTime"] == LONG_AGO  # nothing served changed
    assert _condition(started.conclusion.status, "Ready")["lastTransitionTime"] != LONG_AGO


def test_a_lasting_conflict_does_not_warn_on_every_retry() -> None:
    started = _sync(
        _body(FIXED, old=_synced_status("198.51.100.10")),
        _resolved("198.51.100.20"),
        conflicts=[CONFLICT, "EndpointSlice shop/db-ipv4 is not ours"],
    )
    assert started.status is not None

    retried = _sync(
        _body(FIXED, old=started.status),
        _resolved("198.51.100.20"),
        conflicts=[CONFLICT, "EndpointSlice shop/db-ipv4 is not ours"],
        previous_reason="Conflict",
    )

    assert retried.conclusion is not None
    assert retried.conclusion.events == ()
    assert _condition(retried.conclusion.status, "Ready")["message"] == _advised(
        f"{CONFLICT}; EndpointSlice shop/db-ipv4 is not ours", "Conflict"
    )
    assert status.same(started.status, retried.conclusion.status)


def test_a_conflict_on_a_new_import_reports_no_addresses() -> None:
    started = _sync(_body(FIXED), _resolved("198.51.100.10"), conflicts=[CONFLICT])
    assert started.conclusion is not None
    assert started.conclusion.status["addresses"] == []
    assert [e.reason for e in started.conclusion.events] == ["Conflict"]


# --- a source not known yet, or not known now ----------------------------------------------


@pytest.mark.parametrize(
    ("spec", "source"),
    [
        (REMOTE, SourceState(False, "Connecting", "connecting to RemoteCluster 'central'")),
        (HOSTNAME, SourceState(False, "Resolving", "resolving db.example.com")),
    ],
    ids=["connecting", "resolving"],
)
def test_a_pending_source_writes_nothing_for_an_import_with_a_status(
    spec: Mapping[str, Any], source: SourceState
) -> None:
    old = _synced_status("198.51.100.10")
    serving = Serving(("198.51.100.10",), (PG,))

    planned = _plan(_body(spec, old=old), source, serving)

    assert planned.desired is None
    assert planned.status is None
    assert not planned.moves


def test_a_new_remote_import_shows_that_its_cluster_is_connecting() -> None:
    connecting = SourceState(False, "Connecting", "connecting to RemoteCluster 'central'")

    planned = _plan(_body(REMOTE), connecting)

    # No ports are known before the remote Service is read: nothing to write yet.
    assert planned.desired is None
    assert _triple(planned.status, "SourceResolved") == ("Unknown", "Connecting")
    assert _triple(planned.status, "Ready") == ("False", "Connecting")
    assert planned.status is not None
    assert planned.status["addresses"] == []
    assert planned.status["ports"] == []


def test_a_new_hostname_import_shows_that_its_name_is_resolving() -> None:
    resolving = SourceState(False, "Resolving", "resolving db.example.com")

    first = _sync(_body(HOSTNAME), resolving)

    # The spec's ports are known, so the Service is there for applications, empty.
    assert _slice_addresses(first.plan.desired) == {}
    assert first.conclusion is not None
    assert _triple(first.status, "SourceResolved") == ("Unknown", "Resolving")
    assert _triple(first.status, "Ready") == ("False", "Resolving")
    assert _condition(first.status, "Ready")["message"] == "resolving db.example.com"
    assert first.conclusion.events == ()


def test_an_unknown_source_keeps_the_addresses_of_the_serving_slices() -> None:
    # The status lags behind the slices (its write failed before a restart): the slices win.
    old = _synced_status("198.51.100.10")
    serving = Serving(("198.51.100.20",), (PG,))

    kept = _sync(_body(REMOTE, old=old), UNREACHABLE, serving)

    assert _slice_addresses(kept.plan.desired) == {"IPv4": ["198.51.100.20"]}
    assert not kept.plan.moves
    assert kept.conclusion is not None
    assert _triple(kept.status, "Ready") == ("True", "LastKnownAddresses")
    assert _triple(kept.status, "SourceResolved") == ("False", "ClusterUnreachable")
    assert kept.conclusion.status["addresses"] == ["198.51.100.20"]


def test_an_unknown_source_puts_back_what_the_operator_last_wrote() -> None:
    """Slices deleted by hand while the source cannot be read are written again."""
    old = _synced_status("198.51.100.10", "198.51.100.11")
    written = Serving(("198.51.100.10", "198.51.100.11"), (PG,))

    kept = _sync(_body(REMOTE, old=old), UNREACHABLE, Serving(), written=written)

    assert _slice_addresses(kept.plan.desired) == {"IPv4": ["198.51.100.10", "198.51.100.11"]}
    assert kept.plan.desired is not None
    assert kept.plan.desired.service["spec"]["ports"] == [PG_STATUS]
    assert _triple(kept.status, "Ready") == ("True", "LastKnownAddresses")


def test_an_unknown_source_never_takes_addresses_or_ports_from_the_status() -> None:
    """A status is no record of what was served: whoever may write it could fill it."""
    forged = {**_synced_status("192.0.2.66"), "ports": [PG_STATUS]}

    planned = _plan(_body(REMOTE, old=forged), UNREACHABLE, Serving())

    # With no ports known, nothing can be written at all.
    assert planned.desired is None
    assert planned.status is not None
    assert planned.status["addresses"] == []
    assert planned.status["ports"] == []
    assert _triple(planned.status, "Ready") == ("False", "ClusterUnreachable")


def test_an_unknown_source_with_spec_ports_serves_nothing_from_the_status() -> None:
    forged = _synced_status("192.0.2.66")

    kept = _sync(_body(HOSTNAME, old=forged), UNREACHABLE_DNS, Serving())

    assert _slice_addresses(kept.plan.desired) == {}
    assert kept.status is not None
    assert kept.status["addresses"] == []


def test_an_unknown_source_takes_the_ports_of_the_serving_slices() -> None:
    other = ResolvedPort(name="other", port=6543, target_port=6543, protocol="TCP")
    old = _synced_status("198.51.100.10")  # lists PG: only the slices count
    serving = Serving(("198.51.100.10",), (other,))

    kept = _plan(_body(REMOTE, old=old), UNREACHABLE, serving)

    assert kept.ports == (other,)


def test_last_known_is_what_was_written_else_what_the_slices_hold() -> None:
    serving = Serving(("198.51.100.20",), (PG,))
    written = Serving(("198.51.100.30",), (PG,))
    assert last_known(serving, written) == written
    assert last_known(serving, None) == serving
    assert last_known(Serving(), Serving()) == Serving()


# --- a RemoteCluster that is gone ---------------------------------------------------------

MISSING = SourceState(False, "RemoteClusterNotFound", "RemoteCluster 'central' does not exist")


def test_a_gone_remote_cluster_keeps_the_last_known_addresses_within_the_grace() -> None:
    old = _synced_status("203.0.113.5")
    within = after_gone(MISSING, gone_for=10.0, grace=300.0, keeping=True)

    kept = _sync(_body(REMOTE, old=old), within, Serving(("203.0.113.5",), (PG,)))

    assert _slice_addresses(kept.plan.desired) == {"IPv4": ["203.0.113.5"]}
    assert _triple(kept.status, "Ready") == ("True", "LastKnownAddresses")
    assert "removed 300 s after it went" in _condition(kept.status, "Ready")["message"]
    assert kept.events == ()


def test_a_gone_remote_cluster_empties_the_endpoints_after_the_grace_and_says_why() -> None:
    old = _synced_status("203.0.113.5")
    after = after_gone(MISSING, gone_for=300.0, grace=300.0, keeping=True)

    emptied = _sync(_body(REMOTE, old=old), after, Serving(("203.0.113.5",), (PG,)))

    assert _slice_addresses(emptied.plan.desired) == {}
    assert emptied.plan.desired is not None
    assert emptied.plan.desired.service["spec"]["ports"] == [PG_STATUS]  # kept for its users
    assert _triple(emptied.status, "Ready") == ("False", "RemoteClusterNotFound")
    assert "give them to another service" in _condition(emptied.status, "Ready")["message"]
    assert emptied.status is not None
    assert emptied.status["addresses"] == []
    assert emptied.events == (Event("Normal", "AddressesChanged", "203.0.113.5 -> (none)"),)


# --- no ports ------------------------------------------------------------------------------


def test_no_ports_anywhere_writes_nothing_and_says_no_ports() -> None:
    no_ports = _resolved("203.0.113.5", ports=())

    planned = _plan(_body(REMOTE), no_ports)

    assert planned.desired is None
    assert _triple(planned.status, "Ready") == ("False", "NoPorts")
    assert _triple(planned.status, "SourceResolved") == ("True", "Resolved")
    assert planned.status is not None
    assert planned.status["addresses"] == []
    assert planned.status["ports"] == []


def test_no_ports_from_a_failed_source_says_why_the_source_failed() -> None:
    missing = SourceState(False, "RemoteClusterNotFound", "RemoteCluster 'central' does not exist")

    planned = _plan(_body(REMOTE), missing)

    assert planned.desired is None
    assert _triple(planned.status, "Ready") == ("False", "RemoteClusterNotFound")
    assert _condition(planned.status, "Ready")["message"] == _advised(
        missing.message, "RemoteClusterNotFound"
    )
    # The condition that describes the source says only what is wrong.
    assert _condition(planned.status, "SourceResolved")["message"] == missing.message


# --- the address policy --------------------------------------------------------------------

ALLOW_DOCS_NET = policy.AddressPolicy(allowed=policy.parse_cidrs(["198.51.100.0/24"]))


@pytest.mark.parametrize(
    ("address_policy", "networks", "refused"),
    [
        (ALLOW_DOCS_NET, NO_NETWORKS, "203.0.113.7"),
        (policy.AddressPolicy(denied=policy.parse_cidrs(["203.0.113.0/24"])), LOCAL, "203.0.113.7"),
        (OPEN, LOCAL, "10.96.0.10"),
        (OPEN, LOCAL, "10.244.1.15"),
        (OPEN, LOCAL, "172.18.0.3"),
    ],
    ids=["outside-allowed", "denied", "service-range", "pod-range", "node-address"],
)
def test_a_refused_address_is_not_written_and_the_import_warns_once(
    address_policy: policy.AddressPolicy, networks: policy.ClusterNetworks, refused: str
) -> None:
    source = _resolved("198.51.100.10", refused)

    first = _sync(_body(FIXED), source, address_policy=address_policy, networks=networks)

    assert _slice_addresses(first.plan.desired) == {"IPv4": ["198.51.100.10"]}
    assert _endpoints_addresses(first.plan.desired) == ["198.51.100.10"]
    assert [r.address for r in first.plan.verdict.refused] == [refused]
    assert first.conclusion is not None
    new = first.conclusion.status
    assert _triple(new, "Ready") == ("False", policy.ADDRESS_NOT_ALLOWED)
    (event,) = first.conclusion.events
    assert (event.type, event.reason) == ("Warning", policy.ADDRESS_NOT_ALLOWED)
    assert refused in event.message
    assert event.message.endswith("; serving 198.51.100.10")
    assert _condition(new, "Ready")["message"] == _advised(event.message, "AddressNotAllowed")
    assert new["addresses"] == ["198.51.100.10"]

    again = _sync(
        _body(FIXED, old=new),
        source,
        Serving(("198.51.100.10",), (PG,)),
        address_policy=address_policy,
        networks=networks,
    )
    assert again.events == ()
    assert again.status is not None
    assert status.same(new, again.status)


def test_every_address_refused_serves_nothing_and_says_so() -> None:
    first = _sync(_body(FIXED), _resolved("203.0.113.7"), address_policy=ALLOW_DOCS_NET)

    assert _slice_addresses(first.plan.desired) == {}
    assert _triple(first.status, "Ready") == ("False", policy.ADDRESS_NOT_ALLOWED)
    assert "; nothing is served. " in _condition(first.status, "Ready")["message"]


def test_a_last_known_address_that_the_policy_now_refuses_is_not_put_back() -> None:
    old = _synced_status("198.51.100.10", "203.0.113.7")
    serving = Serving(("198.51.100.10", "203.0.113.7"), (PG,))

    kept = _sync(_body(REMOTE, old=old), UNREACHABLE, serving, address_policy=ALLOW_DOCS_NET)

    assert _slice_addresses(kept.plan.desired) == {"IPv4": ["198.51.100.10"]}
    assert kept.plan.moves
    assert _triple(kept.status, "Ready") == ("False", policy.ADDRESS_NOT_ALLOWED)


# --- objects the API server would refuse ---------------------------------------------------


def test_more_addresses_than_a_slice_holds_keeps_what_is_in_place() -> None:
    old = _synced_status("198.51.100.10")
    many = tuple(str(ipaddress.IPv4Address("100.64.0.1") + i) for i in range(1001))

    planned = _plan(_body(REMOTE, old=old), _resolved(*many, ports=(PG,)))

    assert planned.desired is None
    assert _triple(planned.status, "Ready") == ("False", "TooManyAddresses")
    assert planned.status is not None
    assert planned.status["addresses"] == ["198.51.100.10"]
    assert planned.status["ports"] == [PG_STATUS]


def test_more_addresses_than_the_status_lists_are_refused_before_any_write() -> None:
    """600 A and 600 AAAA answers fit the slices (1,000 each) but not the status (1,000)."""
    old = _synced_status("198.51.100.10")
    v4 = tuple(str(ipaddress.IPv4Address("100.64.0.1") + i) for i in range(600))
    v6 = tuple(str(ipaddress.IPv6Address("2001:db8::1") + i) for i in range(600))

    planned = _plan(_body(REMOTE, old=old), _resolved(*v4, *v6, ports=(PG,)))

    assert planned.desired is None
    assert _triple(planned.status, "Ready") == ("False", "TooManyAddresses")
    assert "1200 addresses" in _condition(planned.status, "Ready")["message"]
    assert planned.status is not None
    assert planned.status["addresses"] == ["198.51.100.10"]


# --- Plan.moves ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("serving", "moves"),
    [
        (("198.51.100.10",), True),
        (("198.51.100.10", "198.51.100.11", "198.51.100.12"), True),
        (("198.51.100.11", "198.51.100.10"), False),
        ((), False),
    ],
    ids=["other-addresses", "fewer-addresses", "same-in-other-order", "nothing-serving"],
)
def test_moves_when_the_writes_change_what_a_serving_slice_holds(
    serving: tuple[str, ...], moves: bool
) -> None:
    planned = _plan(
        _body(FIXED), _resolved("198.51.100.10", "198.51.100.11"), Serving(serving, (PG,))
    )
    assert planned.serving == serving
    assert planned.moves is moves


def test_a_plan_that_writes_nothing_moves_nothing() -> None:
    planned = _plan(_body(REMOTE), _resolved("203.0.113.5", ports=()), Serving(("203.0.113.9",)))
    assert planned.desired is None
    assert not planned.moves


# --- an invalid spec -----------------------------------------------------------------------


def _invalid_error() -> api.InvalidSpecError:
    with pytest.raises(api.InvalidSpecError) as caught:
        api.parse_import_spec({"source": {}, "ports": [{"port": 5432}]}, import_name=NAME)
    return caught.value


def test_an_invalid_spec_keeps_addresses_and_ports_and_says_why() -> None:
    old = _synced_status("198.51.100.10")
    error = _invalid_error()

    refused = invalid_spec(_body({"source": {}}, old=old, generation=2), error)

    assert refused["addresses"] == ["198.51.100.10"]
    assert refused["ports"] == [PG_STATUS]
    assert refused["observedGeneration"] == 2
    for type_ in ("Ready", "SourceResolved"):
        assert _triple(refused, type_) == ("False", "InvalidSpec")
    assert _condition(refused, "SourceResolved")["message"] == str(error)
    assert _condition(refused, "Ready")["message"] == _advised(str(error), "InvalidSpec")
    assert api.ONE_SOURCE_MESSAGE in str(error)


def test_an_invalid_spec_on_a_new_import_reports_nothing_in_place() -> None:
    refused = invalid_spec(_body({"source": {}}), _invalid_error())
    assert refused["addresses"] == []
    assert refused["ports"] == []
    assert _triple(refused, "Ready") == ("False", "InvalidSpec")


# --- namespaces where imports are not served ---------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "allowed", "refused"),
    [
        ("kube-system", False, "kube-system, which holds the cluster's own Services"),
        ("shared-services-system", False, "the namespace of the operator itself"),
        ("kube-system", True, None),
        ("shared-services-system", True, None),
        ("shop", False, None),
        ("kube-public", False, None),
    ],
)
def test_kube_system_and_the_operators_namespace_are_refused_unless_allowed(
    namespace: str, allowed: bool, refused: str | None
) -> None:
    refusal = namespace_refusal(
        namespace, operator_namespace="shared-services-system", allowed=allowed
    )
    if refused is None:
        assert refusal is None
    else:
        assert refusal == f"imports in namespace {namespace!r} are not served: it is {refused}"


def test_an_import_in_a_refused_namespace_says_why_and_what_to_do() -> None:
    message = "imports in namespace 'kube-system' are not served: it is kube-system"

    refused = refused_namespace(_body(FIXED), message)

    for type_ in ("Ready", "SourceResolved"):
        assert _triple(refused, type_) == ("False", "NamespaceNotAllowed")
    said = _condition(refused, "Ready")["message"]
    assert said == _advised(message, "NamespaceNotAllowed")
    assert "ALLOW_SYSTEM_NAMESPACES" in said
    assert "imports.allowSystemNamespaces" in said
    assert refused["addresses"] == []
    again = refused_namespace(_body(FIXED, old=_aged(refused)), message)
    assert status.same(_aged(refused), again)


# --- an idle operator writes nothing -------------------------------------------------------


# A spec, a source, what serves, and the rest of what a sync is given.
Case = tuple[dict[str, Any], SourceState, Serving, dict[str, Any]]


def _fixed_ok() -> Case:
    return FIXED, _resolved("198.51.100.10", "2001:db8::7"), Serving(), {}


def _unknown() -> Case:
    return REMOTE, UNREACHABLE, Serving(("198.51.100.20",), (PG,)), {}


def _resolving() -> Case:
    return HOSTNAME, SourceState(False, "Resolving", "resolving db.example.com"), Serving(), {}


def _no_ports() -> Case:
    return REMOTE, _resolved("203.0.113.5", ports=()), Serving(), {}


def _conflict() -> Case:
    return FIXED, _resolved("198.51.100.10"), Serving(), {"conflicts": [CONFLICT]}


def _refused() -> Case:
    return (
        FIXED,
        _resolved("198.51.100.10", "203.0.113.7"),
        Serving(),
        {"address_policy": ALLOW_DOCS_NET},
    )


@pytest.mark.parametrize(
    "case",
    [_fixed_ok, _unknown, _resolving, _no_ports, _conflict, _refused],
    ids=["synced", "last-known", "resolving", "no-ports", "conflict", "address-not-allowed"],
)
def test_an_unchanged_state_yields_the_status_already_written(case: Callable[[], Case]) -> None:
    spec, source, serving, options = case()
    written = _sync(_body(spec), source, serving, **options).status
    assert written is not None
    # Written long ago: what is carried over must be the old times, not a fresh clock.
    first = _aged(written)

    again = _sync(_body(spec, old=first), source, serving, **options)

    if again.status is not None:  # a pending source with a status says nothing at all
        assert status.same(first, again.status), (first, again.status)
    assert again.events == ()


def test_an_unchanged_invalid_spec_yields_the_status_already_written() -> None:
    error = _invalid_error()
    first = _aged(invalid_spec(_body({"source": {}}, old=_synced_status("198.51.100.10")), error))
    again = invalid_spec(_body({"source": {}}, old=first), error)
    assert status.same(first, again)


def test_a_new_generation_is_reported_even_when_nothing_else_changed() -> None:
    first = _synced_status("198.51.100.10")
    again = _sync(_body(FIXED, old=first, generation=2), _resolved("198.51.100.10"))
    assert again.status is not None
    assert not status.same(first, again.status)
    assert again.status["observedGeneration"] == 2
    assert again.events == ()


# --- what kubectl shows --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        (REMOTE, "central/data/pg"),
        (HOSTNAME, "dns:db.example.com"),
        (FIXED, "198.51.100.10,198.51.100.11"),
        (
            {
                "source": {"addresses": [f"198.51.100.{n}" for n in range(1, 6)]},
                "ports": [{"port": 1}],
            },
            "198.51.100.1,198.51.100.2,198.51.100.3 +2 more",
        ),
        (
            {"source": {"addresses": ["2001:DB8:0::7"]}, "ports": [{"port": 1}]},
            "2001:db8::7",
        ),
    ],
    ids=["remote", "hostname", "fixed", "many-fixed", "canonical"],
)
def test_the_status_shows_the_source_in_one_line_and_the_local_service(
    spec: dict[str, Any], shown: str
) -> None:
    planned = _plan(_body({**spec, "serviceName": "legacy-db"}), _resolved("198.51.100.10"))

    assert planned.shown == status.Shown(shown, "legacy-db")
    new = _concluded(planned)
    assert (new["source"], new["serviceName"]) == (shown, "legacy-db")


def test_the_local_service_defaults_to_the_import_name() -> None:
    first = _sync(_body(FIXED), _resolved("198.51.100.10"))
    assert first.status is not None
    assert first.status["serviceName"] == NAME


def test_an_invalid_spec_keeps_what_the_status_showed() -> None:
    first = _sync(_body(FIXED), _resolved("198.51.100.10"))
    assert first.status is not None

    refused = invalid_spec(_body({"source": {}}, old=first.status, generation=2), _invalid_error())

    assert (refused["source"], refused["serviceName"]) == ("198.51.100.10,198.51.100.11", NAME)


def _concluded(planned: Plan) -> dict[str, Any]:
    """The status that follows a plan's writes meeting no conflict."""
    if planned.desired is None:
        assert planned.status is not None
        return planned.status
    return conclude(_body(FIXED), planned, conflicts=[], previous_reason="").status


# --- what a sync asks of its worker, and when held writes are due ---------------------------


def test_a_result_asks_for_the_earliest_run_it_is_given() -> None:
    assert decide.DONE.after is None
    assert decide.DONE.again(None) is decide.DONE
    assert decide.DONE.again(5.0).again(0.2).again(3.0).after == 0.2
    assert decide.DONE.again(0.2).again(None).after == 0.2


def test_held_writes_are_due_a_settle_after_the_move() -> None:
    assert decide.settle_until(moved=10.0, last_move=10.0, settle=0.2, hold=5.0) == 10.2


def test_held_writes_wait_while_other_vips_keep_moving() -> None:
    assert decide.settle_until(moved=10.0, last_move=12.0, settle=0.2, hold=5.0) == 12.2


def test_held_writes_never_wait_longer_than_the_hold() -> None:
    assert decide.settle_until(moved=10.0, last_move=30.0, settle=0.2, hold=5.0) == 15.0
