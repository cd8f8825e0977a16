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

The changes are made through a second API server of the same cluster, as in the outage
scenarios.
"""

from __future__ import annotations

import time

from kubernetes import client as k8s

from faults.toolkit import FaultEnv, Row, SpareApiServer, load_balancer, wait_for
from kit import GROUP, VERSION, Kit

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
