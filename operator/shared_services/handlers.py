"""kopf's side: start the controller and the election, serve the probes, pass on RemoteClusters.

The handlers hold no logic. They are event handlers only (no create/update/delete
handlers), so kopf keeps no per-object state: it writes no progress annotations and adds
no finalizers, and deleting an import or its namespace never waits for the operator to be
running. SharedServiceImports are watched by the controller's own informer instead of kopf
(see Controller.fill), because kopf's per-object workers cost more than the sync itself
at thousands of imports.

Every replica fills its caches at start-up; with leader election only the leader then
starts syncing, and a standby keeps its caches warm. The health port serves both probes
from the event loop itself (see :func:`serve_probes`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http
import json
import logging
import os
import signal
from typing import Any

import kopf
import prometheus_client
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from shared_services import api
from shared_services.controller import Controller
from shared_services.kube import Kube
from shared_services.leader import LeaderElector
from shared_services.settings import Settings

log = logging.getLogger(__name__)

# Set by the entry point before kopf starts; the handlers below read it.
SETTINGS = Settings()

# Not ready for this long is worth a log line, and then one every so often while it lasts.
_NOT_READY_LOG_AFTER = 5.0
_NOT_READY_LOG_EVERY = 30.0
# A probe's request is a line and a few headers; anything longer is not a probe.
_MAX_REQUEST_HEAD = 8192
_REQUEST_TIMEOUT = 5.0


def local_client() -> Kube:
    """A client of the cluster the operator runs in: in-cluster config, else $KUBECONFIG."""
    configuration = k8s.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(client_configuration=configuration)
    # Enough pooled connections for every worker plus the watches, so none waits for one.
    configuration.connection_pool_maxsize = 64
    return Kube(k8s.ApiClient(configuration))


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Tune kopf, start the probes, the metrics server, the controller and the election."""
    if SETTINGS.health_port and memo.get("probes") is None:  # kopf retries a failed start-up
        try:
            memo.probes = await serve_probes(SETTINGS.health_port, memo)
        except OSError as error:
            raise kopf.PermanentError(f"cannot serve probes: {error}") from error
    # Events about handler progress would be writes on every import: the controller
    # records only the Events a person needs (address changes, conflicts).
    settings.posting.enabled = False
    # kopf would watch CRDs (and, given namespaces, Namespaces) to notice them coming and
    # going. The chart installs the CRDs and names the namespaces, and least privilege
    # grants neither read: scanning would only retry 403s, and delay serving meanwhile.
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    loop = asyncio.get_running_loop()
    loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="sync")
    )
    if SETTINGS.metrics_port:
        prometheus_client.start_http_server(SETTINGS.metrics_port)
    kube = local_client()
    elector: LeaderElector | None = None
    if SETTINGS.leader_elect:
        elector = LeaderElector(
            kube, namespace=SETTINGS.operator_namespace, name=SETTINGS.lease_name
        )
        # Every write of the controller asks the elector first, at the moment of sending;
        # the elector's own requests (the renewals) go around that fence.
        kube = Kube(kube.api_client, may_write=elector.may_write)
    controller = Controller(settings=SETTINGS, kube=kube)
    memo.controller = controller
    memo.elector = elector
    # Not awaited: a list that is refused would hold kopf's start-up, and the probes with it.
    memo.run = loop.create_task(_run(controller, elector), name="run")
    memo.readiness_log = loop.create_task(_log_readiness(memo), name="readiness log")


async def _run(controller: Controller, elector: LeaderElector | None) -> None:
    """Fill the caches; then sync, at once or once leading; stop when the lease is lost."""
    await controller.fill()
    if elector is None:
        await controller.start()
        _started()
        return
    log.info("caches filled; standing by for the lease %s", elector.name)
    await elector.acquire()
    await controller.start()
    _started()
    await elector.hold()
    # A replica that no longer leads must stop writing at once (its writes are refused
    # already); the Deployment restarts it as a standby.
    os.kill(os.getpid(), signal.SIGTERM)


def _started() -> None:
    log.info(
        "started: namespaces %s, operator namespace %s",
        ", ".join(SETTINGS.namespaces) or "all",
        SETTINGS.operator_namespace,
    )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Stop syncing, give the lease up if held, close the watches and the probes."""
    for name in ("run", "readiness_log"):
        task: asyncio.Task[None] | None = memo.get(name)
        if task is not None:
            task.cancel()
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        await controller.stop()
    elector: LeaderElector | None = memo.get("elector")
    if elector is not None:
        await asyncio.to_thread(elector.release)
    probes: asyncio.Server | None = memo.get("probes")
    if probes is not None:
        probes.close()


@kopf.on.event(api.GROUP, api.VERSION, api.REMOTE_CLUSTER_PLURAL)
async def cluster_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Any change of a RemoteCluster."""
    memo.controller.cluster_event(type, body)


