"""The kubeconfig Secret is rotated, broken in several ways, deleted, then fixed.

At every step the RemoteCluster's and the import's conditions say what happened, and the
local endpoints are sampled throughout: they are never dropped, they keep the last known
VIP while the credentials do not work, and a VIP moved meanwhile arrives once they do.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

from faults.toolkit import (
    FaultEnv,
    Sampler,
    load_balancer,
    put_kubeconfig,
    remote_condition,
    wait_for,
)
from harness.operator import OPERATOR_NAMESPACE
from kit import Kit
from suite import Row


def _gets(kit: Kit, cluster: str) -> float:
    """How often the operator asked the RemoteCluster's server for its version: once per
    connection made."""
    return kit.operator.metric_sum("shared_services_api_requests_total", target=cluster, verb="GET")


def test_rotated_broken_and_fixed_credentials(kit: Kit, row: Row, fault_env: FaultEnv) -> None:
    row.injected = (
        "kubeconfig Secret: rotated to a ServiceAccount token, then a rejected token, "
        "not YAML, key missing, Secret deleted, then fixed; VIP moved at each step"
    )
    load_balancer(kit, "db", ["192.0.2.70"])
    cluster = kit.remote_cluster()
    secret = f"{cluster}-kubeconfig"
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": ["192.0.2.70"]})
    credentials = fault_env.credentials
    token = credentials.add(kit.reader_token(), "ServiceAccount token of reader")
    rejected = credentials.add("rejected-token-0123456789abcdef", "a rejected token")
    good = kit.supervisor.kubeconfig_yaml(token=token)
    credentials.add(good, "the reader's kubeconfig")

    def delete_secret() -> None:
        kit.core.delete_namespaced_secret(secret, OPERATOR_NAMESPACE)

    def restore_secret() -> None:
        kit.core.create_namespaced_secret(
            OPERATOR_NAMESPACE,
            {
                "metadata": {"name": secret},
                "data": {"kubeconfig": base64.b64encode(good.encode()).decode()},
            },
        )

    def remove_key() -> None:
        put_kubeconfig(kit, secret, good, key="other")
        kit.core.patch_namespaced_secret(secret, OPERATOR_NAMESPACE, {"data": {"kubeconfig": None}})

    # (what, change, RemoteCluster Connected reason, whether a VIP move reaches the endpoints)
    steps: list[tuple[str, Callable[[], None], str, bool]] = [
        ("rotated", lambda: put_kubeconfig(kit, secret, good), "Connected", True),
        (
            "token rejected",
            lambda: put_kubeconfig(kit, secret, kit.supervisor.kubeconfig_yaml(token=rejected)),
            "Unauthorized",
            False,
        ),
        (
            "not YAML",
            lambda: put_kubeconfig(kit, secret, "{{{: not yaml"),
            "KubeconfigInvalid",
            False,
        ),
        ("key missing", remove_key, "SecretKeyMissing", False),
        ("Secret deleted", delete_secret, "SecretNotFound", False),
        ("fixed", restore_secret, "Connected", True),
    ]
    local = remote = "192.0.2.70"
    with Sampler(lambda: kit.slice_addresses("db"), interval=0.1) as sampler:
        for number, (what, change, reason, follows) in enumerate(steps):
            gets = _gets(kit, cluster)
            change()
            took = wait_for(
                lambda reason=reason: remote_condition(kit, cluster).get("reason") == reason,
                timeout=30,
                what=f"{what}: RemoteCluster {reason}",
                log=f"{remote_condition(kit, cluster)}\n{kit.operator.log_tail()}",
            )
            if follows:
                # Connected with the new credentials: it asked the server again.
                wait_for(
                    lambda gets=gets: _gets(kit, cluster) > gets,
                    timeout=30,
                    what=f"{what}: a new connection",
                )
                kit.wait_condition("db", "Ready", "True", "Synced", timeout=30)
                local = remote  # a move made while broken arrives now
            else:
                ready = kit.wait_condition("db", "Ready", "True", "LastKnownAddresses", timeout=30)
                assert cluster in ready["message"]
                source = kit.condition("db", "SourceResolved")
                assert source is not None
                assert source["status"] == "False"
            kit.wait_addresses("db", {"IPv4": [local]})
            remote = f"198.51.100.{number + 1}"
            kit.set_ingress("db", [{"ip": remote}])
            if follows:
                kit.wait_addresses("db", {"IPv4": [remote]})
                local = remote
            else:
                time.sleep(0.3)
                assert kit.slice_addresses("db") == {"IPv4": [local]}
            row.figure(what, f"{reason} after {took:.2f} s")
    kit.wait_addresses("db", {"IPv4": [remote]})
    dropped = [s for _, s in sampler.samples if not s.get("IPv4")]
    row.figure("endpoint samples", len(sampler.samples))
    row.figure("samples with no endpoints", len(dropped))
    assert not dropped
    assert remote_condition(kit, cluster).get("status") == "True"
    row.happened = (
        "each step named in RemoteCluster Connected (reasons above); import kept the last "
        "known VIP while broken, followed the moves once fixed; endpoints never dropped"
    )
