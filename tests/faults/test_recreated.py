"""Objects deleted and created again under their names while a watch was down.

- An import deleted and created again, with another spec, while the operator's watch of
  the workload cluster was broken: the list that mends the watch brings it back with the
  same name and generation (1) but a new uid, and it is synced at once: its new addresses
  are served, its objects name the new uid as their owner, and its status is written. The
  workload's controller manager is stopped meanwhile, because its garbage collector would
  otherwise delete the objects of the old uid and so trigger a sync by another way: here
  the operator has to notice by itself.
- A remote Service deleted and created again with a new VIP while the supervisor's API
  server was down: once it is back, the new VIP is served.
- An import deleted while the workload's API server was down, and its history compacted
  meanwhile: kopf's watch comes back with 410 Gone and lists again, which delivers no
  DELETED for the import that went. The operator's resync finds it gone (a list of its
  own) and removes its objects, rather than keep serving an import nobody has.

The changes are made through a second API server of the same cluster, as in the outage
scenarios.
"""

from __future__ import annotations

import json
import time
import urllib.request

from kubernetes import client as k8s

from faults.toolkit import FaultEnv, SpareApiServer, load_balancer, wait_for
from harness.cluster import Cluster
from harness.operator import OperatorProcess
from kit import GROUP, VERSION, Kit
from suite import Row

PORTS = [{"port": 80}]


def _owner_uids(kit: Kit, name: str) -> set[str]:
    objects = [
        kit.core.read_namespaced_service(name, kit.namespace),
        kit.discovery.read_namespaced_endpoint_slice(f"{name}-ipv4", kit.namespace),
        kit.core.read_namespaced_endpoints(name, kit.namespace),
    ]
    return {r.uid for o in objects for r in o.metadata.owner_references or []}


def test_import_recreated_while_the_watch_was_down(kit: Kit, row: Row, fault_env: FaultEnv) -> None:
    row.injected = (
        "workload API server stopped (controller manager too); through a second API server "
        "an import deleted and created again with other addresses; API server restarted"
    )
    old = kit.create_import("db", {"source": {"addresses": ["203.0.113.60"]}, "ports": PORTS})
    kit.wait_condition("db", "Ready", "True", "Synced")
    kit.wait_addresses("db", {"IPv4": ["203.0.113.60"]})
    workload = fault_env.workload
    spare = SpareApiServer(workload, log_path=workload.directory / "kube-apiserver-spare.log")
    spare.start()
    try:
        workload.stop_controller_manager()
        workload.stop_apiserver()
        with spare.api_client() as api:
            custom = k8s.CustomObjectsApi(api)
            custom.delete_namespaced_custom_object(
                GROUP, VERSION, kit.namespace, "sharedserviceimports", "db"
            )
            new = custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                kit.namespace,
                "sharedserviceimports",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "SharedServiceImport",
                    "metadata": {"name": "db"},
                    "spec": {"source": {"addresses": ["203.0.113.61"]}, "ports": PORTS},
                },
            )
        assert new["metadata"]["generation"] == old["metadata"]["generation"]
        workload.start_apiserver()
        workload.wait_apiserver(deadline=time.monotonic() + 60)
        back = time.monotonic()
        took = wait_for(
            lambda: (
                kit.slice_addresses("db") == {"IPv4": ["203.0.113.61"]}
                and (kit.get_import("db").get("status") or {}).get("addresses") == ["203.0.113.61"]
            ),
            timeout=45,
            what="the re-created import to be synced",
            log=kit.operator.log_tail(),
        )
        assert _owner_uids(kit, "db") == {new["metadata"]["uid"]}
        kit.wait_condition("db", "Ready", "True", "Synced")
        row.figure("synced after the API server was back", took, "s")
    finally:
        workload.wait_ready()  # restarts the controller manager
        spare.stop()
    row.happened = (
        f"new spec served {time.monotonic() - back:.1f} s after the restart; its objects name "
        "the new uid"
    )


