"""Start, stop and readiness: the client, the leader election, the controller and the probes.

kopf's handlers call :func:`start` and :func:`stop` and pass RemoteClusters on; all the
rest happens behind them. Every replica fills its caches at start-up; with leader election
only the leader then syncs, a standby keeps its caches warm, and a replica that loses the
lease stops at once (its writes are refused already) and is restarted as a standby. The
tasks it cannot run without are watched by liveness: one that ended fails ``/healthz``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
from collections.abc import Mapping
from typing import Any

import prometheus_client
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from shared_services import memory, metrics, probes, profiling
from shared_services.api import CATALOG_PLURAL, GROUP, IMPORT_PLURAL, REMOTE_CLUSTER_PLURAL, VERSION
from shared_services.controller import Controller
from shared_services.kube import Kube
from shared_services.leader import LeaderElector
from shared_services.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "CATALOG_PLURAL",
    "GROUP",
    "IMPORT_PLURAL",
    "REMOTE_CLUSTER_PLURAL",
    "VERSION",
    "Manager",
    "local_client",
]

# Not ready for this long is worth a log line, and then one every so often while it lasts.
_NOT_READY_LOG_AFTER = 5.0
_NOT_READY_LOG_EVERY = 30.0
# Threads (and pooled connections) beyond one per worker: the watches' callbacks, the
# lists, the lease and the Event writes.
_SPARE_THREADS = 16


def local_client(connections: int = 64) -> Kube:
    """A client of the cluster the operator runs in: in-cluster config, else $KUBECONFIG."""
    configuration = k8s.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(client_configuration=configuration)
    # Enough pooled connections for every worker plus the watches, so none waits for one.
    configuration.connection_pool_maxsize = connections
    return Kube(k8s.ApiClient(configuration))


class Manager:
    """One operator process: its controller, its election, its probes and their answers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.controller: Controller | None = None
        self.elector: LeaderElector | None = None
        self.probes: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._run: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        """Serve the probes and the metrics; fill, then sync once leading. Returns at once."""
        if self.settings.health_port and self.probes is None:
            self.probes = await probes.serve(
                self.settings.health_port,
                self,
                memory_report=(
                    None if self.settings.profile_memory == profiling.OFF else self.memory_report
                ),
            )
        if self.controller is not None:
            return  # kopf retries a start-up that raised; what started stays started
        loop = asyncio.get_running_loop()
        # Every worker, and every worker that serves only moves, may block in a request
        # where the configuration has its writes sent from threads (see kube.AsyncKube).
        threads = 2 * self.settings.workers + _SPARE_THREADS
        loop.set_default_executor(
            concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sync")
        )
        if self.settings.metrics_port:
            prometheus_client.start_http_server(self.settings.metrics_port)
        kube = local_client(connections=max(64, threads))
        if self.settings.leader_elect:
            self.elector = LeaderElector(
                kube,
                namespace=self.settings.operator_namespace,
                name=self.settings.lease_name,
                duration=self.settings.lease_duration,
                renew_deadline=self.settings.renew_deadline,
                retry_period=self.settings.retry_period,
            )
            # Every write of the controller asks the elector first, at the moment of sending;
            # the elector's own requests (the renewals) go around that fence.
            kube = Kube(
                kube.api_client,
                may_write=self.elector.may_write,
                time_left=self.elector.time_left,
            )
        self.controller = Controller(settings=self.settings, kube=kube)
        # Not awaited: a list that is refused would hold kopf's start-up, and the probes.
        self._run = loop.create_task(self._lead(self.controller), name="run")
        self._tasks = [
            self._run,
            loop.create_task(self._log_readiness(), name="readiness log"),
            loop.create_task(memory.watch(self.settings.memory_limit), name="memory watch"),
        ]
        controller = self.controller
        metrics.LEADING.set_function(lambda: 1.0 if controller.active else 0.0)

    async def stop(self) -> None:
        """Stop syncing, give the lease up if held, close the watches and the probes."""
        self._stopping = True  # what is cancelled from here on has not failed
        for task in self._tasks:
            task.cancel()
        if self.controller is not None:
            await self.controller.stop()
        if self.elector is not None:
            await asyncio.to_thread(self.elector.release)
        if self.probes is not None:
            self.probes.close()

    def cluster_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A RemoteCluster was listed, added, changed or deleted."""
        if self.controller is not None:
            self.controller.cluster_event(event_type, body)

    def import_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A SharedServiceImport was listed, added, changed or deleted."""
        if self.controller is not None:
            self.controller.import_event(event_type, body)

    def catalog_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A SharedServiceCatalog was listed, added, changed or deleted."""
        if self.controller is not None:
            self.controller.catalog_event(event_type, body)

    async def _lead(self, controller: Controller) -> None:
        """Fill the caches; then sync, at once or once leading; stop when the lease is lost."""
        await controller.fill()
        if self.elector is None:
            await controller.start()
            self._started()
            return
        log.info("caches filled; standing by for the lease %s", self.elector.name)
        await self.elector.acquire()
        await controller.start()
        self._started()
        await self.elector.hold()
        # A replica that no longer leads must stop writing at once (its writes are refused
        # already); the Deployment restarts it as a standby.
        os.kill(os.getpid(), signal.SIGTERM)

    def _started(self) -> None:
        log.info(
            "started: namespaces %s, operator namespace %s",
            ", ".join(self.settings.namespaces) or "all",
            self.settings.operator_namespace,
        )

    def memory_report(self) -> dict[str, Any]:
        """Where the memory goes (``/debug/memory``): the controller's tables and more."""
        return profiling.report(
            self.controller, imports=self.imports(), resident=memory.resident_bytes
        )

    # -- readiness -----------------------------------------------------------------------

    def imports(self) -> int:
        """How many imports the operator knows, for the liveness answer."""
        return len(self.controller.imports) if self.controller is not None else 0

    def waiting_for(self) -> list[str]:
        """What the operator waits for before it can serve: empty when it is ready.

        Ready means every local cache is filled (the remote clusters' watches do not count:
        a central cluster that is down must not take the operator out of service) and, with
        leader election, leading or standing by warm, not stopping.
        """
        if self.controller is None:
            return ["start-up"]
        waiting = self.controller.unsynced()
        run = self._run
        if run is not None and run.done() and not run.cancelled() and run.exception() is not None:
            waiting.append(f"start-up failed: {run.exception()}")
        if self.elector is None:
            if not waiting and not self.controller.active:
                waiting.append("workers: starting")
        elif self.elector.state == "lost":
            waiting.append("leader election: the lease was lost, stopping")
        elif self.elector.state == "released":
            waiting.append("leader election: stopping")
        return waiting

    def failed(self) -> list[str]:
        """The tasks the operator cannot run without that have ended: liveness fails.

        The start-up and leader task (``run``), which returns once syncing started without
        leader election and otherwise runs as long as the lease is held; and, once syncing,
        the controller's workers, resync and status writers, which never end.
        """
        if self._stopping:
            return []
        failed = []
        run = self._run
        if run is not None and run.done() and (run.cancelled() or run.exception() is not None):
            failed += probes.ended([run])
        if self.controller is not None and self.controller.active:
            failed += probes.ended(self.controller.tasks())
        return failed

    def notes(self) -> list[str]:
        """What the operator does without on this cluster, and why: readiness shows it."""
        return list(self.controller.networks.notes) if self.controller is not None else []

    def role(self) -> str:
        """What a ready replica does: all of it, or leading, or standing by."""
        if self.elector is None:
            return "ready"
        return "ready: leading" if self.elector.leading else "ready: standing by"

    async def _log_readiness(self) -> None:
        """Say what readiness waits for, once it has waited a while, and then every so often."""
        loop = asyncio.get_running_loop()
        since = loop.time()
        logged: float | None = None
        while True:
            await asyncio.sleep(1.0)
            now = loop.time()
            waiting = self.waiting_for()
            if not waiting:
                if logged is not None:
                    log.info("%s", self.role())
                since, logged = now, None
                continue
            if now - since >= _NOT_READY_LOG_AFTER and (
                logged is None or now - logged >= _NOT_READY_LOG_EVERY
            ):
                log.warning("not ready, waiting for %s", "; ".join(waiting))
                logged = now
