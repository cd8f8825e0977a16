"""The last known addresses are what the operator itself served, never what a status says.

While a source cannot be read (its central cluster unreachable), an import keeps its last
known addresses. Whoever may write the import's status, a tenant granted that by a broad
role, could otherwise put addresses there that no source ever gave and the address policy's
``--static-sources`` would never see. Here an import of an unreachable cluster, which never
served anything, gets addresses and ports written into its status by hand; its next sync
writes no endpoint from them and reports an empty list.
"""

from __future__ import annotations

import yaml

from harness.cluster import free_port
from kit import GROUP, VERSION, Kit
from suite import Row
from support import eventually

FORGED = "192.0.2.66"


def test_addresses_written_into_a_status_are_never_served(kit: Kit, row: Row) -> None:
    row.injected = (
        "addresses and ports written by hand into the status of an import whose central "
        "cluster is unreachable, then a change of its spec"
    )
    config = kit.supervisor.kubeconfig()
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    kit.remote_cluster(kubeconfig=yaml.safe_dump(config))
    kit.import_remote("db", "db")
    kit.wait_condition("db", "Ready", "False", "RemoteUnavailable", timeout=60)

    kit.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        kit.namespace,
        "sharedserviceimports",
        "db",
        {
            "status": {
                "addresses": [FORGED],
                "ports": [{"name": "tcp", "port": 5432, "targetPort": 5432, "protocol": "TCP"}],
            }
        },
    )
    assert kit.get_import("db")["status"]["addresses"] == [FORGED]
    # A new generation makes the operator sync the import, with the forged status in hand.
    kit.patch_import("db", {"spec": {"ports": [{"name": "tcp", "port": 5432}]}})

    def synced() -> dict[str, object] | None:
        status = kit.get_import("db").get("status") or {}
        return status if status.get("observedGeneration") == 2 else None

    status = eventually(synced, timeout=30)
    assert kit.slice_addresses("db") == {}, "an address from the status was served"
    assert status["addresses"] == []
    ready = kit.wait_condition("db", "Ready", "False", "RemoteUnavailable")
    assert FORGED not in ready["message"]
    row.figure("forged addresses served", "0")
    row.happened = "nothing was written from the status; it was set back to no addresses"
