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

import pytest

from shared_services import api, policy
from shared_services.dns import Resolution
from shared_services.resolve import GONE, RemoteLookup, SourceState, after_gone, resolve

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
