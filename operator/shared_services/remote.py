"""Connections to central clusters, and the shared watches of their Services.

A RemoteCluster names a kubeconfig Secret in the operator's namespace. The registry turns
it into a client (TLS verified; a kubeconfig that turns verification off is refused), asks
the server for its version to prove the credentials, and opens one Service informer per
remote namespace that some import reads from, closed again when the last such import goes.
A changed Secret (a rotated token) reconnects and reopens the informers with the new
credentials, without a restart; from the moment it changed, the previous credentials are
used for nothing, not even the request of a probe in flight. When a cluster cannot be
reached, its informers keep their last contents: imports keep their last known addresses
and say why in a condition.

Each remote namespace watched costs a thread, a watch connection and a list on the central
cluster, and whoever may create imports chooses the namespaces; so a RemoteCluster watches
at most so many (``--max-remote-namespaces``), and an import of one more says
``TooManyRemoteNamespaces`` until a namespace is no longer read.

No loop here ends on an error: whatever a server answers is a :class:`KubeError`, and
anything else (a bug) is logged and retried like an unreachable server, so a RemoteCluster
never stays ``Connecting`` or ``Failed`` for good while its server answers.

Everything here is called on the event loop, except the informers' callbacks (their own
threads) and :meth:`RemoteRegistry.connect`'s blocking part (a worker thread).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from kubernetes import client as k8s

from shared_services import api, conditions, kubeconfig, signin, views
from shared_services.advice import Reason
from shared_services.api import JSON
from shared_services.destinations import Destinations, guard, origin
from shared_services.informer import Informer
from shared_services.kube import (
    INVALID_RESPONSE,
    Forbidden,
    Kube,
    KubeError,
    Unauthorized,
    bounded,
    collection_path,
)
from shared_services.kubeconfig import CredentialsError
from shared_services.policy import SERVER_NOT_ALLOWED
from shared_services.resolve import RemoteLookup

log = logging.getLogger(__name__)

ConnectionState = Literal["Pending", "Connected", "Failed"]
# A server that went away is asked for its version this often at most: cheap, one request
# per cluster however many watches it has, and what brings the watches back within seconds.
_PROBE_BACKOFF_MAX = 8.0
# A frozen server keeps its connections open and sends nothing, so no watch breaks for
# minutes: while connected, its version is asked for this often, with a short timeout
# (which the client's own retries multiply by four).
_HEARTBEAT_SECONDS = 20.0
_PROBE_TIMEOUT = (3.0, 5.0)
_CONNECT_BACKOFF_MAX = 60.0
# A real gitVersion is some 10 to 30 characters ("v1.30.1+vmware.1-fips.1"); whatever a
# server names goes into the status and the Connected message, so it is kept to this.
MAX_SERVER_VERSION = 64
TOO_MANY_REMOTE_NAMESPACES = Reason.TOO_MANY_REMOTE_NAMESPACES
NOT_EXPORTED = Reason.NOT_EXPORTED
# Said when a loop meets what no branch expects: the details are in the log.
INTERNAL_ERROR = Reason.INTERNAL_ERROR
_INTERNAL_MESSAGE = "the operator failed to connect; its log says why, and it tries again"


@dataclass(frozen=True)
class ServiceChanged:
    """A remote Service was listed, added, changed or deleted."""

    cluster: str
    namespace: str
    name: str
    received: float  # the event loop's clock when the watch delivered it


@dataclass(frozen=True)
class WatchChanged:
    """A remote namespace's watch listed, broke or came back: its every reader may care."""

    cluster: str
    namespace: str
    received: float


RemoteEvent = ServiceChanged | WatchChanged


