"""Imports of a deleted RemoteCluster empty their endpoints after a grace period.

With its RemoteCluster gone the operator no longer sees the central cluster, which may give
the VIPs it last served to another service; applications would then send their traffic,
and their credentials, there. So an import whose RemoteCluster is deleted keeps its last
known addresses only for the grace period (``REMOTE_GONE_GRACE_SECONDS``, 3 s here), in case
the RemoteCluster is being replaced, then empties its endpoints and says why
(``Ready=False``, ``RemoteClusterNotFound``, with an ``AddressesChanged`` Event).
An import whose RemoteCluster's credentials stopped working before that keeps its addresses
all along: refused credentials, like an outage, are waited out. A RemoteCluster created
again brings the addresses back.
"""

from __future__ import annotations

from faults.toolkit import FaultEnv, load_balancer, put_kubeconfig
from harness.operator import OperatorProcess
from kit import Kit
from suite import Row

GRACE = "3"


def test_deleted_remote_cluster_empties_its_imports(
    kit: Kit, row: Row, fault_env: FaultEnv
) -> None:
    row.injected = (
        f"a RemoteCluster deleted (grace {GRACE} s) while another's credentials were refused; "
        "then created again"
    )
    operator = OperatorProcess(
        kubeconfig=fault_env.workload_kubeconfig,
        log_path=fault_env.logs / "remote-gone.log",
        extra_args=[f"--namespace={kit.namespace}"],
        env={"REMOTE_GONE_GRACE_SECONDS": GRACE},
    )
    session = kit.operator
    session.stop()
    try:
        operator.start()
        kit.operator = operator  # so that failures show this operator's log
        gone = kit.remote_cluster()
        refused = kit.remote_cluster(name=f"{gone}-refused")
        load_balancer(kit, "db", ["192.0.2.50"])
        load_balancer(kit, "cache", ["192.0.2.51"])
        kit.import_remote("db", "db")
        kit.create_import(
            "cache",
            {
                "source": {
                    "remoteService": {
                        "cluster": refused,
                        "namespace": kit.namespace,
                        "name": "cache",
                    }
                }
            },
        )
        kit.wait_condition("db", "Ready", "True", "Synced", timeout=30)
        kit.wait_condition("cache", "Ready", "True", "Synced", timeout=30)
        rejected = fault_env.credentials.add("rejected-token-remote-gone-0123", "a rejected token")
        put_kubeconfig(kit, f"{refused}-kubeconfig", kit.supervisor.kubeconfig_yaml(token=rejected))
        kit.wait_condition("cache", "Ready", "True", "LastKnownAddresses", timeout=30)

        kit.delete_remote_cluster(gone)
        ready = kit.wait_condition("db", "Ready", "False", "RemoteClusterNotFound", timeout=60)
        kit.wait_addresses("db", {})
        assert "another service" in ready["message"], ready["message"]
        assert kit.get_import("db")["status"]["addresses"] == []
        changes = [e.message for e in kit.events("db") if e.reason == "AddressesChanged"]
        assert "192.0.2.50 -> (none)" in changes, changes
        # Its credentials were refused before the other was deleted, so for longer than the
        # grace: still served.
        assert kit.slice_addresses("cache") == {"IPv4": ["192.0.2.51"]}
        kept = kit.wait_condition("cache", "Ready", "True", "LastKnownAddresses")

        kit.remote_cluster(name=gone)
        kit.wait_condition("db", "Ready", "True", "Synced", timeout=60)
        kit.wait_addresses("db", {"IPv4": ["192.0.2.50"]})
    finally:
        operator.stop()
        kit.operator = session
        session.start()
    row.figure("endpoints of the deleted RemoteCluster's import", "emptied")
    row.figure("endpoints of the refused credentials' import", "kept")
    row.happened = (
        f"emptied after the grace: {ready['message'][:90]}...; the other kept its VIP "
        f"({kept['reason']}); addresses back once the RemoteCluster was created again"
    )
