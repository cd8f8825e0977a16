"""A RemoteCluster that requires exports imports only what the central side shared.

The central namespace holds many Services; its owners export one by labelling it
``sharedservices.io/export: "true"``. A RemoteCluster with ``requireExport`` (signed in as
an SSO user, whose requests the supervisor's audit log records):

- serves an import of the exported Service, and an import of one not exported serves
  nothing and says ``NotExported``;
- serves the second once its owners label it, and empties the first, saying why, once they
  take the label off (a withdrawal, unlike an outage, keeps nothing);
- never has an unexported Service sent to it: every list and watch of Services it makes on
  the supervisor selects the label on the server, as the audit log shows, and the operator
  holds only the exported Services in its cache.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from harness.cluster import Cluster
from harness.operator import OPERATOR_NAMESPACE
from harness.signin import USERNAME_PREFIX, SignInService, SsoUser
from kit import Kit
from support import eventually

EXPORTED = {"sharedservices.io/export": "true"}
SELECTOR = "sharedservices.io/export=true"
UNEXPORTED = 30


def _label(kit: Kit, name: str, labels: dict[str, str | None]) -> None:
    kit.remote.patch_namespaced_service(name, kit.namespace, {"metadata": {"labels": labels}})


def _import(kit: Kit, name: str, cluster: str) -> None:
    source = {"remoteService": {"cluster": cluster, "namespace": kit.namespace, "name": name}}
    kit.create_import(name, {"source": source})


def test_only_exported_services_are_imported_or_sent(
    kit: Kit, supervisor: Cluster, signin: SignInService, sso_user: SsoUser
) -> None:
    supervisor.bind_sso_user(sso_user.name, kit.namespace)
    audit = supervisor.audit
    assert audit is not None
    shared = kit.load_balancer("shared")
    _label(kit, "shared", EXPORTED)
    private = kit.load_balancer("private")
    for index in range(UNEXPORTED):
        kit.remote.create_namespaced_service(
            kit.namespace,
            {
                "metadata": {"name": f"other-{index}"},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80 + index}]},
            },
        )
    cluster = kit.sso_remote_cluster(
        signin, sso_user, name=f"{kit.namespace}-export", requireExport=True
    )
    try:
        _import(kit, "shared", cluster)
        _import(kit, "private", cluster)
        kit.wait_addresses("shared", {"IPv4": [shared]}, timeout=30)
        kit.wait_condition("shared", "Ready", "True", "Synced")
        refused = kit.wait_condition("private", "Ready", "False", "NotExported")
        assert "sharedservices.io/export" in refused["message"], refused
        assert not any(kit.slice_addresses("private").values())

        # The owners share it: it is served.
        _label(kit, "private", EXPORTED)
        kit.wait_addresses("private", {"IPv4": [private]}, timeout=30)

        # The owners withdraw the other: its endpoints go, and it says why.
        _label(kit, "shared", {"sharedservices.io/export": None})
        withdrawn = kit.wait_condition("shared", "Ready", "False", "NotExported")
        assert "withdrew" in withdrawn["message"], withdrawn
        eventually(lambda: not any(kit.slice_addresses("shared").values()), timeout=30)

        # Of the namespace's 32 Services, the operator holds the one exported now.
        eventually(
            lambda: (
                kit.operator.metric_sum(
                    "shared_services_tracked_items", table="remote_cached_services"
                )
                == 1
            ),
            timeout=30,
        )
    finally:
        kit.cleanup()
        kit.core.delete_namespaced_secret(f"{cluster}-sso", OPERATOR_NAMESPACE)

    # Every list and watch of Services it made there asked for exported ones only.
    path = f"/api/v1/namespaces/{kit.namespace}/services"
    reads = [
        r
        for r in audit.requests()
        if r.user == f"{USERNAME_PREFIX}{sso_user.name}"
        and r.verb in ("list", "watch")
        and urlsplit(r.uri).path == path
    ]
    assert "list" in {r.verb for r in reads}, "the RemoteCluster never listed the Services"
    unselected = [
        r.uri for r in reads if parse_qs(urlsplit(r.uri).query).get("labelSelector") != [SELECTOR]
    ]
    assert not unselected, unselected