@dataclass
class Connection:
    """One RemoteCluster: its credentials' fingerprint, client and shared watches."""

    name: str
    spec: api.RemoteClusterSpec
    state: ConnectionState = "Pending"
    reason: str = Reason.CONNECTING
    message: str = "connecting"
    server_version: str | None = None
    connected_at: str | None = None
    kube: Kube | None = None
    fingerprint: str | None = None
    informers: dict[str, Informer] = field(default_factory=dict)
    # The remote namespaces read, each by whom (imports, catalogs); watched while there is
    # a client.
    namespaces: dict[str, set[str]] = field(default_factory=dict)
    # Namespaces imports read but that are not watched: one more would be too many.
    refused: set[str] = field(default_factory=set)
    attempt: asyncio.Task[None] | None = None
    probe: asyncio.Task[None] | None = None
    heartbeat: asyncio.Task[None] | None = None


class SecretWatches:
    """Watches of exactly the Secrets that RemoteClusters name, one per Secret.

    The operator's namespace holds other Secrets too (Helm keeps every release there, each
    a compressed copy of the chart); a watch of the whole namespace would cache all of them
    and grow with every upgrade. A field selector on the name keeps each watch to one
    Secret, and a watch is closed once no RemoteCluster names its Secret any more.
    """

    def __init__(self, kube: Kube, *, namespace: str, on_change: Callable[[str], None]) -> None:
        self._kube = kube
        self.namespace = namespace
        self._on_change = on_change  # called from the watches' threads, with the name
        self.informers: dict[str, Informer] = {}

    def use(self, name: str) -> None:
        """Watch Secret ``name`` (idempotent)."""
        if name in self.informers:
            return

        def changed(_type: str, _obj: JSON) -> None:
            self._on_change(name)

        def state(synced: bool, _error: str | None) -> None:
            if synced:  # listed: present or not, the answer is now known
                self._on_change(name)

        self.informers[name] = Informer(
            self._kube,
            collection_path(group="", version="v1", plural="secrets", namespace=self.namespace),
            name=f"secret {name}",
            params={"fieldSelector": f"metadata.name={name}"},
            on_event=changed,
            on_state=state,
        ).start()

    def keep_only(self, names: set[str]) -> None:
        """Close the watches of Secrets that no RemoteCluster names any more."""
        for name in set(self.informers) - names:
            self.informers.pop(name).stop()

    def synced(self, name: str) -> bool:
        """Whether the watch of ``name`` has listed, so that its absence means something."""
        informer = self.informers.get(name)
        return informer is not None and informer.synced.is_set()

    def get(self, name: str) -> JSON | None:
        """The Secret as last seen, if it exists."""
        informer = self.informers.get(name)
        return informer.get(f"{self.namespace}/{name}") if informer else None

    def close(self) -> None:
        """Stop every watch."""
        self.keep_only(set())


