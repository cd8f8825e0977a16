"""Broken answers stop no task of the operator for good: each is an error like any other.

A front on loopback (:mod:`faults.front`) stands before a real API server and answers chosen
requests as no API server would, but a proxy or a portal before one may: 200 with an HTML
page, a body cut off in the middle, no answer at all, a version 300 characters long. Then
it lets the server answer again. Pinned, each time from outside the operator:

- a RemoteCluster whose ``/version`` is a page of HTML says so (``InvalidResponse``) instead
  of ``Connecting`` forever, and connects once the server answers properly;
- a RemoteCluster whose answers are cut off mid-body while it is down is ``Connected`` again
  once they are whole, and its imports follow moves again;
- a version longer than the status may hold is shortened, and the statuses of every other
  RemoteCluster go on being written;
- the leader election and the periodic resync go on after their own requests to the local
  API server got such answers, rather than end while ``/healthz`` says all is well.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from faults.front import Answer, ApiFront, Request, Rule, cut, hang_up, html, json_answer
from faults.toolkit import FaultEnv, load_balancer, put_kubeconfig, remote_condition, wait_for
from harness.operator import OperatorProcess
from kit import GROUP, VERSION, Kit
from suite import Row

LONG_VERSION = "v1.34.0-" + "x" * 292


@pytest.fixture
def front(fault_env: FaultEnv) -> Iterator[ApiFront]:
    """A front of the supervisor's API server."""
    server = ApiFront(fault_env.supervisor).start()
    yield server
    server.stop()


def _version(answer: Answer | None) -> Rule:
    """Give ``/version`` this answer; pass every other request on."""

    def rule(request: Request) -> Answer | None:
        return answer if request.target.startswith("/version") else None

    return rule


def _server_version(kit: Kit, cluster: str) -> str:
    body = kit.custom.get_cluster_custom_object(GROUP, VERSION, "remoteclusters", cluster)
    return str((body.get("status") or {}).get("serverVersion") or "")


def _statuses_still_written(kit: Kit, cluster: str) -> None:
    """Break another RemoteCluster's kubeconfig, see its status say so, and mend it."""
    secret = f"{cluster}-kubeconfig"
    put_kubeconfig(kit, secret, "{{{: not yaml")
    wait_for(
        lambda: remote_condition(kit, cluster).get("reason") == "KubeconfigInvalid",
        timeout=30,
        what=f"{cluster}'s status written",
        log=kit.operator.log_tail(),
    )
    put_kubeconfig(kit, secret, kit.supervisor.kubeconfig_yaml())
    wait_for(
        lambda: remote_condition(kit, cluster).get("status") == "True",
        timeout=30,
        what=f"{cluster} connected again",
        log=kit.operator.log_tail(),
    )


def test_version_answered_with_html(kit: Kit, row: Row, front: ApiFront) -> None:
    row.injected = "a RemoteCluster's /version answered 200 with HTML, then properly"
    front.rule = _version(html())
    other = kit.remote_cluster(name=f"{kit.cluster_name}-other")
    broken = kit.remote_cluster(kubeconfig=front.kubeconfig_yaml())
    load_balancer(kit, "db", ["192.0.2.80"])
    kit.import_remote("db", "db")
    took = wait_for(
        lambda: remote_condition(kit, broken).get("reason") == "InvalidResponse",
        timeout=30,
        what="the RemoteCluster says its server's answer was not the API's",
        log=f"{remote_condition(kit, broken)}\n{kit.operator.log_tail()}",
    )
    condition = remote_condition(kit, broken)
    assert condition["status"] == "False"
    assert "text/html" in condition["message"]
    row.figure("InvalidResponse after", took, "s")
    _statuses_still_written(kit, other)
    front.rule = _version(None)
    took = wait_for(
        lambda: remote_condition(kit, broken).get("status") == "True",
        timeout=90,
        what="connected once the server answered properly",
        log=f"{remote_condition(kit, broken)}\n{kit.operator.log_tail()}",
    )
    row.figure("connected again after", took, "s")
    kit.wait_addresses("db", {"IPv4": ["192.0.2.80"]}, timeout=30)
    kit.set_ingress("db", [{"ip": "192.0.2.81"}])
    kit.wait_addresses("db", {"IPv4": ["192.0.2.81"]}, timeout=30)
    row.happened = (
        "Connected=False InvalidResponse naming the content type; another cluster's status "
        "kept being written; Connected and following moves once the answers were whole"
    )


def test_answers_cut_mid_body_while_down(kit: Kit, row: Row, front: ApiFront) -> None:
    row.injected = (
        "a connected RemoteCluster's server hung up on every request, then cut every answer "
        "off mid-body, then answered properly"
    )
    broken = kit.remote_cluster(kubeconfig=front.kubeconfig_yaml())
    load_balancer(kit, "db", ["192.0.2.82"])
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": ["192.0.2.82"]}, timeout=30)
    front.rule = lambda _request: hang_up()
    front.cut_open()
    wait_for(
        lambda: remote_condition(kit, broken).get("reason") == "Unreachable",
        timeout=60,
        what="the RemoteCluster says its server went away",
        log=f"{remote_condition(kit, broken)}\n{kit.operator.log_tail()}",
    )
    cuts = front.answered("/version")
    front.rule = lambda _request: cut()
    # The probe that asks whether the server is back got a cut answer, and asked again.
    wait_for(
        lambda: front.answered("/version") >= cuts + 2,
        timeout=60,
        what="the probe asking again after a cut answer",
        log=kit.operator.log_tail(),
    )
    front.rule = lambda _request: None
    took = wait_for(
        lambda: remote_condition(kit, broken).get("status") == "True",
        timeout=60,
        what="connected again once the answers were whole",
        log=f"{remote_condition(kit, broken)}\n{kit.operator.log_tail()}",
    )
    row.figure("connected again after", took, "s")
    kit.set_ingress("db", [{"ip": "192.0.2.83"}])
    kit.wait_addresses("db", {"IPv4": ["192.0.2.83"]}, timeout=30)
    kit.wait_condition("db", "Ready", "True", "Synced", timeout=30)
    row.happened = "Unreachable while broken; Connected and following moves once answers were whole"