def test_remote_service_recreated_while_the_supervisor_was_down(
    kit: Kit, row: Row, fault_env: FaultEnv, spare_supervisor: SpareApiServer
) -> None:
    row.injected = (
        "supervisor API server stopped; through its second API server the remote Service "
        "deleted and created again with a new VIP; API server restarted"
    )
    kit.remote_cluster()
    load_balancer(kit, "cache", ["192.0.2.62"])
    kit.import_remote("cache", "cache")
    kit.wait_condition("cache", "Ready", "True", "Synced")
    kit.wait_addresses("cache", {"IPv4": ["192.0.2.62"]})
    supervisor = fault_env.supervisor
    supervisor.stop_apiserver()
    try:
        with spare_supervisor.api_client() as api:
            remote = k8s.CoreV1Api(api)
            remote.delete_namespaced_service("cache", kit.namespace)
            remote.create_namespaced_service(
                kit.namespace,
                {
                    "metadata": {"name": "cache"},
                    "spec": {"type": "LoadBalancer", "ports": [{"name": "tcp", "port": 5432}]},
                },
            )
            remote.patch_namespaced_service_status(
                "cache",
                kit.namespace,
                {"status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.62"}]}}},
            )
    finally:
        supervisor.start_apiserver()
        supervisor.wait_ready()
    took = wait_for(
        lambda: kit.slice_addresses("cache") == {"IPv4": ["198.51.100.62"]},
        timeout=60,
        what="the re-created remote Service's VIP to be served",
        log=kit.operator.log_tail(),
    )
    kit.wait_condition("cache", "Ready", "True", "Synced")
    row.figure("new VIP served after the supervisor was back", took, "s")
    row.happened = "the re-created Service's new VIP was served"


def _compact_etcd(cluster: Cluster) -> int:
    """Compact the cluster's etcd up to its latest revision; return that revision.

    Through etcd's own JSON gateway on loopback: every watch that resumes from an older
    resourceVersion is then answered 410 Gone, as after a long enough outage.
    """
    base = f"http://127.0.0.1:{cluster.etcd_port}/v3/kv"

    def post(path: str, body: dict[str, object]) -> dict[str, object]:
        request = urllib.request.Request(
            f"{base}/{path}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, object] = json.loads(response.read())
            return answer

    header = post("range", {"key": "AA=="})["header"]
    assert isinstance(header, dict)
    revision = int(header["revision"])
    post("compaction", {"revision": str(revision), "physical": True})
    return revision


def test_import_deleted_while_the_watch_was_down_past_history(
    kit: Kit, row: Row, fault_env: FaultEnv
) -> None:
    row.injected = (
        "workload API server stopped (controller manager too); through a second API server "
        "an import deleted; etcd compacted; API server restarted"
    )
    workload = fault_env.workload
    operator = OperatorProcess(
        kubeconfig=fault_env.workload_kubeconfig,
        log_path=fault_env.logs / "deleted-past-history.log",
        extra_args=["--resync-seconds=5"],
    )
    kit.operator.stop()
    spare = SpareApiServer(workload, log_path=workload.directory / "kube-apiserver-spare.log")
    try:
        operator.start()
        kit.create_import("db", {"source": {"addresses": ["203.0.113.70"]}, "ports": PORTS})
        kit.wait_condition("db", "Ready", "True", "Synced")
        kit.wait_addresses("db", {"IPv4": ["203.0.113.70"]})
        spare.start()
        workload.stop_controller_manager()  # its garbage collector would remove the objects
        workload.stop_apiserver()
        with spare.api_client() as api:
            k8s.CustomObjectsApi(api).delete_namespaced_custom_object(
                GROUP, VERSION, kit.namespace, "sharedserviceimports", "db"
            )
        _compact_etcd(workload)
        workload.start_apiserver()
        workload.wait_apiserver(deadline=time.monotonic() + 60)
        back = time.monotonic()

        def removed() -> bool:
            services = kit.core.list_namespaced_service(
                kit.namespace, field_selector="metadata.name=db"
            ).items
            return not services and not kit.slice_addresses("db")

        took = wait_for(
            removed,
            timeout=60,
            what="the objects of the import deleted past the watch's history to be removed",
            log=operator.log_tail(),
        )
    finally:
        operator.stop()
        workload.wait_ready()  # restarts the controller manager
        spare.stop()
        kit.operator.start()
    row.happened = f"its objects removed {time.monotonic() - back:.1f} s after the restart"
    row.figure("objects removed after the API server was back", took, "s")
