"""What a source resolves to when its RemoteCluster is gone, and what the grace makes of it.

* A RemoteCluster that does not exist, or whose spec is invalid, leaves the source unknown
  (no addresses): it is ``gone``, unlike an unreachable cluster, whose outage is waited out.
* Within the grace a gone source keeps its last known addresses, says when they go (with
  no clock in the message) and asks to be looked at again when the grace ends; after it,
  the source has no addresses and says why.
* With no last known addresses to keep, a gone source has none and says only what is gone.
* Any other source passes the grace unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from shared_services import api, policy
from shared_services.dns import Resolution
from shared_services.resolve import (
    GONE,
    Dependencies,
    RemoteLookup,
    Resolved,
    SourceState,
    after_gone,
    resolve,
)

REMOTE = {"source": {"remoteService": {"cluster": "central", "namespace": "data", "name": "pg"}}}
SPEC = api.parse_import_spec(REMOTE, import_name="db")
CENTRAL = api.parse_remote_cluster_spec({"kubeconfigSecretRef": {"name": "central"}})


class Lookups:
    """Plain answers: a RemoteCluster that exists (or not) and is unreachable."""

    def __init__(self, *, exists: bool, spec: api.RemoteClusterSpec | None) -> None:
        self.exists = exists
        self.spec = spec

    def cluster_exists(self, name: str) -> bool:
        return self.exists

    def cluster_spec(self, name: str) -> api.RemoteClusterSpec | None:
        return self.spec

    def remote_service(self, cluster: str, namespace: str, name: str) -> RemoteLookup:
        return RemoteLookup(
            known=False, service=None, reason="RemoteUnavailable", message="unreachable"
        )

    def hostname(self, hostname: str) -> Resolution | None:
        return None


def _resolve(lookups: Lookups) -> SourceState:
    return resolve(SPEC, "shop", address_policy=policy.AddressPolicy(), lookups=lookups).source


@pytest.mark.parametrize(
    ("exists", "spec", "reason"),
    [(False, None, "RemoteClusterNotFound"), (True, None, "InvalidRemoteCluster")],
    ids=["deleted", "invalid"],
)
def test_a_deleted_or_invalid_remote_cluster_is_gone(
    exists: bool, spec: api.RemoteClusterSpec | None, reason: str
) -> None:
    source = _resolve(Lookups(exists=exists, spec=spec))
    assert (source.reason, source.addresses) == (reason, None)
    assert source.reason in GONE
    assert source.gone


def test_an_unreachable_remote_cluster_is_not_gone() -> None:
    source = _resolve(Lookups(exists=True, spec=CENTRAL))
    assert (source.reason, source.addresses) == ("RemoteUnavailable", None)
    assert not source.gone
    assert after_gone(source, gone_for=3600.0, grace=300.0, keeping=True) == source


GONE_SOURCE = SourceState(False, "RemoteClusterNotFound", "RemoteCluster 'central' does not exist")


def test_within_the_grace_the_last_known_addresses_stay() -> None:
    early = after_gone(GONE_SOURCE, gone_for=0.0, grace=300.0, keeping=True)
    later = after_gone(GONE_SOURCE, gone_for=200.0, grace=300.0, keeping=True)

    assert early.addresses is None
    assert early.reason == "RemoteClusterNotFound"
    assert early.recheck_after == 300.0
    assert later.recheck_after == 100.0
    assert early.message == later.message  # no clock: the same status all along
    assert early.message == (
        "RemoteCluster 'central' does not exist; its last known addresses are removed 300 s "
        "after it went, unless it comes back"
    )


@pytest.mark.parametrize(("gone_for", "grace"), [(300.0, 300.0), (301.0, 300.0), (0.0, 0.0)])
def test_after_the_grace_the_source_has_no_addresses_and_says_why(
    gone_for: float, grace: float
) -> None:
    emptied = after_gone(GONE_SOURCE, gone_for=gone_for, grace=grace, keeping=True)

    assert emptied.addresses == ()
    assert emptied.reason == "RemoteClusterNotFound"
    assert emptied.recheck_after is None
    assert "may give them to another service" in emptied.message
    assert not emptied.gone  # nothing is kept any more


def test_with_nothing_to_keep_a_gone_source_simply_has_no_addresses() -> None:
    """A new import naming a RemoteCluster that is not there: no grace, nothing to remove."""
    bare = after_gone(GONE_SOURCE, gone_for=0.0, grace=300.0, keeping=False)

    assert bare.addresses == ()
    assert bare.message == GONE_SOURCE.message
    assert bare.recheck_after is None


def test_a_known_source_passes_the_grace_unchanged() -> None:
    resolved = SourceState(True, "Resolved", "203.0.113.5", addresses=("203.0.113.5",))
    assert after_gone(resolved, gone_for=3600.0, grace=0.0, keeping=True) == resolved


# --- resolve: each kind of source, and what it read ------------------------------------------


class Answers:
    """A central cluster as plain values; every lookup is counted, and none changes anything."""

    def __init__(
        self,
        *,
        service: dict[str, object] | None = None,
        known: bool = True,
        names: dict[str, Resolution] | None = None,
        spec: api.RemoteClusterSpec | None = CENTRAL,
    ) -> None:
        self.service = service
        self.known = known
        self.names = names or {}
        self.spec = spec
        self.asked: list[tuple[str, ...]] = []

    def cluster_exists(self, name: str) -> bool:
        self.asked.append(("cluster", name))
        return True

    def cluster_spec(self, name: str) -> api.RemoteClusterSpec | None:
        return self.spec

    def remote_service(self, cluster: str, namespace: str, name: str) -> RemoteLookup:
        self.asked.append(("service", cluster, namespace, name))
        if not self.known:
            return RemoteLookup(known=False, service=None, reason="Connecting", message="listing")
        if self.service is None:
            return RemoteLookup(
                known=True, service=None, reason="RemoteServiceNotFound", message="not found"
            )
        return RemoteLookup(known=True, service=self.service, reason="Found", message="")

    def hostname(self, hostname: str) -> Resolution | None:
        self.asked.append(("hostname", hostname))
        return self.names.get(hostname)


def _balancer(*ingress: dict[str, str], kind: str = "LoadBalancer") -> dict[str, object]:
    return {
        "spec": {"type": kind, "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": list(ingress)}},
    }


def _of(spec: Mapping[str, Any], answers: Answers, namespace: str = "shop") -> Resolved:
    parsed = api.parse_import_spec(spec, import_name="db")
    return resolve(parsed, namespace, address_policy=policy.AddressPolicy(), lookups=answers)


def test_fixed_addresses_are_resolved_without_a_lookup() -> None:
    answers = Answers()
    resolved = _of({"source": {"addresses": ["2001:DB8::1"]}, "ports": [{"port": 80}]}, answers)
    assert resolved.source.ok
    assert resolved.source.addresses == ("2001:db8::1",)
    assert resolved.dependencies == Dependencies()
    assert answers.asked == []


def test_a_hostname_source_reads_its_name_and_waits_for_the_first_answer() -> None:
    spec = {"source": {"hostname": "db.example.test"}, "ports": [{"port": 80}]}
    waiting = _of(spec, Answers())
    assert (waiting.source.reason, waiting.source.pending) == ("Resolving", True)
    assert waiting.dependencies.hostnames == frozenset({"db.example.test"})

    answered = Answers(names={"db.example.test": Resolution(("192.0.2.7",), 30.0, None)})
    assert _of(spec, answered).source.addresses == ("192.0.2.7",)


def test_a_remote_service_reads_the_cluster_and_the_service() -> None:
    answers = Answers(service=_balancer({"ip": "192.0.2.10"}))
    resolved = _of(REMOTE, answers)
    assert resolved.source.ok
    assert resolved.source.addresses == ("192.0.2.10",)
    assert [p.port for p in resolved.source.ports or ()] == [5432]
    assert resolved.dependencies == Dependencies(
        cluster="central", remote=("central", "data", "pg")
    )
    assert ("service", "central", "data", "pg") in answers.asked


def test_a_remote_service_not_yet_listed_keeps_the_last_known_addresses() -> None:
    resolved = _of(REMOTE, Answers(known=False))
    assert (resolved.source.reason, resolved.source.addresses) == ("Connecting", None)
    # Read all the same: the listing's end queues the import.
    assert resolved.dependencies.remote == ("central", "data", "pg")


@pytest.mark.parametrize(
    ("service", "reason"),
    [
        (None, "RemoteServiceNotFound"),
        (_balancer({"ip": "192.0.2.10"}, kind="ClusterIP"), "NotLoadBalancer"),
        (_balancer(), "NoIngress"),
        (_balancer({"ip": "not-an-ip!"}), "IngressInvalid"),
    ],
    ids=["missing", "not-a-load-balancer", "no-ingress", "invalid-ingress"],
)
def test_a_remote_service_known_to_serve_nothing_empties_the_endpoints(
    service: dict[str, object] | None, reason: str
) -> None:
    source = _of(REMOTE, Answers(service=service)).source
    assert (source.ok, source.reason, source.addresses) == (False, reason, ())


def test_ingress_hostnames_are_read_and_their_answers_joined() -> None:
    service = _balancer({"ip": "192.0.2.10"}, {"hostname": "vip.example.test"})
    pending = _of(REMOTE, Answers(service=service))
    # The IP serves while the name resolves.
    assert pending.source.addresses == ("192.0.2.10",)
    assert pending.dependencies.hostnames == frozenset({"vip.example.test"})

    names = {"vip.example.test": Resolution(("192.0.2.11",), 30.0, None)}
    both = _of(REMOTE, Answers(service=service, names=names)).source
    assert both.addresses == ("192.0.2.10", "192.0.2.11")


def test_an_ingress_of_only_unanswered_names_is_unresolved_not_empty() -> None:
    service = _balancer({"hostname": "vip.example.test"})
    source = _of(REMOTE, Answers(service=service)).source
    assert (source.reason, source.addresses) == ("HostnameUnresolved", None)


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        ({"allowedNamespaces": ["other"]}, "NamespaceDenied"),
        ({"allowedRemoteNamespaces": ["other"]}, "RemoteNamespaceDenied"),
    ],
)
def test_a_remote_cluster_that_denies_the_import_reads_no_service(
    rules: dict[str, object], reason: str
) -> None:
    spec = api.parse_remote_cluster_spec({"kubeconfigSecretRef": {"name": "central"}, **rules})
    answers = Answers(service=_balancer({"ip": "192.0.2.10"}), spec=spec)
    resolved = _of(REMOTE, answers)
    assert (resolved.source.reason, resolved.source.addresses) == (reason, ())
    assert resolved.dependencies == Dependencies(cluster="central")
    assert not any(asked[0] == "service" for asked in answers.asked)
