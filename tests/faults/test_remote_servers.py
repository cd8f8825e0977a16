"""Where a kubeconfig's server may be, and what of its URL a message may show.

Whoever can edit a kubeconfig Secret chooses where the operator connects. Pointed at a
kubelet on loopback (here: a listener on loopback that counts connections), or at the test
plane's own API servers (on loopback too), the operator must refuse before it connects:
``Connected=False``, ``ServerNotAllowed``, naming the rule and the setting that would allow
it, and no connection made. The platform team's list of server ranges decides alone where it
is set: 127.0.0.0/8 lets the test plane's supervisor in (as the suite's operators run), and
192.0.2.0/24 keeps it out. A canary in the URL's path never appears in a condition, an Event
or the log, whether the server is refused or answers.
"""

from __future__ import annotations

import time

import yaml

from faults.test_kubeconfig_refusals import CountingListener
from faults.toolkit import FaultEnv, remote_condition, wait_for
from harness.operator import OperatorProcess
from kit import Kit
from suite import Row


def _with_server(kit: Kit, server: str) -> str:
    config = kit.supervisor.kubeconfig()
    config["clusters"][0]["cluster"]["server"] = server
    return yaml.safe_dump(config, sort_keys=False)


def _refused(kit: Kit, name: str, *words: str) -> str:
    def said() -> bool:
        condition = remote_condition(kit, name)
        return condition.get("reason") == "ServerNotAllowed" and all(
            w in str(condition.get("message")) for w in words
        )

    wait_for(said, timeout=30, what=f"{name}: ServerNotAllowed", log=kit.operator.log_tail())
    return str(remote_condition(kit, name).get("message"))


def _run(kit: Kit, fault_env: FaultEnv, name: str, ranges: str) -> OperatorProcess:
    operator = OperatorProcess(
        kubeconfig=fault_env.workload_kubeconfig,
        log_path=fault_env.logs / f"servers-{name}.log",
        env={"REMOTE_SERVER_CIDRS": ranges},
    )
    operator.start()
    kit.operator = operator  # so that failures show this operator's log
    return operator


def test_a_server_on_loopback_is_refused_before_any_connection(
    kit: Kit, row: Row, fault_env: FaultEnv
) -> None:
    canary = fault_env.credentials.add("PATHCANARY" + kit.namespace.upper(), "a server's path")
    session = kit.operator
    session.stop()
    with CountingListener() as kubelet:
        port = kubelet.url.rsplit(":", 1)[1]
        row.injected = (
            "operator with no server ranges; kubeconfigs whose server is a listener on "
            "loopback (a kubelet's place), the same with a canary path, and the supervisor"
        )
        try:
            operator = _run(kit, fault_env, "default", "")
            kubelet_rc = kit.remote_cluster(
                name=f"{kit.namespace}-kubelet",
                kubeconfig=_with_server(kit, f"https://127.0.0.1:{port}"),
            )
            path_rc = kit.remote_cluster(
                name=f"{kit.namespace}-path",
                kubeconfig=_with_server(kit, f"https://127.0.0.1:{port}/{canary}"),
            )
            supervisor_rc = kit.remote_cluster(name=f"{kit.namespace}-sup")
            said = _refused(kit, kubelet_rc, "must not be a loopback address", "--remote-server")
            path_said = _refused(kit, path_rc, f"https://127.0.0.1:{port}")
            _refused(kit, supervisor_rc, "must not be a loopback address")
            connections_at_once = kubelet.connections
            time.sleep(3.0)  # a retry would have come by now
            row.figure("connections to the listener", kubelet.connections)
            assert connections_at_once == 0
            assert kubelet.connections == 0, "the operator connected to a refused server"
            assert canary not in path_said
            operator.stop()

            # The platform team's ranges alone decide: the supervisor is outside these.
            operator = _run(kit, fault_env, "ranges", "192.0.2.0/24")
            _refused(kit, supervisor_rc, "outside the ranges", "192.0.2.0/24")
            operator.stop()
        finally:
            kit.operator = session
            session.start()
        # The session's operator lets loopback in: the supervisor connects, and a server
        # under a path (which the API server does not serve) fails without showing it.
        wait_for(
            lambda: remote_condition(kit, supervisor_rc).get("status") == "True",
            timeout=30,
            what="the supervisor connected",
            log=session.log_tail(),
        )
        sup_path = kit.remote_cluster(
            name=f"{kit.namespace}-sup-path",
            kubeconfig=_with_server(kit, f"{kit.supervisor.url}/{canary}"),
        )
        wait_for(
            lambda: remote_condition(kit, sup_path).get("status") == "False",
            timeout=30,
            what="a path the server does not serve: Connected=False",
            log=session.log_tail(),
        )
    shown = str(remote_condition(kit, sup_path).get("message"))
    assert canary not in shown, shown
    events = kit.core.list_event_for_all_namespaces().items
    assert not [e.message for e in events if canary in str(e.message)]
    row.figure("refusal", said)
    row.happened = (
        "each RemoteCluster Connected=False ServerNotAllowed naming the rule and "
        "--remote-server-cidrs; no connection reached the listener; the path shown nowhere"
    )
