"""A kubeconfig Secret that asks the operator to run a program or use a proxy, and ones that
are malformed around a canary token, given to the running operator.

- ``auth-provider`` (gcp, with a ``cmd-path`` that would create a marker file), ``exec`` (the
  same) and ``proxy-url`` (a listener on loopback that counts connections): each RemoteCluster
  says ``Connected=False``, ``InsecureKubeconfig``, naming the field by its path; no marker
  file ever appears and no connection reaches the proxy, right after the condition is there
  and again a little later.
- Malformed kubeconfigs, each carrying the same canary token: each RemoteCluster's condition
  says what is wrong (line and column, or the field), and neither the canary, nor any
  6-character piece of it, nor its base64 form appears in any RemoteCluster's or import's
  status, in any Event of any namespace, in the metrics page or in the operator's log (which
  the suite scans again at its end).
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import string
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from faults.toolkit import FaultEnv, remote_condition, wait_for
from kit import GROUP, VERSION, Kit
from suite import Row
from support import eventually


def _remote_cluster(kit: Kit, name: str, text: str) -> str:
    """A kubeconfig Secret holding ``text`` and a RemoteCluster naming it."""
    return kit.remote_cluster(name=name, kubeconfig=text)


class CountingListener:
    """A TCP listener on loopback that counts the connections made to it and closes them.

    It stands in for a proxy: any connection at all means the operator followed proxy-url.
    It stops by itself after ``lifetime`` seconds.
    """

    def __init__(self, *, lifetime: float = 300.0) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self._deadline = time.monotonic() + lifetime
        self._stop = threading.Event()
        self.connections = 0
        self._thread = threading.Thread(target=self._run, name="proxy-listener", daemon=True)

    @property
    def url(self) -> str:
        """Where it listens, as a proxy URL."""
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def __enter__(self) -> CountingListener:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._socket.close()

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            connection.close()


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    with CountingListener() as running:
        yield running


def test_kubeconfig_that_runs_or_redirects_is_refused(
    kit: Kit, row: Row, tmp_path: Path, listener: CountingListener
) -> None:
    markers = {name: tmp_path / f"{name}-ran" for name in ("auth-provider", "exec")}
    row.injected = (
        "kubeconfig Secrets with auth-provider gcp cmd-path=/usr/bin/touch <marker>, exec "
        "command=/usr/bin/touch <marker>, proxy-url=<counting listener on loopback>"
    )
    # (case, section, field, value)
    cases: list[tuple[str, str, str, Any]] = [
        (
            "auth-provider",
            "users",
            "auth-provider",
            {
                "name": "gcp",
                "config": {"cmd-path": "/usr/bin/touch", "cmd-args": str(markers["auth-provider"])},
            },
        ),
        (
            "exec",
            "users",
            "exec",
            {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "/usr/bin/touch",
                "args": [str(markers["exec"])],
                "interactiveMode": "Never",
            },
        ),
        ("proxy-url", "clusters", "proxy-url", listener.url),
    ]
    names = {}
    started = time.monotonic()
    for case, section, key, value in cases:
        config = kit.supervisor.kubeconfig()
        entry = config[section][0][section.rstrip("s")]
        if section == "users":
            entry.clear()  # the program would be the only credential
        entry[key] = value
        names[case] = _remote_cluster(
            kit, f"{kit.namespace}-{case}", yaml.safe_dump(config, sort_keys=False)
        )
    paths = {case: f"{section}[0].{section.rstrip('s')}.{key}" for case, section, key, _ in cases}

    def refused(case: str) -> bool:
        condition = remote_condition(kit, names[case])
        return (
            condition.get("status") == "False"
            and condition.get("reason") == "InsecureKubeconfig"
            and paths[case] in str(condition.get("message"))
        )

    # Whatever the operator makes of them, each RemoteCluster gets a condition; what ran or
    # connected meanwhile is checked first, then what the conditions say.
    for case, name in names.items():
        wait_for(
            lambda name=name: remote_condition(kit, name).get("status") == "False",
            timeout=30,
            what=f"{case}: Connected=False",
            log=kit.operator.log_tail(),
        )
        row.figure(f"{case} Connected=False within", time.monotonic() - started, "s")
    ran_at_once = [case for case, marker in markers.items() if marker.exists()]
    connections_at_once = listener.connections
    time.sleep(3.0)  # a retry, a resync or a late thread would have run by now
    ran = [case for case, marker in markers.items() if marker.exists()]
    row.figure("marker files created", len(ran))
    row.figure("connections to the proxy", listener.connections)
    assert not ran_at_once, f"the operator ran a program of {ran_at_once}"
    assert not ran, f"the operator ran a program of {ran} later"
    assert connections_at_once == 0
    assert listener.connections == 0, "the operator connected to the proxy"
    said = {case: remote_condition(kit, name) for case, name in names.items()}
    assert all(refused(case) for case in names), said
    row.happened = (
        "each RemoteCluster Connected=False InsecureKubeconfig naming the field's path; "
        "no program ran, nothing reached the proxy (checked again 3 s later)"
    )


# --- malformed kubeconfigs carrying a canary ------------------------------------------------------

TEMPLATE = """apiVersion: v1
kind: Config
clusters:
- name: sup
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: reader
  user:
{user}
contexts:
- name: sup
  context:
    cluster: sup
    user: reader