def build_client(
    kubeconfig_text: str,
    *,
    context: str | None,
    target: str = "remote",
    destinations: Destinations | None = None,
    sign_in: tuple[api.VsphereSignIn, signin.Credentials] | None = None,
) -> Kube:
    """A client from kubeconfig text, built only from what :mod:`kubeconfig` lets through.

    The document itself never reaches the kubernetes client: its loader runs programs, reads
    files and follows proxies when a kubeconfig asks. It also writes CA and client key data
    to temporary files that stay until the process exits, one more per rotated Secret; here
    the CA and the key go into one TLS context in memory instead, which every connection of
    the client shares. With ``destinations``, each connection goes only where they allow.
    With ``sign_in``, the client signs in as that user and sends the session's token; the
    kubeconfig gives the server and the CA, which the sign-in endpoint is verified with too.
    """
    config = kubeconfig.parse(kubeconfig_text, context=context, signs_in=sign_in is not None)
    configuration = k8s.Configuration()
    configuration.host = config.server
    configuration.verify_ssl = True
    configuration.tls_server_name = config.tls_server_name
    secrets: tuple[str, ...] = ()
    if isinstance(config.credentials, kubeconfig.BearerToken):
        configuration.api_key = {"BearerToken": config.credentials.token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        token = config.credentials.token
        secrets = (token, base64.b64encode(token.encode()).decode())
    tls = _tls_context(config)
    api_client = k8s.ApiClient(configuration)
    # The client has no setting for a ready-made context; urllib3 takes one per pool.
    api_client.rest_client.pool_manager.connection_pool_kw["ssl_context"] = tls
    if destinations is not None:
        what = f"the kubeconfig's server {origin(config.server)}"
        guard(api_client.rest_client.pool_manager, destinations, what=what)
    session = None
    if sign_in is not None:
        how, credentials = sign_in
        session = signin.Session(
            cluster=target,
            url=signin.sign_in_url(config.server, how.url),
            credentials=credentials,
            secret=how.credentials_secret_ref.name,
            tls=tls,
            destinations=destinations,
        )
    return Kube(api_client, target=target, secrets=secrets, bearer=session)


def _tls_context(config: kubeconfig.Kubeconfig) -> ssl.SSLContext:
    """TLS that verifies the server against the kubeconfig's CA, else the system's.

    With a client certificate as the credential, the context presents it.
    """
    where = f"{config.cluster_path}.certificate-authority-data"
    try:
        tls = ssl.create_default_context(
            cadata=config.ca_pem.decode("ascii") if config.ca_pem else None
        )
    except ssl.SSLError:
        msg = f"{where} holds no certificate that TLS can use"
        raise CredentialsError(kubeconfig.INVALID, msg) from None
    tls.hostname_checks_common_name = False  # as client-go: the names are in the SANs
    credentials = config.credentials
    if isinstance(credentials, kubeconfig.ClientCertificate):
        # ssl loads a certificate and key only from files: these live in memory, are read
        # once, here, and are gone when closed.
        cert = os.memfd_create("client-certificate", os.MFD_CLOEXEC)
        key = os.memfd_create("client-key", os.MFD_CLOEXEC)
        try:
            for fd, pem in ((cert, credentials.certificate_pem), (key, credentials.key_pem)):
                with open(fd, "wb", closefd=False) as file:
                    file.write(pem)
            # A key that wants a password gets an empty one, rather than a prompt.
            tls.load_cert_chain(f"/proc/self/fd/{cert}", f"/proc/self/fd/{key}", password=b"")
        except ssl.SSLError:
            msg = (
                f"{config.user_path}.client-certificate-data and client-key-data are not a "
                "certificate and its unencrypted private key"
            )
            raise CredentialsError(kubeconfig.INVALID, msg) from None
        finally:
            os.close(cert)
            os.close(key)
    return tls


def server_version(answer: JSON) -> str:
    """The version a server's ``/version`` names, bounded and printable; "" if none."""
    version = answer.get("gitVersion")
    if not isinstance(version, str):
        return ""
    printable = "".join(c if c.isprintable() else "?" for c in version)
    return bounded(printable, MAX_SERVER_VERSION)


def _describe_failure(error: KubeError) -> tuple[str, str]:
    if error.reason in (INVALID_RESPONSE, SERVER_NOT_ALLOWED, *signin.REASONS):
        return error.reason, error.message
    if isinstance(error, Unauthorized):
        return Reason.UNAUTHORIZED, "the credentials were rejected (401)"
    if isinstance(error, Forbidden):
        return Reason.FORBIDDEN, f"the credentials lack permission: {error.message}"
    text = error.message
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return (
            Reason.TLS_UNTRUSTED,
            "the server's certificate is not trusted by the kubeconfig's CA",
        )
    return Reason.UNREACHABLE, text


class Connector:
    """Connects each RemoteCluster with its Secret's credentials, and watches it answer.

    It connects (and again on every change of the Secret, with backoff while it fails),
    asks a connected server for its version when a watch broke or a heartbeat is due, and
    says each change of state through ``on_cluster``. The :class:`RemoteRegistry` owns the
    connections and their watches; this class only moves each connection between states.
    """

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        clusters: dict[str, Connection],
        secrets: SecretWatches,
        on_cluster: Callable[[str], None],
        start_informer: Callable[[Connection, str], Informer],
        destinations: Destinations | None = None,
    ) -> None:
        self._loop = loop
        self.clusters = clusters  # the registry's own table, shared
        self.secrets = secrets
        self._on_cluster = on_cluster
        self._start_informer = start_informer
        # Where a server may be; None (tests of this module alone) lets any be.
        self._destinations = destinations

    def schedule(self, connection: Connection) -> None:
        """(Re)connect ``connection`` from now on, ending any try under way."""
        if connection.attempt and not connection.attempt.done():
            connection.attempt.cancel()
        connection.attempt = self._loop.create_task(self._connect(connection))

    async def _connect(self, connection: Connection) -> None:
        """Connect with the Secret's credentials; retried with backoff until connected.

        Ends once connected, or when nothing can change before the Secret or the
        RemoteCluster does (each of those starts it again). Nothing else ends it: an error
        that no branch expects is logged, said in the status, and retried.
        """
        delay = 1.0
        while connection.name in self.clusters:
            if not all(map(self.secrets.synced, secret_names(connection.spec))):
                return  # its watch has not listed yet; when it has, secret_changed comes
            try:
                if await self._connect_once(connection):
                    return
            except Exception:  # the last resort: never Connecting for good
                log.exception("remote cluster %s: connecting failed", connection.name)
                self._failed(connection, INTERNAL_ERROR, _INTERNAL_MESSAGE)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311
            delay = min(delay * 2, _CONNECT_BACKOFF_MAX)

    async def _connect_once(self, connection: Connection) -> bool:
        """One try; True when done (connected, or nothing to retry), False to try again."""
        try:
            content = _read_secret(self.secrets, connection.spec)
        except CredentialsError as error:
            await self._revoke(connection)
            self._failed(connection, error.reason, error.message)
            return True
        fingerprint = content.fingerprint
        if fingerprint == connection.fingerprint and connection.state == "Connected":
            return True  # the Secret changed elsewhere, not under our key
        if connection.kube is not None and fingerprint != connection.fingerprint:
            # Replaced credentials are used no more from now on, whether the new ones work
            # or not: rotating the Secret is how access is taken back.
            await self._drop_client(connection)
        try:
            kube = await asyncio.to_thread(
                build_client,
                content.kubeconfig,
                context=connection.spec.context or None,
                target=connection.name,
                destinations=self._destinations,
                sign_in=(
                    (connection.spec.vsphere_sign_in, content.sign_in)
                    if connection.spec.vsphere_sign_in is not None and content.sign_in
                    else None
                ),
            )
        except CredentialsError as error:
            await self._revoke(connection)
            self._failed(connection, error.reason, error.message)
            return True  # nothing to retry until the Secret or the RemoteCluster changes
        try:
            version = await asyncio.to_thread(kube.request, "GET", "/version")
        except KubeError as error:
            kube.close()
            reason, message = _describe_failure(error)
            if reason in (Reason.UNAUTHORIZED, Reason.FORBIDDEN, signin.REJECTED):
                await self._revoke(connection)
            self._failed(connection, reason, message)
            # A refused password is not tried again before the Secret changes: vCenter
            # locks a user out after a few failed sign-ins.
            return reason == signin.REJECTED
        self._connected(connection, kube, fingerprint=fingerprint, version=version)
        return True

    def _connected(
        self, connection: Connection, kube: Kube, *, fingerprint: str, version: JSON
    ) -> None:
        old = connection.kube
        connection.kube = kube
        connection.fingerprint = fingerprint
        connection.state = "Connected"
        connection.reason = Reason.CONNECTED
        connection.server_version = server_version(version)
        connection.message = f"connected to {kube.origin}, Kubernetes {connection.server_version}"
        connection.connected_at = conditions.now()
        for namespace in list(connection.informers):
            connection.informers[namespace].stop()
            connection.informers[namespace] = self._start_informer(connection, namespace)
        # Namespaces that imports began to read while there was no client to watch them.
        for namespace in connection.namespaces.keys() - connection.informers.keys():
            connection.informers[namespace] = self._start_informer(connection, namespace)
        if old is not None:
            old.close()
        if connection.heartbeat is None or connection.heartbeat.done():
            connection.heartbeat = self._loop.create_task(self._heartbeat(connection))
        self._on_cluster(connection.name)

    async def _heartbeat(self, connection: Connection) -> None:
        while self.clusters.get(connection.name) is connection:
            await asyncio.sleep(_HEARTBEAT_SECONDS * random.uniform(0.8, 1.2))  # noqa: S311
            try:
                self.check(connection.name)
            except Exception:  # the last resort: a frozen server must go on being noticed
                log.exception("remote cluster %s: heartbeat failed", connection.name)

    def check(self, cluster: str) -> None:
        """Ask whether ``cluster``'s server still answers, unless already asking."""
        connection = self.clusters.get(cluster)
        if connection is None or connection.state != "Connected":
            return
        if any(task and not task.done() for task in (connection.attempt, connection.probe)):
            return
        connection.probe = self._loop.create_task(self._probe(connection))

    async def _probe(self, connection: Connection) -> None:
        """Ask the server for its version until it answers (after a watch broke, or a beat).

        Credentials are proven once, at connect; after that a broken watch, or a heartbeat
        left unanswered, is what shows that the server went away (a frozen server breaks no
        watch). The RemoteCluster then says so, rather than Connected while every import
        serves its last known addresses; and once the server answers again, the watches list
        at once instead of waiting out their own, longer backoff. A watch refused in one
        namespace only leaves the cluster Connected: the server answers. It ends once the
        server answered, or once the client it asks with was replaced; no error ends it
        otherwise, or the RemoteCluster would stay Failed while its server answers.
        """
        kube = connection.kube
        delay = 1.0
        while kube is not None and connection.kube is kube:
            try:
                if await self._probe_once(connection, kube):
                    return
            except Exception:  # the last resort: never Failed for good
                log.exception("remote cluster %s: probing failed", connection.name)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311
            delay = min(delay * 2, _PROBE_BACKOFF_MAX)

    async def _probe_once(self, connection: Connection, kube: Kube) -> bool:
        """One question; True when the server answered or the client was replaced."""
        try:
            await asyncio.to_thread(kube.request, "GET", "/version", timeout=_PROBE_TIMEOUT)
        except KubeError as error:
            if connection.kube is not kube:
                return True  # reconnected meanwhile with new credentials, or revoked
            self._failed(connection, *_describe_failure(error))
            return False
        if connection.kube is kube and connection.state == "Failed":
            connection.state = "Connected"
            connection.reason = Reason.CONNECTED
            connection.message = (
                f"connected to {kube.origin}, Kubernetes {connection.server_version}"
            )
            connection.connected_at = conditions.now()
            for informer in connection.informers.values():
                informer.retry_now()
            self._on_cluster(connection.name)
        return True

    async def _drop_client(self, connection: Connection) -> None:
        """Use the connection's client no more: its watches stop and it is closed.

        Their caches stay, as last known state. The client goes first, so that nothing
        started meanwhile (a watch for a new import) picks it up.
        """
        kube, connection.kube = connection.kube, None
        running = [i for i in connection.informers.values() if i.running]
        await asyncio.gather(*(asyncio.to_thread(i.stop) for i in running))
        if kube is not None:
            kube.close()

    async def _revoke(self, connection: Connection) -> None:
        """Stop watching with credentials that were replaced by ones that do not work.

        Rotating a Secret is how a platform team revokes access, so the watches opened with
        the previous credentials must not go on, nor the client that opened them be used
        again. Their caches stay, as last known state.
        """
        await self._drop_client(connection)
        connection.fingerprint = None
        connection.state = "Failed"

    def _failed(self, connection: Connection, reason: str, message: str) -> None:
        changed = (connection.state, connection.reason, connection.message) != (
            "Failed",
            reason,
            message,
        )
        connection.state, connection.reason, connection.message = "Failed", reason, message
        if changed:
            log.warning("remote cluster %s: %s", connection.name, message)
            self._on_cluster(connection.name)


