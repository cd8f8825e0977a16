"""Credentials replaced in the kubeconfig Secret are never used again, not even once.

Rotating the Secret is how a platform team takes access back. Here the new token is
refused by the central cluster while the old one still works there (the server has not
revoked it yet), and a probe sent with the old token is in flight when the Secret changes:
a front on loopback (:mod:`faults.front`) holds it until after the rotation. Pinned, from
what the central cluster received and what the RemoteCluster says:

- once the RemoteCluster says ``Unauthorized``, no request carries the old token: not the
  watch that a new import of another remote namespace asks for, nor anything else;
- the probe that was in flight, answered after the rotation, does not make the
  RemoteCluster ``Connected`` again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from faults.front import Answer, ApiFront, Request, hold
from faults.toolkit import FaultEnv, Sampler, load_balancer, put_kubeconfig, wait_for
from faults.toolkit import remote_condition as connected
from kit import Kit
from suite import Row


@pytest.fixture
def front(fault_env: FaultEnv) -> Iterator[ApiFront]:
    """A front of the supervisor's API server."""
    server = ApiFront(fault_env.supervisor).start()
    yield server
    server.release()
    server.stop()


def test_replaced_credentials_are_never_used_again(
    kit: Kit, row: Row, fault_env: FaultEnv, front: ApiFront
) -> None:
    row.injected = (
        "kubeconfig rotated to a refused token while a probe with the old one was in flight; "
        "then an import of another remote namespace"
    )
    old = kit.supervisor.admin.token
    refused = fault_env.credentials.add("refused-token-0123456789abcdef", "a refused token")
    cluster = kit.remote_cluster(kubeconfig=front.kubeconfig_yaml())
    load_balancer(kit, "db", ["192.0.2.90"])
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": ["192.0.2.90"]}, timeout=30)
    other = f"{kit.namespace}-other"
    kit.remote.create_namespace({"metadata": {"name": other}})
    try:
        kit.remote.create_namespaced_service(
            other,
            {
                "metadata": {"name": "cache"},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 1}]},
            },
        )

        def rule(request: Request) -> Answer | None:
            return (
                hold() if request.target.startswith("/version") and request.token == old else None
            )

        front.rule = rule
        front.cut_open()  # the watches break, and the operator asks whether the server is back
        wait_for(
            lambda: front.answered("/version") >= 1,
            timeout=60,
            what="a probe with the old token in flight",
            log=kit.operator.log_tail(),
        )
        put_kubeconfig(kit, f"{cluster}-kubeconfig", front.kubeconfig_yaml(token=refused))
        wait_for(
            lambda: connected(kit, cluster).get("reason") == "Unauthorized",
            timeout=30,
            what="the RemoteCluster says the new token is refused",
            log=f"{connected(kit, cluster)}\n{kit.operator.log_tail()}",
        )
        revoked = len(front.requests())
        kit.create_import(
            "cache",
            {
                "source": {
                    "remoteService": {"cluster": cluster, "namespace": other, "name": "cache"}
                }
            },
        )
        kit.wait_condition("cache", "SourceResolved", "False", "RemoteUnavailable", timeout=30)
        with Sampler(lambda: connected(kit, cluster).get("status"), interval=0.1) as sampler:
            front.release()  # the probe with the old token is answered: the server took it
            wait_for(
                lambda: sum(1 for r in front.requests() if r.token == refused) >= 2,
                timeout=60,
                what="another try with the new token",
                log=kit.operator.log_tail(),
            )
            wait_for(lambda: len(sampler.samples) >= 20, timeout=30, what="samples")
        later = front.requests()[revoked:]
        with_old = [f"{r.method} {r.target}" for r in later if r.token == old]
        row.figure("requests after the rotation", len(later))
        row.figure("with the old token", len(with_old))
        assert not with_old, with_old
        statuses = {status for _, status in sampler.samples}
        assert statuses == {"False"}, statuses
        assert connected(kit, cluster)["reason"] == "Unauthorized"
    finally:
        kit.remote.delete_namespace(other)
    row.happened = (
        "Unauthorized; no request with the old token afterwards; the probe answered late "
        "left the RemoteCluster Connected=False"
    )
