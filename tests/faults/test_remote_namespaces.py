"""The remote namespaces watched per RemoteCluster are capped, and over the cap is said.

Each remote namespace that some import reads costs a watch, a thread and a list on the
central cluster, and whoever may create imports chooses the namespaces: without a cap, 300
imports of 300 namespaces opened 300 watches. With ``MAX_REMOTE_NAMESPACES`` at 2 here,
pinned from outside the operator:

- imports of the first two namespaces are served, and a third namespace's import says
  ``TooManyRemoteNamespaces`` on Ready and SourceResolved, naming the setting, while no
  third watch is opened (the remote-watches metric);
- an import of a namespace already watched shares its watch and is served;
- once an import no longer reads a namespace, the refused one takes its place.
"""

from __future__ import annotations

from typing import Any

from faults.toolkit import FaultEnv
from harness.operator import OperatorProcess
from kit import Kit
from suite import Row

CAP = 2


def _service(kit: Kit, namespace: str, ip: str) -> None:
    kit.remote.create_namespaced_service(
        namespace,
        {"metadata": {"name": "db"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 5432}]}},
    )
    kit.remote.patch_namespaced_service_status(
        "db", namespace, {"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}
    )


def _import(kit: Kit, name: str, cluster: str, namespace: str) -> dict[str, Any]:
    source = {"remoteService": {"cluster": cluster, "namespace": namespace, "name": "db"}}
    return kit.create_import(name, {"source": source})


def test_remote_namespaces_are_capped(kit: Kit, row: Row, fault_env: FaultEnv) -> None:
    row.injected = f"imports of {CAP + 1} remote namespaces with MAX_REMOTE_NAMESPACES={CAP}"
    namespaces = [kit.namespace, *(f"{kit.namespace}-{n}" for n in range(CAP))]
    operator = OperatorProcess(
        kubeconfig=fault_env.workload_kubeconfig,
        log_path=fault_env.logs / "remote-namespaces.log",
        extra_args=[f"--namespace={kit.namespace}"],
        env={"MAX_REMOTE_NAMESPACES": str(CAP)},
    )
    session = kit.operator
    session.stop()
    try:
        for namespace in namespaces[1:]:
            kit.remote.create_namespace({"metadata": {"name": namespace}})
        for number, namespace in enumerate(namespaces):
            _service(kit, namespace, f"192.0.2.{100 + number}")
        operator.start()
        kit.operator = operator
        cluster = kit.remote_cluster()
        for number, namespace in enumerate(namespaces[:CAP]):
            _import(kit, f"in-{number}", cluster, namespace)
            kit.wait_addresses(f"in-{number}", {"IPv4": [f"192.0.2.{100 + number}"]}, timeout=30)
        _import(kit, "over", cluster, namespaces[CAP])
        ready = kit.wait_condition("over", "Ready", "False", "TooManyRemoteNamespaces", timeout=30)
        source = kit.wait_condition("over", "SourceResolved", "False", "TooManyRemoteNamespaces")
        assert "MAX_REMOTE_NAMESPACES" in ready["message"]
        assert f"{CAP} remote namespaces" in source["message"]
        assert kit.slice_addresses("over") in ({}, {"IPv4": []})
        watches = operator.metric_sum("shared_services_remote_watches", cluster=cluster)
        assert watches == CAP
        # An import of a namespace that is watched already shares its watch.
        _import(kit, "shared", cluster, namespaces[0])
        kit.wait_addresses("shared", {"IPv4": ["192.0.2.100"]}, timeout=30)
        kit.delete_import("in-1")
        kit.wait_addresses("over", {"IPv4": [f"192.0.2.{100 + CAP}"]}, timeout=30)
        kit.wait_condition("over", "Ready", "True", "Synced", timeout=30)
        row.figure("remote watches", watches)
    finally:
        operator.stop()
        kit.operator = session
        session.start()
        for namespace in namespaces[1:]:
            kit.remote.delete_namespace(namespace)
    row.happened = (
        "the third namespace's import said TooManyRemoteNamespaces with no third watch; "
        "served once a namespace was released"
    )