class RemoteRegistry:
    """All RemoteClusters and their shared Service watches."""

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        kube: Kube,
        secrets_namespace: str,
        on_service: Callable[[RemoteEvent], None],
        on_cluster: Callable[[str], None],
        max_namespaces: int = 50,
        destinations: Destinations | None = None,
    ) -> None:
        self._loop = loop

        def secret_event(name: str) -> None:  # from a watch's thread
            loop.call_soon_threadsafe(self.secret_changed, name)

        self.secrets = SecretWatches(kube, namespace=secrets_namespace, on_change=secret_event)
        self._on_service = on_service
        self._on_cluster = on_cluster
        self.max_namespaces = max_namespaces
        self.clusters: dict[str, Connection] = {}
        self._connector = Connector(
            loop=loop,
            clusters=self.clusters,
            secrets=self.secrets,
            on_cluster=on_cluster,
            start_informer=self._start_informer,
            destinations=destinations,
        )

    # -- RemoteCluster lifecycle ---------------------------------------------------------

    def upsert(self, name: str, spec: api.RemoteClusterSpec) -> None:
        """A RemoteCluster was created or changed."""
        connection = self.clusters.get(name)
        if connection is None:
            connection = self.clusters[name] = Connection(name=name, spec=spec)
        elif connection.spec == spec:
            return
        old, connection.spec = connection.spec, spec
        if connection.kube is not None and old.require_export != spec.require_export:
            # What the watches select changed: each lists again, and reads what it now may.
            for namespace in list(connection.informers):
                connection.informers[namespace].stop()
                connection.informers[namespace] = self._start_informer(connection, namespace)
        self._watch_secrets()
        self._connector.schedule(connection)

    def remove(self, name: str) -> None:
        """A RemoteCluster was deleted: close its watches."""
        connection = self.clusters.pop(name, None)
        if connection is None:
            return
        for task in (connection.attempt, connection.probe, connection.heartbeat):
            if task:
                task.cancel()
        for informer in connection.informers.values():
            informer.stop()
        if connection.kube is not None:
            connection.kube.close()
        self._watch_secrets()
        self._on_cluster(name)

    def _watch_secrets(self) -> None:
        names = {n for c in self.clusters.values() for n in secret_names(c.spec)}
        self.secrets.keep_only(names)
        for name in names:
            self.secrets.use(name)

    def secret_changed(self, secret_name: str) -> None:
        """A Secret in the operator's namespace changed: reconnect clusters that use it."""
        for connection in self.clusters.values():
            if secret_name in secret_names(connection.spec):
                self._connector.schedule(connection)

    # -- shared watches ------------------------------------------------------------------

    def want(self, cluster: str, namespace: str, *, by: str = "imports") -> bool:
        """Watch ``namespace`` on ``cluster``, which ``by`` reads (idempotent).

        Returns True when that changed what is watched or refused: the caller then reads
        again. A namespace beyond the RemoteCluster's ``max_namespaces`` is refused; its
        readers are queued again once a namespace is freed. A RemoteCluster not known yet
        watches nothing: its readers are queued again when it comes.
        """
        connection = self.clusters.get(cluster)
        if connection is None or namespace in connection.refused:
            return False
        readers = connection.namespaces.get(namespace)
        if readers is not None:
            readers.add(by)
            return False
        if len(connection.namespaces) >= self.max_namespaces:
            connection.refused.add(namespace)
            return True
        connection.namespaces[namespace] = {by}
        if connection.kube is not None:
            connection.informers[namespace] = self._start_informer(connection, namespace)
        return True

    def unwant(self, cluster: str, namespace: str, *, by: str = "imports") -> None:
        """``by`` reads ``namespace`` on ``cluster`` no more: once nobody does, its watch closes.

        A freed namespace gives the refused ones their turn: each is said to have changed,
        so that its readers sync again and ask for it, the first come first served.
        """
        connection = self.clusters.get(cluster)
        if connection is None:
            return
        readers = connection.namespaces.get(namespace)
        if readers is None:
            connection.refused.discard(namespace)
            return
        readers.discard(by)
        if readers:
            return
        del connection.namespaces[namespace]
        informer = connection.informers.pop(namespace, None)
        if informer is not None:
            informer.stop()
        waiting, connection.refused = connection.refused, set()
        for refused in waiting:
            self._loop.call_soon(
                self._on_service, WatchChanged(cluster, refused, received=self._loop.time())
            )

    def lookup(self, cluster: str, namespace: str, name: str) -> RemoteLookup:
        """The remote Service as last seen, and whether that view is current."""
        watched = self._watched(cluster, namespace)
        if isinstance(watched, RemoteLookup):
            return watched
        connection, informer = watched
        service = informer.get(f"{namespace}/{name}")
        if service is not None:
            return RemoteLookup(known=True, service=service, reason="Found", message="")
        if connection.spec.require_export:
            # Only exported Services are sent: one missing may exist and not be shared.
            return RemoteLookup.absent(
                NOT_EXPORTED,
                f"Service {namespace}/{name} on RemoteCluster {cluster!r} is not exported: "
                f'its owners have not labelled it {api.EXPORT_LABEL}: "true", or withdrew '
                "it, or it does not exist",
            )
        return RemoteLookup.absent(
            Reason.REMOTE_SERVICE_NOT_FOUND,
            f"Service {namespace}/{name} not found on RemoteCluster {cluster!r}",
        )

    def services(self, cluster: str, namespace: str) -> list[JSON] | RemoteLookup:
        """Every Service of the namespace as last seen; why not, when that is not known."""
        watched = self._watched(cluster, namespace)
        if isinstance(watched, RemoteLookup):
            return watched
        return list(watched[1].cache.values())

    def _watched(self, cluster: str, namespace: str) -> tuple[Connection, Informer] | RemoteLookup:
        """The connection and the namespace's listed watch; why not, when there is none."""
        connection = self.clusters.get(cluster)
        if connection is None:
            message = f"RemoteCluster {cluster!r} does not exist"
            return RemoteLookup.unknown(Reason.REMOTE_CLUSTER_NOT_FOUND, message)
        informer = connection.informers.get(namespace)
        unwatched = self._unwatched(connection, namespace, informer)
        if unwatched is not None or informer is None:
            return unwatched or RemoteLookup.unknown(Reason.CONNECTING, "not watched yet")
        return connection, informer

    def _unwatched(
        self, connection: Connection, namespace: str, informer: Informer | None
    ) -> RemoteLookup | None:
        """Why the namespace's Services cannot be read now; None when they can."""
        cluster = connection.name
        if namespace in connection.refused:  # one namespace too many
            return RemoteLookup.absent(
                TOO_MANY_REMOTE_NAMESPACES,
                f"RemoteCluster {cluster!r} watches {self.max_namespaces} remote namespaces "
                f"already, the most the operator allows (MAX_REMOTE_NAMESPACES); {namespace!r} "
                "is not watched",
            )
        if namespace not in connection.namespaces:
            return RemoteLookup.unknown(Reason.CONNECTING, "not watched yet")
        if connection.state != "Connected" or informer is None:
            reason = (
                Reason.REMOTE_UNAVAILABLE if connection.state == "Failed" else Reason.CONNECTING
            )
            return RemoteLookup.unknown(reason, f"RemoteCluster {cluster!r}: {connection.message}")
        if informer.synced.is_set():
            return None
        if informer.error:
            message = f"watching Services in {cluster}/{namespace}: {informer.error}"
            return RemoteLookup.unknown(Reason.REMOTE_UNAVAILABLE, message)
        return RemoteLookup.unknown(Reason.CONNECTING, "listing remote Services")

    def watch_counts(self) -> dict[str, tuple[int, int]]:
        """Per cluster: (watches up, watches down), for the metrics."""
        counts: dict[str, tuple[int, int]] = {}
        for name, connection in self.clusters.items():
            # Without a client (its credentials replaced or refused) nothing is watched,
            # whatever the stopped watches last knew.
            up = sum(
                1
                for i in connection.informers.values()
                if connection.kube is not None and i.synced.is_set()
            )
            counts[name] = (up, len(connection.informers) - up)
        return counts

    def close(self) -> None:
        """Stop every watch."""
        for name in list(self.clusters):
            self.remove(name)
        self.secrets.close()

    def _start_informer(self, connection: Connection, namespace: str) -> Informer:
        assert connection.kube is not None
        cluster = connection.name

        def on_event(_type: str, obj: JSON) -> None:
            name = str(obj.get("metadata", {}).get("name", ""))
            event = ServiceChanged(cluster, namespace, name, received=self._loop.time())
            self._loop.call_soon_threadsafe(self._on_service, event)

        def on_state(synced: bool, _error: str | None) -> None:
            if not synced:
                self._loop.call_soon_threadsafe(self._connector.check, cluster)
            event = WatchChanged(cluster, namespace, received=self._loop.time())
            self._loop.call_soon_threadsafe(self._on_service, event)

        # With exports required, the server sends only exported Services: a namespace with
        # thousands of others costs neither side anything for them.
        selector = {"labelSelector": api.EXPORT_SELECTOR} if connection.spec.require_export else {}
        return Informer(
            connection.kube,
            collection_path(group="", version="v1", plural="services", namespace=namespace),
            name=f"{cluster}/{namespace}/services",
            params=selector,
            on_event=on_event,
            on_state=on_state,
            transform=views.remote_service,  # what the resolver reads, not the whole Service
        ).start()


