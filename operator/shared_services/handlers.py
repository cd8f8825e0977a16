"""kopf's side: start the controller, and hand it RemoteCluster events.

The handlers hold no logic. They are event handlers only (no create/update/delete
handlers), so kopf keeps no per-object state: it writes no progress annotations and adds
no finalizers, and deleting an import or its namespace never waits for the operator to be
running. SharedServiceImports are watched by the controller's own informer instead of kopf
(see Controller.start), because kopf's per-object workers cost more than the sync itself
at thousands of imports.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
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
    """Tune kopf, start the metrics server and the controller."""
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
    asyncio.get_running_loop().set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="sync")
    )
    if SETTINGS.metrics_port:
        prometheus_client.start_http_server(SETTINGS.metrics_port)
    kube = local_client()
    controller = Controller(settings=SETTINGS, kube=kube)
    memo.controller = controller
    if not SETTINGS.leader_elect:
        await controller.start()
        _started()
        return
    elector = LeaderElector(kube, namespace=SETTINGS.operator_namespace, name=SETTINGS.lease_name)
    memo.elector = elector
    memo.leadership = asyncio.get_running_loop().create_task(_lead(controller, elector))


async def _lead(controller: Controller, elector: LeaderElector) -> None:
    """Start syncing once leading; stop the process when the lease is lost."""
    await elector.acquire()
    await controller.start()
    _started()
    await elector.hold()
    # A replica that no longer leads must stop writing at once; the Deployment restarts it.
    os.kill(os.getpid(), signal.SIGTERM)


def _started() -> None:
    log.info(
        "started: namespaces %s, operator namespace %s",
        ", ".join(SETTINGS.namespaces) or "all",
        SETTINGS.operator_namespace,
    )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Close the watches."""
    leadership: asyncio.Task[None] | None = memo.get("leadership")
    if leadership is not None:
        leadership.cancel()
    controller: Controller | None = memo.get("controller")
    if controller is not None and controller.active:
        await controller.stop()
    elector: LeaderElector | None = memo.get("elector")
    if elector is not None:
        await asyncio.to_thread(elector.release)


@kopf.on.event(api.GROUP, api.VERSION, api.REMOTE_CLUSTER_PLURAL)
async def cluster_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Any change of a RemoteCluster."""
    memo.controller.cluster_event(type, body)


@kopf.on.probe(id="imports")
def imports_probe(memo: kopf.Memo, **_: Any) -> int:
    """The liveness endpoint reports how many imports the operator knows."""
    controller: Controller | None = memo.get("controller")
    return len(controller.imports) if controller else 0
