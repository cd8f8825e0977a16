"""What differs between the supported Kubernetes releases, pinned on each of them.

This module runs with the rest of the suite on the newest release, and again (like every
test marked ``releases``) with the workload cluster on each older supported release, which
``make test`` does by ``SSO_K8S_RELEASE`` (see ``harness.binaries``). On every release:

- the operator becomes ready, and ``/readyz`` names what it does without: before 1.33 the
  API server serves no ServiceCIDRs, whose watch would answer 404 for ever and keep the
  operator from ever syncing, so it is skipped and the Service range learned otherwise;
- the address policy's default holds: an import pointing into the Service range is refused
  naming that range (and, in the operator's log, where it came from: a ServiceCIDR from
  1.33, the API server's own refusal of an out-of-range ClusterIP before), never written;
- an import's whole life works: created, its VIP moved, deleted with its objects.

Before 1.33 only: where the API server does not name its range either, every address is
refused with a message saying what to set (never fail open), and the range set with
``--service-cidrs`` is the one judged by.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s

from harness.cluster import SERVICE_CIDR, Cluster
from harness.operator import OperatorProcess
from kit import SERVICE_CIDRS_SERVED_FROM, Kit, server_minor
from support import eventually

pytestmark = pytest.mark.releases

PORTS = [{"port": 80}]


@pytest.fixture(scope="module")
def minor(workload_api: k8s.ApiClient) -> int:
    """The workload cluster's Kubernetes minor release, as its API server reports it."""
    return server_minor(workload_api)


def test_ready_naming_what_it_does_without(kit: Kit, minor: int) -> None:
    status, body = kit.operator.probe("/readyz")
    assert status == 200, body
    lines = body.splitlines()
    assert lines[0] == "ready"
    if minor >= SERVICE_CIDRS_SERVED_FROM:
        assert lines == ["ready"]
        return
    assert lines[1:] == [
        "  skipped networking.k8s.io/v1 ServiceCIDRs: not served by this API server "
        f"(Kubernetes before 1.33); Service range {SERVICE_CIDR} named by the API server"
    ]
    assert "skipped networking.k8s.io/v1 ServiceCIDRs" in kit.operator.log_path.read_text()


def test_the_service_range_is_refused_by_default(kit: Kit, minor: int) -> None:
    kit.create_import("svc", {"source": {"addresses": ["10.96.0.10"]}, "ports": PORTS})
    kit.create_import("outside", {"source": {"addresses": ["203.0.113.80"]}, "ports": PORTS})
    ready = kit.wait_condition("svc", "Ready", "False", "AddressNotAllowed")
    origin = (
        "ServiceCIDR kubernetes"
        if minor >= SERVICE_CIDRS_SERVED_FROM
        else "named by the API server"
    )
    refused = f"10.96.0.10 is in the local cluster's Service range {SERVICE_CIDR}"
    assert refused in ready["message"]
    # Where the range came from is the operator's to know, and its log says it.
    eventually(lambda: f"{refused} ({origin})" in kit.operator.log_path.read_text())
    kit.wait_condition("outside", "Ready", "True", "Synced")
    kit.wait_addresses("outside", {"IPv4": ["203.0.113.80"]})
    assert kit.slice_addresses("svc") == {}, "a refused address was written"


def test_an_import_is_created_follows_its_vip_and_is_deleted(kit: Kit) -> None:
    kit.remote_cluster()
    vip = kit.load_balancer("db")
    kit.import_remote("db", "db")
    kit.wait_condition("db", "Ready", "True", "Synced")
    kit.wait_addresses("db", {"IPv4": [vip]})
    service = kit.core.read_namespaced_service("db", kit.namespace)
    assert service.spec.selector is None
    assert [p.port for p in service.spec.ports] == [5432]

    kit.set_ingress("db", [{"ip": "192.0.2.201"}])
    kit.wait_addresses("db", {"IPv4": ["192.0.2.201"]})

    def endpoints() -> list[str]:
        # Written just after the slice, which is what kube-proxy reads.
        found = kit.core.read_namespaced_endpoints("db", kit.namespace)
        return [a.ip for s in found.subsets or [] for a in s.addresses or []]

    eventually(lambda: endpoints() == ["192.0.2.201"])

    kit.delete_import("db")

    def gone() -> bool:
        services = kit.core.list_namespaced_service(
            kit.namespace, label_selector="sharedservices.io/import=db"
        ).items
        return not services and kit.slice_addresses("db") == {}

    eventually(gone, timeout=30)


# --- before 1.33: the range from a setting, or refused -------------------------------------


@pytest.fixture
def own_operator(kit: Kit, workload: Cluster, tmp_path: Path) -> Iterator[list[OperatorProcess]]:
    """Operators a test starts in place of the session's (restarted afterwards)."""
    started: list[OperatorProcess] = []
    kit.operator.stop()
    try:
        yield started
    finally:
        for process in started:
            process.stop()
        kit.operator.start()


def _operator(
    kit: Kit, workload: Cluster, tmp_path: Path, name: str, *args: str
) -> OperatorProcess:
    return OperatorProcess(
        kubeconfig=workload.write_kubeconfig(tmp_path / f"{name}.kubeconfig"),
        log_path=tmp_path / f"{name}.log",
        extra_args=[*args, f"--namespace={kit.namespace}"],
    )


def test_without_service_cidrs_an_unknown_range_refuses_and_a_set_one_is_used(
    kit: Kit,
    minor: int,
    workload: Cluster,
    tmp_path: Path,
    own_operator: list[OperatorProcess],
) -> None:
    if minor >= SERVICE_CIDRS_SERVED_FROM:
        pytest.skip("this API server serves ServiceCIDRs, which name the range")
    kit.create_import("svc", {"source": {"addresses": ["10.96.0.11"]}, "ports": PORTS})
    kit.create_import("outside", {"source": {"addresses": ["203.0.113.81"]}, "ports": PORTS})
    # The dry run that would name the range goes to the first namespace served: one that
    # does not exist answers 404, so nothing names the range.
    absent = f"absent-{secrets.token_hex(3)}"
    blind = _operator(kit, workload, tmp_path, "blind", f"--namespace={absent}")
    own_operator.append(blind)
    blind.start()
    status, body = blind.probe("/readyz")
    assert status == 200, body
    assert "the local cluster's Service range is unknown" in body
    for name, address in (("svc", "10.96.0.11"), ("outside", "203.0.113.81")):
        message = kit.wait_condition(name, "Ready", "False", "AddressNotAllowed")["message"]
        assert f"{address} cannot be judged: the local cluster's Service range is unknown" in (
            message
        )
        assert "--service-cidrs (chart value addressPolicy.serviceCIDRs)" in message
        assert kit.slice_addresses(name) == {}
    blind.stop()

    told = _operator(
        kit, workload, tmp_path, "told", f"--namespace={absent}", "--service-cidrs=10.96.0.0/16"
    )
    own_operator.append(told)
    told.start()
    kit.wait_condition("outside", "Ready", "True", "Synced")
    kit.wait_addresses("outside", {"IPv4": ["203.0.113.81"]})
    message = kit.wait_condition("svc", "Ready", "False", "AddressNotAllowed")["message"]
    refused = "10.96.0.11 is in the local cluster's Service range 10.96.0.0/16"
    assert refused in message
    eventually(lambda: f"{refused} (set by --service-cidrs)" in told.log_path.read_text())
    assert kit.slice_addresses("svc") == {}