def test_version_longer_than_the_status_holds(kit: Kit, row: Row, front: ApiFront) -> None:
    row.injected = f"two RemoteClusters whose servers say a {len(LONG_VERSION)}-character version"
    front.rule = _version(json_answer({"major": "1", "minor": "34", "gitVersion": LONG_VERSION}))
    other = kit.remote_cluster(name=f"{kit.cluster_name}-other")
    wait_for(
        lambda: remote_condition(kit, other).get("status") == "True",
        timeout=30,
        what="the other RemoteCluster connected",
    )
    # Two, since two workers write the RemoteClusters' statuses.
    long = [
        kit.remote_cluster(name=f"{kit.cluster_name}-long-{n}", kubeconfig=front.kubeconfig_yaml())
        for n in range(2)
    ]
    for cluster in long:
        wait_for(
            lambda cluster=cluster: remote_condition(kit, cluster).get("status") == "True",
            timeout=30,
            what=f"{cluster} connected, its status written",
            log=kit.operator.log_tail(),
        )
        shown = _server_version(kit, cluster)
        assert shown.startswith("v1.34.0-xxx")
        assert len(shown) <= 64
        assert len(remote_condition(kit, cluster)["message"]) < 256
    row.figure("serverVersion shown", f"{len(_server_version(kit, long[0]))} characters")
    _statuses_still_written(kit, other)
    row.happened = "the version shortened in the status; other clusters' statuses still written"


def _local_operator(
    fault_env: FaultEnv, kit: Kit, front: ApiFront, name: str, *args: str
) -> OperatorProcess:
    kubeconfig = front.write_kubeconfig(fault_env.logs / f"{name}.kubeconfig")
    return OperatorProcess(
        kubeconfig=Path(kubeconfig),
        log_path=fault_env.logs / f"{name}.log",
        extra_args=[f"--namespace={kit.namespace}", *args],
    )


def _fixed_import(kit: Kit) -> None:
    kit.create_import("db", {"source": {"addresses": ["203.0.113.30"]}, "ports": [{"port": 80}]})


def test_lease_answered_with_html(kit: Kit, row: Row, fault_env: FaultEnv) -> None:
    row.injected = "with --leader-elect, the first reads of the Lease answered 200 with HTML"
    lease = f"broken-answers-{kit.namespace}"
    local = ApiFront(fault_env.workload).start()
    broken = 3

    def rule(request: Request) -> Answer | None:
        if f"/leases/{lease}" in request.target and local.answered("/apis/coord") < broken:
            return html()
        return None

    local.rule = rule
    operator = _local_operator(
        fault_env, kit, local, "broken-lease", "--leader-elect", f"--lease-name={lease}"
    )
    session = kit.operator
    session.stop()
    try:
        operator.start()
        kit.operator = operator
        _fixed_import(kit)
        kit.wait_condition("db", "Ready", "True", "Synced", timeout=60)
        assert local.answered("/apis/coord") == broken
        assert operator.metric("shared_services_leading") == 1
        status, _ = operator.probe("/healthz")
        assert status == 200
    finally:
        operator.stop()
        local.stop()
        kit.operator = session
        session.start()
    row.happened = f"{broken} HTML answers to the Lease's reads; then led and synced"


def test_resync_list_cut_mid_body(kit: Kit, row: Row, fault_env: FaultEnv) -> None:
    row.injected = "the periodic resync's list of imports cut off mid-body, twice"
    local = ApiFront(fault_env.workload).start()
    imports = f"/apis/{GROUP}/{VERSION}/namespaces/{kit.namespace}/sharedserviceimports?limit="
    broken = 2
    armed = [False]

    def rule(request: Request) -> Answer | None:
        if armed[0] and request.target.startswith(imports) and local.answered(imports) < broken:
            return cut()
        return None

    local.rule = rule
    operator = _local_operator(fault_env, kit, local, "broken-resync", "--resync-seconds=1")
    session = kit.operator
    session.stop()
    try:
        operator.start()
        kit.operator = operator
        _fixed_import(kit)
        kit.wait_condition("db", "Ready", "True", "Synced", timeout=60)
        armed[0] = True
        wait_for(
            lambda: local.answered(imports) >= broken,
            timeout=60,
            what="the resync listing again after a cut answer",
            log=operator.log_tail(),
        )
        syncs = operator.metric("shared_services_syncs_total", result="ok")
        # Each resync syncs the import once more: two more, and the resync goes on.
        wait_for(
            lambda: operator.metric("shared_services_syncs_total", result="ok") >= syncs + 2,
            timeout=60,
            what="resyncs after the cut lists",
            log=operator.log_tail(),
        )
        status, _ = operator.probe("/healthz")
        assert status == 200
    finally:
        operator.stop()
        local.stop()
        kit.operator = session
        session.start()
    row.happened = f"{broken} cut lists logged; the resync went on syncing the import"
