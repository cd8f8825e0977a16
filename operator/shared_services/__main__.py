"""``shared-services-operator`` / ``python -m shared_services``: run the operator.

Flags and environment variables are described by ``--help``. kopf watches the custom
resources; with namespaces listed it watches only those, which is also how a large
installation is split across several releases.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

import aiohttp
import kopf

from shared_services import handlers, memory, profiling
from shared_services.manager import Manager
from shared_services.settings import Settings
from shared_services.version import USER_AGENT

# How long kopf keeps an object's worker after its last event (kopf's default is 5 s).
IDLE_WORKER_SECONDS = 0.5


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's record of an object's last handled spec, which this operator never reads.

    kopf builds a deep copy of every object's spec, labels and annotations on each event, to
    tell change handlers what changed. The operator has event handlers only, which are
    given no diff, and it compares generations itself (``imports``): at 10,000 imports that
    copy of every listed import and of every status echo was CPU for nothing.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        """Nothing: no handler reads a diff."""
        return {}

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        """Nothing stored, nothing fetched."""
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        """Never called without change handlers; would store nothing if it were."""


def kopf_settings() -> kopf.OperatorSettings:
    """Tune kopf for an operator that keeps no per-object state and writes little."""
    settings = kopf.OperatorSettings()
    # Events about handler progress would be writes on every change: the operator records
    # only the Events a person needs (address changes, conflicts).
    settings.posting.enabled = False
    # kopf would watch CRDs (and, given namespaces, Namespaces) to notice them coming and
    # going. The chart installs the CRDs and names the namespaces, and least privilege
    # grants neither read: scanning would only retry 403s, and delay serving meanwhile.
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    # kopf keeps a worker per object for this long after its last event, in case another
    # comes. The handlers only hand the body over and return, so a waiting worker saves
    # nothing, while at start-up every import's worker waits at once: at 10,000 imports,
    # ten thousand idle tasks at the moment the caches are the largest.
    settings.queueing.idle_timeout = IDLE_WORKER_SECONDS
    settings.persistence.diffbase_storage = NoDiffBase()
    return settings


async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
    """The sign-in of kopf's own requests, in a session that names the operator as ours do.

    kopf has no setting for its User-Agent: it sends ``kopf/<version>`` unless the session a
    login handler brings already has one. So the credentials are kopf's usual ones (in-cluster,
    else $KUBECONFIG, read by the kubernetes client as kopf's built-in login reads them), and
    the session is the one kopf would build from them, with the operator's User-Agent added.
    """
    info = await asyncio.to_thread(kopf.login_via_client, **kwargs)
    if info is None:
        return None
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ssl=info.as_ssl_context()),
        headers={**info.as_http_headers(), "User-Agent": USER_AGENT},
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        aiohttp_session=session,
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the settings and run kopf until it is stopped."""
    memory.return_freed_memory()  # before any thread has a heap of its own
    settings = Settings.parse(argv)
    profiling.start(settings.profile_memory)  # traces what start-up allocates, too
    kopf.configure(
        verbose=settings.verbose,
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
    )
    if not settings.verbose:
        # A line per handled event and per health probe drowns what matters at scale.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # The HTTP library logs each retry with the request's URL, and a remote server's URL
    # may carry a secret in its path; the operator says what failed itself, URL-free.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    # The handlers are registered by importing them; they find the manager in the memo.
    assert handlers.startup is not None
    # In place of kopf's built-in login, which it uses only when no handler is registered;
    # a failure stops the operator as that one's does, with no credentials to run on.
    kopf.on.login(id="login", errors=kopf.ErrorsMode.IGNORED)(login)
    # No liveness_endpoint: the operator serves /healthz and /readyz itself (probes.py).
    kopf.run(
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        standalone=True,
        settings=kopf_settings(),
        memo=kopf.Memo(manager=Manager(settings)),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