current-context: {current}
"""


@dataclass(frozen=True)
class Malformed:
    """A kubeconfig with the canary in it, and what the RemoteCluster must say of it."""

    name: str
    user: str  # the user's fields, indented; {canary} stands for the canary
    says: str
    current: str = "sup"
    ca: str | None = None  # None: the supervisor's CA


MALFORMED = [
    Malformed("yaml-broken-at-token", "    token: {canary}: x", "line 11, column"),
    Malformed("unclosed-quote", '    token: "{canary}', "quote not closed"),
    Malformed("tab", "\ttoken: {canary}", "line 11, column 1:"),
    Malformed("token-a-mapping", "    token: {{{canary}: 1}}", "users[0].user.token must be"),
    Malformed(
        "ca-data-not-base64",
        "    token: x",
        "clusters[0].cluster.certificate-authority-data is not base64",
        ca="{canary}-_",
    ),
    Malformed(
        "key-data-not-base64",
        "    client-certificate-data: {b64}\n    client-key-data: {canary}%",
        "users[0].user.client-key-data is not base64",
    ),
    Malformed("token-with-newline", '    token: "{canary}\\nmore"', "users[0].user.token holds"),
    Malformed("token-ends-newline", '    token: "{canary}\\n"', "ends with a line break"),
    Malformed("token-not-ascii", '    token: "{canary}\\u20ac"', "users[0].user.token holds"),
    Malformed("token-huge", "    token: {huge}", "users[0].user.token is longer than"),
    Malformed("document-huge", "    token: {huger}", "bytes, more than the"),
    Malformed("token-an-alias", "    token: *{canary}", "line 11, column 12: an anchor"),
    Malformed("token-an-anchor", "    token: &{canary} x", "line 11, column 12: an anchor"),
    Malformed(
        "duplicate-key",
        "    token: {canary}\n    token: {canary}x",
        "line 12, column 5: a key that appears twice",
    ),
    Malformed("token-a-tag", "    token: !{canary} x", "line 11, column 12: a tag"),
    Malformed("unknown-field", "    {canary}: x", "the 1st field of users[0].user"),
    Malformed(
        "current-context-canary", "    token: x", "current-context names none", current="{canary}"
    ),
]


def _canary() -> str:
    """Upper-case letters only: a run of digits could match a resourceVersion in the log by
    chance, and no word of a message, log line or metric is six capitals long."""
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(24))


def _pieces(value: str, size: int = 6) -> set[str]:
    return {value[i : i + size] for i in range(len(value) - size + 1)}


def _leaks(text: str, canary: str) -> list[str]:
    encoded = base64.b64encode(canary.encode()).decode()
    found = sorted(piece for piece in _pieces(canary) if piece in text)
    return found + [encoded] * (encoded.rstrip("=") in text)


def test_malformed_kubeconfigs_never_show_their_canary(
    kit: Kit, row: Row, fault_env: FaultEnv
) -> None:
    canary = fault_env.credentials.add(_canary(), "the canary token of malformed kubeconfigs")
    fillers = {
        "canary": canary,
        "b64": base64.b64encode(canary.encode()).decode(),
        "huge": canary * 1000,  # 24 KB: a token too long
        "huger": canary * 12000,  # 288 KB: a kubeconfig too large
    }
    ca = base64.b64encode(kit.supervisor.pki.ca_pem).decode()
    names: dict[str, str] = {}
    started = time.monotonic()
    for case in MALFORMED:
        text = TEMPLATE.format(
            server=kit.supervisor.url,
            ca=ca if case.ca is None else case.ca.format(**fillers),
            user=case.user.format(**fillers),
            current=case.current.format(**fillers),
        )
        assert canary in text
        names[case.name] = _remote_cluster(kit, f"{kit.namespace}-{case.name}", text)
    # An import reading through one of them: its status repeats the cluster's message.
    kit.create_import(
        "via-malformed",
        {
            "source": {
                "remoteService": {
                    "cluster": names["token-with-newline"],
                    "namespace": kit.namespace,
                    "name": "db",
                }
            }
        },
    )
    row.injected = (
        f"{len(MALFORMED)} malformed kubeconfig Secrets around one canary token (broken YAML at "
        "the token, unclosed quote, tab, wrong types, bad base64, token with a newline, huge "
        "values, alias, anchor, duplicate key, tag, unknown field, dangling current-context)"
    )
    seen: dict[str, dict[str, Any]] = {}

    def matches(case: Malformed) -> bool:
        condition = seen[case.name]
        return (
            condition.get("status") == "False"
            and condition.get("reason") == "KubeconfigInvalid"
            and case.says in str(condition.get("message"))
        )

    def reported() -> bool:
        for case in MALFORMED:
            seen[case.name] = dict(remote_condition(kit, names[case.name]))
        return all(matches(c) for c in MALFORMED)

    # Whatever is still missing after the wait is listed below, after the search for leaks.
    with contextlib.suppress(AssertionError):
        eventually(reported, timeout=60, interval=0.5)
    wrong = {
        c.name: (seen[c.name].get("reason"), seen[c.name].get("message"))
        for c in MALFORMED
        if not matches(c)
    }
    row.figure("reported in a condition", f"{len(MALFORMED) - len(wrong)}/{len(MALFORMED)}")
    row.figure("all reported within", time.monotonic() - started, "s")
    with contextlib.suppress(AssertionError):
        kit.wait_condition("via-malformed", "SourceResolved", "False", "RemoteUnavailable")
    time.sleep(2.0)  # let whatever follows a refusal (retries, status echoes) happen too

    def statuses(plural: str) -> str:
        listed = kit.custom.list_cluster_custom_object(GROUP, VERSION, plural)
        return json.dumps([item.get("status") for item in listed["items"]])

    serialize = kit.core.api_client.sanitize_for_serialization
    places = {
        "RemoteCluster statuses": statuses("remoteclusters"),
        "SharedServiceImport statuses": statuses("sharedserviceimports"),
        "Events of every namespace": json.dumps(
            serialize(kit.core.list_event_for_all_namespaces().items)
        ),
        "metrics": kit.operator.metrics_text(),
        "operator log": kit.operator.log_path.read_text(errors="replace"),
    }
    leaks = {where: found for where, text in places.items() if (found := _leaks(text, canary))}
    row.figure("text scanned", sum(len(t) for t in places.values()) // 1024, "KiB")
    row.figure("pieces of the canary found", sum(len(f) for f in leaks.values()))
    assert not leaks, f"the canary (or a piece of it) in: {leaks}"
    assert not wrong, f"not reported as expected: {wrong}"
    kit.wait_condition("via-malformed", "SourceResolved", "False", "RemoteUnavailable")
    assert kit.operator.process is not None
    assert kit.operator.process.poll() is None, "the operator exited"
    row.happened = (
        "each RemoteCluster Connected=False KubeconfigInvalid with line/column or the field's "
        "path; no 6-character piece of the canary nor its base64 in statuses, Events, "
        "metrics or the log"
    )