def secret_names(spec: api.RemoteClusterSpec) -> set[str]:
    """The Secrets a RemoteCluster reads: its kubeconfig's, and its sign-in credentials'."""
    names = {spec.kubeconfig_secret_ref.name}
    if spec.vsphere_sign_in is not None:
        names.add(spec.vsphere_sign_in.credentials_secret_ref.name)
    return names


@dataclass(frozen=True)
class SecretContent:
    """What a RemoteCluster's Secrets hold, and a fingerprint of it to see rotation."""

    kubeconfig: str
    sign_in: signin.Credentials | None
    fingerprint: str


def _read_secret(secrets: SecretWatches, spec: api.RemoteClusterSpec) -> SecretContent:
    """The kubeconfig in the RemoteCluster's Secret (and the sign-in credentials, if any).

    The fingerprint covers the context and the sign-in too: the same document with another
    context, or another user, is other credentials.

    Raises CredentialsError, naming the Secrets and keys but nothing of their content.
    """
    ref = spec.kubeconfig_secret_ref
    secret = secrets.get(ref.name)
    if secret is None:
        raise CredentialsError(
            Reason.SECRET_NOT_FOUND,
            f"Secret {ref.name!r} not found in the operator's namespace {secrets.namespace!r}",
        )
    data = secret.get("data") or {}
    if ref.key not in data:
        raise CredentialsError(
            Reason.SECRET_KEY_MISSING,
            f"Secret {ref.name!r} has no key {ref.key!r}",
        )
    raw = base64.b64decode(data[ref.key])
    digest = hashlib.sha256(raw + b"\0" + (spec.context or "").encode())
    credentials = None
    if spec.vsphere_sign_in is not None:
        name = spec.vsphere_sign_in.credentials_secret_ref.name
        held = secrets.get(name)
        if held is None:
            raise CredentialsError(
                Reason.SECRET_NOT_FOUND,
                f"Secret {name!r} not found in the operator's namespace {secrets.namespace!r}",
            )
        fields = held.get("data") or {}
        decoded = {
            key: base64.b64decode(fields[key]).decode(errors="replace")
            for key in ("username", "password")
            if isinstance(fields.get(key), str)
        }
        try:
            credentials = signin.credentials(decoded, secret=name)
        except signin.SignInError as error:
            raise CredentialsError(error.reason, error.message) from None
        for part in (spec.vsphere_sign_in.url or "", credentials.username, credentials.password):
            digest.update(b"\0" + part.encode())
    # Only a fingerprint is kept to notice rotation; the credentials are never logged.
    return SecretContent(raw.decode(errors="replace"), credentials, digest.hexdigest())
