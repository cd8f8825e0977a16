"""The ACME Fitness shop's example, applied as it is, answers its real clients by short names.

``deploy/examples/acme-fitness`` is applied with kubectl to both clusters, real servers stand
at the VIPs the load balancer gave (Redis, PostgreSQL; a plain TCP server for MongoDB, which
Debian does not package), and from a pod of the shop's namespace each import answers its
client by the short name the shop's services use: ``redis-cli -h cart-redis PING`` says
PONG, ``psql -h order-postgres`` runs ``SELECT 1``, a TCP connection to ``users-mongo:27017``
reaches the server at users-mongo's VIP. Each answer also names the server, so a client
reaching the wrong VIP would be caught.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator

import yaml
from kubernetes import client as k8s

from deploykit import DEPLOY, example_imports, kubectl
from e2e.conftest import EndToEnd
from e2e.toolkit import whoami
from harness import probe
from harness.operator import OPERATOR_NAMESPACE
from harness.servers import PostgresServer, RedisServer, TcpServer
from kit import GROUP, VERSION
from suite import Row
from support import eventually

EXAMPLE = DEPLOY / "examples" / "acme-fitness"
SHOP = "acme-fitness"


def _documents(side: str) -> list[dict[str, object]]:
    return [
        d
        for path in sorted((EXAMPLE / side).glob("*.yaml"))
        for d in yaml.safe_load_all(path.read_text())
        if d
    ]


@contextlib.contextmanager
def _remote_cluster(e2e: EndToEnd) -> Iterator[None]:
    """The RemoteCluster ``supervisor`` that the example's imports name."""
    core = k8s.CoreV1Api(e2e.workload_api)
    custom = k8s.CustomObjectsApi(e2e.workload_api)
    kubeconfig = e2e.supervisor.kubeconfig_yaml().encode()
    core.create_namespaced_secret(
        OPERATOR_NAMESPACE,
        {
            "metadata": {"name": "supervisor-kubeconfig"},
            "data": {"kubeconfig": base64.b64encode(kubeconfig).decode()},
        },
    )
    custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "remoteclusters",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RemoteCluster",
            "metadata": {"name": "supervisor"},
            "spec": {
                "kubeconfigSecretRef": {"name": "supervisor-kubeconfig"},
                "requireExport": True,
            },
        },
    )
    try:
        yield
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "remoteclusters", "supervisor")
        core.delete_namespaced_secret("supervisor-kubeconfig", OPERATOR_NAMESPACE)


@contextlib.contextmanager
def _applied(e2e: EndToEnd) -> Iterator[None]:
    for side in ("supervisor", "workload"):
        kubectl(e2e.kubeconfigs[side], "apply", "-f", str(EXAMPLE / side))
    try:
        yield
    finally:
        for side in ("workload", "supervisor"):
            kubectl(e2e.kubeconfigs[side], "delete", "--wait=false", "-f", str(EXAMPLE / side))


def _vips(e2e: EndToEnd) -> dict[str, str]:
    """Each example Service's VIP, once the load balancer gave them all one."""
    remote = k8s.CoreV1Api(e2e.supervisor_api)
    names = [
        str(d["metadata"]["name"])  # type: ignore[index]
        for d in _documents("supervisor")
        if d["kind"] == "Service"
    ]

    def all_given() -> dict[str, str] | None:
        found = {}
        for name in names:
            ingress = remote.read_namespaced_service_status(
                name, "acme-data"
            ).status.load_balancer.ingress
            if not ingress:
                return None
            found[name] = ingress[0].ip
        return found

    return eventually(all_given, timeout=30)  # type: ignore[no-any-return]


def _ready(e2e: EndToEnd, name: str) -> bool:
    try:
        body = k8s.CustomObjectsApi(e2e.workload_api).get_namespaced_custom_object(
            GROUP, VERSION, SHOP, "sharedserviceimports", name
        )
    except k8s.ApiException as error:
        if error.status == 404:  # the catalog has not made it yet
            return False
        raise
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_every_shared_service_answers_its_client_by_its_short_name(e2e: EndToEnd, row: Row) -> None:
    plane = e2e.plane
    row.injected = "deploy/examples/acme-fitness applied with kubectl; real servers at the VIPs"
    with _remote_cluster(e2e), _applied(e2e):
        vips = _vips(e2e)
        # The example's catalog stands for one import per exported Service of the shop.
        imports = [i.name for i in example_imports(EXAMPLE)]
        assert sorted(imports) == sorted(vips)
        for name in imports:
            try:
                eventually(lambda name=name: _ready(e2e, name), timeout=60)
            except AssertionError as error:
                raise AssertionError(e2e.operator.log_tail()) from error
        plane.lb_network.wait_for(present=vips.values())  # type: ignore[union-attr]
        with contextlib.ExitStack() as stack:
            for name in ("cart-redis", "users-redis"):
                stack.enter_context(RedisServer(plane, name=name, address=vips[name]))
            stack.enter_context(
                PostgresServer(plane, name="order-postgres", address=vips["order-postgres"])
            )
            mongos = {
                name: stack.enter_context(
                    TcpServer(plane, name=name, address=vips[name], port=27017)
                )
                for name in ("users-mongo", "catalog-mongo")
            }
            answers: dict[str, str] = {}

            # kube-proxy may still be programming the newest Services: ask until each answers.
            def answered(name: str, command: list[str]) -> str | None:
                result = plane.run_in_pod(SHOP, *command)
                return result.stdout.strip() if result.returncode == 0 else None

            def greeting(name: str) -> str | None:
                said = answered(
                    name, probe.command(name, 27017, "--protocol=greeting", "--count=1")
                )
                found = probe.attempts(said or "")
                return found[0].server if found and found[0].ok else None

            for name in ("cart-redis", "users-redis"):
                answers[f"{name} PING"] = eventually(
                    lambda n=name: answered(n, ["redis-cli", "-h", n, "PING"]), timeout=30
                )
                answers[f"{name} whoami"] = whoami(plane, SHOP, name)
            psql = ["psql", "-h", "order-postgres", "-U", "postgres", "-w", "-At", "-c"]
            answers["order-postgres SELECT 1"] = eventually(
                lambda: answered("order-postgres", [*psql, "SELECT 1"]), timeout=30
            )
            answers["order-postgres cluster_name"] = str(
                answered("order-postgres", [*psql, "SHOW cluster_name"])
            )
            for name in mongos:
                answers[f"{name} tcp"] = eventually(lambda n=name: greeting(n), timeout=30)
            row.happened = "; ".join(f"{k}: {v}" for k, v in answers.items())
            assert answers == {
                "cart-redis PING": "PONG",
                "cart-redis whoami": "cart-redis",
                "users-redis PING": "PONG",
                "users-redis whoami": "users-redis",
                "order-postgres SELECT 1": "1",
                "order-postgres cluster_name": "order-postgres",
                "users-mongo tcp": "users-mongo",
                "catalog-mongo tcp": "catalog-mongo",
            }
            assert all(server.connections >= 1 for server in mongos.values())