# -- probes --------------------------------------------------------------------------------


def waiting_for(memo: kopf.Memo) -> list[str]:
    """What the operator waits for before it can serve: empty when it is ready.

    Ready means every local cache is filled (the remote clusters' watches do not count: a
    central cluster that is down must not take the operator out of service) and, with
    leader election, leading or standing by warm, not stopping.
    """
    controller: Controller | None = memo.get("controller")
    if controller is None:
        return ["start-up"]
    waiting = controller.unsynced()
    run: asyncio.Task[None] | None = memo.get("run")
    if run is not None and run.done() and not run.cancelled() and run.exception() is not None:
        waiting.append(f"start-up failed: {run.exception()}")
    elector: LeaderElector | None = memo.get("elector")
    if elector is None:
        if not waiting and not controller.active:
            waiting.append("workers: starting")
    elif elector.state == "lost":
        waiting.append("leader election: the lease was lost, stopping")
    elif elector.state == "released":
        waiting.append("leader election: stopping")
    return waiting


def _role(memo: kopf.Memo) -> str:
    elector: LeaderElector | None = memo.get("elector")
    if elector is None:
        return "ready"
    return "ready: leading" if elector.leading else "ready: standing by"


async def _log_readiness(memo: kopf.Memo) -> None:
    """Say what readiness waits for, once it has waited a while, and then every so often."""
    loop = asyncio.get_running_loop()
    since = loop.time()
    logged: float | None = None
    while True:
        await asyncio.sleep(1.0)
        now = loop.time()
        waiting = waiting_for(memo)
        if not waiting:
            if logged is not None:
                log.info("%s", _role(memo))
            since, logged = now, None
            continue
        if now - since >= _NOT_READY_LOG_AFTER and (
            logged is None or now - logged >= _NOT_READY_LOG_EVERY
        ):
            log.warning("not ready, waiting for %s", "; ".join(waiting))
            logged = now


async def serve_probes(port: int, memo: kopf.Memo) -> asyncio.Server:
    """Serve ``/healthz`` (liveness) and ``/readyz`` (readiness) on ``port``.

    kopf's own liveness endpoint serves one path only, and only once every start-up
    handler has returned; both probes share the health port, and liveness must answer
    while readiness still waits, so this small server answers both. It runs on the event
    loop, as kopf's did: a loop that hangs stops answering ``/healthz``, and the kubelet
    restarts the pod. Neither probe sends a request anywhere.
    """

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _REQUEST_TIMEOUT)
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            status, body, kind = _probe(method, target.split("?", 1)[0], memo)
            payload = body.encode()
            writer.write(
                (
                    f"HTTP/1.1 {status.value} {status.phrase}\r\n"
                    f"Content-Type: {kind}\r\nContent-Length: {len(payload)}\r\n"
                    "Connection: close\r\n\r\n"
                ).encode()
                + (payload if method == "GET" else b"")
            )
            await writer.drain()
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError):
            pass  # not a request worth an answer (LimitOverrunError is a ValueError)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    # The kubelet probes the pod's address, not loopback.
    return await asyncio.start_server(
        answer,
        host="0.0.0.0",  # noqa: S104
        port=port,
        limit=_MAX_REQUEST_HEAD,
    )


def _probe(method: str, path: str, memo: kopf.Memo) -> tuple[http.HTTPStatus, str, str]:
    """The status, body and content type of one probe's answer."""
    if method not in ("GET", "HEAD"):
        return http.HTTPStatus.METHOD_NOT_ALLOWED, "GET only\n", "text/plain"
    if path == "/healthz":
        controller: Controller | None = memo.get("controller")
        imports = len(controller.imports) if controller else 0
        return http.HTTPStatus.OK, json.dumps({"imports": imports}), "application/json"
    if path == "/readyz":
        waiting = waiting_for(memo)
        if waiting:
            text = "not ready, waiting for:\n" + "".join(f"  {item}\n" for item in waiting)
            return http.HTTPStatus.SERVICE_UNAVAILABLE, text, "text/plain"
        return http.HTTPStatus.OK, f"{_role(memo)}\n", "text/plain"
    return http.HTTPStatus.NOT_FOUND, "not found; try /healthz or /readyz\n", "text/plain"
