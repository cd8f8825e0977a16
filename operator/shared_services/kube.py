"""A thin JSON layer over the kubernetes client: requests, errors and watch streams.

The generated client turns every response into model objects, which costs more than the
operator's whole reconcile and hides fields the builders compare. Here bodies stay plain
dicts, while authentication, TLS and connection pooling stay the client's. Errors are
sorted once, here, into a class for each answer the rest of the operator tells apart:
:class:`Unauthorized` (401), :class:`Forbidden` (403), :class:`NotFound` (404),
:class:`Conflict` (409), :class:`Gone` (410), :class:`Invalid` (422),
:class:`TooManyRequests` (429); anything else is a :class:`KubeError`, whose ``temporary``
says whether trying again later may help (5xx, 429, connection trouble).

Whatever comes back is one of those or a JSON object: a connection cut in the middle of a
body, a page of HTML with 200 (a proxy or a portal before the server), JSON that is not an
object are each a temporary :class:`KubeError`, so a caller that catches those alone never
meets anything else. A message quoted from a server is scrubbed of the client's
credentials and then bounded, since it ends up in conditions and logs.

A write is sent once. The client library would send a PUT or DELETE again on its own after
a connection broke, tens of seconds later, where no fence is asked: a replica that stopped
leading meanwhile would write. So library retries are off for writes, each write may take
no longer than the time the fence has left, and a write that failed comes back through the
caller's own retry, which asks the fence again.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import urllib3
from kubernetes import client as k8s
from kubernetes.client.rest import should_bypass_proxies

from shared_services import destinations, metrics
from shared_services.advice import Reason
from shared_services.api import JSON
from shared_services.version import FIELD_MANAGER, USER_AGENT

JSON_TYPE: Final = "application/json"
MERGE_PATCH: Final = "application/merge-patch+json"
# How long the configuration's Authorization header is used before it is asked again.
AUTHORIZATION_SECONDS: Final = 1.0
# Only each object's metadata, for a reader of names: a list, and a watch's events. The plain
# type after them is what a server that cannot send the partial ones answers instead.
METADATA_LIST: Final = (
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
)
METADATA: Final = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
REQUEST_TIMEOUT: Final = (5.0, 30.0)
# A message quoted from a server: long enough for any refusal the API server words (they
# name a field and a rule), short enough that a condition holding one stays readable.
MAX_MESSAGE: Final = 1024
# Fields named as the causes of one refusal, and a server's word for its reason.
_MAX_FIELDS = 16
_MAX_REASON = 64


def bounded(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, saying that it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Bearer(Protocol):
    """A bearer token that changes over time, such as a signed-in session's."""

    def token(self) -> str:
        """The token to send now; raises a KubeError when there is none."""

    def rejected(self, token: str) -> None:
        """The server answered 401 to ``token``."""

    def secrets(self) -> Sequence[str]:
        """What no message may show."""

    def close(self) -> None:
        """Used no more."""


def _lines(response: Any) -> Iterator[bytes]:
    """The lines of a watch stream, as they arrive.

    Each line is one event, as long as its object: up to about 1.5 MB. A line is yielded
    and then let go before the next chunk is awaited, so an idle watch holds none of it.
    """
    buffer = bytearray()
    for segment in response.stream(amt=None, decode_content=False):
        buffer += segment
        start = 0
        while (end := buffer.find(b"\n", start)) != -1:
            line = bytes(buffer[start:end])
            start = end + 1
            if line.strip():
                yield line
            del line
        del buffer[:start]


class KubeError(Exception):
    """A failed API request; ``status`` is the HTTP status, 0 for connection failures.

    ``fields`` are the paths the API server named as the causes of a 422 (Invalid).
    """

    def __init__(
        self, status: int, reason: str, message: str, *, fields: tuple[str, ...] = ()
    ) -> None:
        super().__init__(f"{status} {reason}: {message}" if status else message)
        self.status = status
        self.reason = reason
        self.message = message
        self.fields = fields

    @property
    def temporary(self) -> bool:
        """Whether trying again later may succeed without anyone changing anything."""
        return self.status in {0, 429} or self.status >= 500


class Unauthorized(KubeError):
    """401: the credentials are not (or no longer) accepted."""


class Forbidden(KubeError):
    """403: the identity may not do this (or the namespace is being terminated)."""


class NotFound(KubeError):
    """404: the object (or its namespace) does not exist."""


class Conflict(KubeError):
    """409: already exists, or a resourceVersion/uid precondition failed."""


class Gone(KubeError):
    """410: a watch asked for a resourceVersion the server no longer has."""


class Invalid(KubeError):
    """422: the object was refused; ``fields`` names the paths the server blamed."""


class TooManyRequests(KubeError):
    """429: the server asks to be called again later (API priority and fairness)."""


# The reason of an answer that came whole but is not the API's: not JSON, or not an object.
INVALID_RESPONSE: Final = Reason.INVALID_RESPONSE


class Fenced(KubeError):
    """A write this process refused to send, because it may not write now (status 0).

    With leader election, a replica whose leadership is no longer certain must not write,
    even from work it queued while it still led: see :mod:`shared_services.leader`.
    """


def _error(status: int, body: bytes, fallback: str) -> KubeError:
    """The error a refusal's status and body describe; the message still whole, unscrubbed.

    The body is the server's, or whatever answered in its place: any shape is read as far
    as it goes, never trusted to be a Status.
    """
    reason, message = fallback, body.decode(errors="replace")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        payload = None
    fields: tuple[str, ...] = ()
    if isinstance(payload, dict):
        reason = str(payload.get("reason") or fallback)
        message = str(payload.get("message") or message)
        details = payload.get("details")
        causes = details.get("causes") if isinstance(details, dict) else None
        if isinstance(causes, list):
            fields = tuple(
                bounded(str(c.get("field")), 256)
                for c in causes[:_MAX_FIELDS]
                if isinstance(c, dict)
            )
    kinds: dict[int, type[KubeError]] = {
        401: Unauthorized,
        403: Forbidden,
        404: NotFound,
        409: Conflict,
        410: Gone,
        422: Invalid,
        429: TooManyRequests,
    }
    return kinds.get(status, KubeError)(
        status, bounded(reason, _MAX_REASON), message, fields=fields
    )


def _with_uid(body: Mapping[str, Any], uid: str | None) -> Mapping[str, Any]:
    """A patch that only lands on the object with ``uid`` (see :meth:`Kube.patch`)."""
    if not uid:
        return body
    return {**body, "metadata": {**(body.get("metadata") or {}), "uid": uid}}


def _replaced(error: Invalid, path: str, uid: str | None) -> Conflict | None:
    """The conflict a patch's refusal means when it was aimed at a replaced object."""
    if uid and "metadata.uid" in error.fields:
        return Conflict(409, "Replaced", f"{path} is no longer the object {uid}")
    return None


def _preconditions(uid: str | None) -> JSON | None:
    """A delete's body: only the object with ``uid`` when given."""
    return {"preconditions": {"uid": uid}} if uid else None


@dataclass(frozen=True, slots=True)
class Prepared:
    """One request as it goes out: what to send, where, and for how long at most.

    ``connect`` and ``read`` bound each wait; ``total`` (a write's time under the fence)
    bounds the whole request, None when nothing does. ``token`` is the bearer token sent.
    """

    method: str
    url: str
    headers: dict[str, str]
    data: bytes | None
    connect: float
    read: float
    total: float | None
    token: str | None


class Kube:
    """JSON requests to one API server, through a configured kubernetes ApiClient."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        target: str = "local",
        secrets: Sequence[str] = (),
        may_write: Callable[[], bool] | None = None,
        time_left: Callable[[], float] | None = None,
        bearer: Bearer | None = None,
    ) -> None:
        self.api_client = api_client
        # Where the bearer token comes from when it changes over time (a signed-in session):
        # asked before every request, told of every 401.
        self.bearer = bearer
        self.target = target
        # Credentials this client sends. A server's error text is quoted in conditions and
        # logs, and a server (or a proxy before it) may echo the Authorization header back:
        # every error message is scrubbed of them, whatever its source.
        self._secrets = tuple(s for s in secrets if len(s) >= 8)
        # A server URL's path may carry a secret too (some proxies take a token there), and
        # the library's own errors quote the URL: scrubbed as well, and never shown.
        path = urlsplit(self.host).path.rstrip("/")
        if len(path) > 1:
            self._secrets = (*self._secrets, path)
        # Asked before every request but a GET is sent; when it says no, the request is not
        # sent and Fenced is raised instead. ``time_left`` says for how many seconds more it
        # says yes: no write may take longer (none is sent when none are left).
        self.may_write = may_write
        self.time_left = time_left
        self._closed = False
        self._authorized_at: float | None = None
        self._authorization_header: dict[str, str] = {}

    def _scrubbed(self, error: KubeError) -> KubeError:
        # Scrubbed whole, then cut: cut first, a credential at the cut would survive in part.
        message = error.message
        live = self.bearer.secrets() if self.bearer is not None else ()
        for secret in (*self._secrets, *live):
            message = message.replace(secret, "[redacted]")
        message = bounded(message, MAX_MESSAGE)
        if message == error.message:
            return error
        return type(error)(error.status, error.reason, message, fields=error.fields)

    def close(self) -> None:
        """Send nothing more: its connections are closed, and every later request refused.

        For credentials that were replaced: a request in flight is not sent again by the
        library either, since the pool it would go through is gone.
        """
        self._closed = True
        self.api_client.close()
        if self.bearer is not None:
            self.bearer.close()

    @property
    def host(self) -> str:
        """The API server's URL."""
        host: str = self.api_client.configuration.host
        return host

    @property
    def origin(self) -> str:
        """The API server as messages show it: ``scheme://host:port``, never a path."""
        return destinations.origin(self.host)

    def request(
        self,
        method: Literal["GET", "POST", "PATCH", "PUT", "DELETE"],
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
        content_type: str = JSON_TYPE,
        accept: str = JSON_TYPE,
        timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> JSON:
        """Send one request; return the decoded body or raise a :class:`KubeError`."""
        response = self._send(
            self.prepare(
                method,
                path,
                body=body,
                params=params,
                content_type=content_type,
                accept=accept,
                timeout=timeout,
            )
        )
        data = self._body(response, reason="ConnectionError", what=f"{method} {path}")
        content = response.headers.get("Content-Type")
        return self.answer(response.status, response.reason, content, data, f"{method} {path}")

    def answer(
        self, status: int, reason: str | None, content_type: str | None, data: bytes, what: str
    ) -> JSON:
        """The decoded body of a whole answer, or the :class:`KubeError` it describes."""
        if status >= 300:
            raise self._scrubbed(_error(status, data, reason or "Error"))
        if not data:
            return {}
        try:
            decoded = json.loads(data)
        except (ValueError, RecursionError):
            # A portal's login page, a proxy's error page: an answer, not the API's.
            kind = bounded(str(content_type or "no content type"), 64)
            message = f"{self.origin}: {what} answered {status} with {kind}, not JSON"
            raise self._scrubbed(KubeError(0, INVALID_RESPONSE, message)) from None
        if not isinstance(decoded, dict):
            message = (
                f"{self.origin}: {what} answered {status} with "
                f"{type(decoded).__name__}, not a JSON object"
            )
            raise self._scrubbed(KubeError(0, INVALID_RESPONSE, message))
        return decoded

    def _body(self, response: urllib3.BaseHTTPResponse, *, reason: str, what: str) -> bytes:
        """The whole body of an answer, its connection given back however the read ends.

        A connection that breaks while the body comes leaves the answer unknown: a temporary
        error like any other broken connection, never the library's own exception.
        """
        try:
            data: bytes = response.data
        except (urllib3.exceptions.HTTPError, OSError) as error:
            broken = KubeError(0, reason, f"{self.origin}: {what}: {error}")
            raise self._scrubbed(broken) from error
        finally:
            response.release_conn()
        return data

    def get(self, path: str, *, params: Mapping[str, str | int] | None = None) -> JSON | None:
        """GET an object, or None when it does not exist."""
        try:
            return self.request("GET", path, params=params)
        except NotFound:
            return None

    def create(self, path: str, body: Mapping[str, Any]) -> JSON:
        """POST a new object to its collection path."""
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: Mapping[str, Any], *, uid: str | None = None) -> JSON:
        """Apply a JSON merge patch, only to the object with ``uid`` when given.

        The uid rides in the patch's metadata. The API server refuses to change a uid, so a
        patch aimed at an object that someone replaced under the same name fails instead of
        landing on the newcomer; that refusal (a 422 naming metadata.uid) is raised as a
        :class:`Conflict`, like a delete whose uid precondition failed.
        """
        try:
            return self.request("PATCH", path, body=_with_uid(body, uid), content_type=MERGE_PATCH)
        except Invalid as error:
            conflict = _replaced(error, path, uid)
            if conflict is None:
                raise
            raise conflict from error

    def delete(self, path: str, *, uid: str | None = None) -> bool:
        """Delete an object, only if it still has ``uid`` when given; False if it was gone.

        The uid precondition keeps a delete aimed at an old object from removing a new one
        that someone created under the same name in the meantime.
        """
        try:
            self.request("DELETE", path, body=_preconditions(uid))
        except NotFound:
            return False
        return True

    def watch(
        self,
        path: str,
        *,
        resource_version: str,
        params: Mapping[str, str | int] | None = None,
        timeout_seconds: int = 300,
        opened: Callable[[Any], None] | None = None,
        accept: str = JSON_TYPE,
    ) -> Iterator[JSON]:
        """Yield watch events (``{"type", "object"}``) until the server ends the stream.

        The read timeout is a little longer than the server's own, with bookmarks asked
        for, so a frozen connection is noticed instead of waiting forever.
        """
        query = {
            **(params or {}),
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_seconds,
        }
        raw = self._send(
            self.prepare(
                "GET", path, params=query, accept=accept, timeout=(5.0, timeout_seconds + 30.0)
            )
        )
        if raw.status >= 300:
            data = self._body(raw, reason="WatchBroken", what="watch refused")
            raise self._scrubbed(_error(raw.status, data, raw.reason or "Error"))
        if opened is not None:
            opened(raw)  # lets another thread shut the stream down
        try:
            for line in _lines(raw):
                event = self._event(line)
                del line  # a watched object may be a megabyte: nothing keeps its text
                if event.get("type") == "ERROR":
                    status = event["object"]
                    code = status.get("code")
                    raise self._scrubbed(
                        _error(
                            code if isinstance(code, int) else 500,
                            json.dumps(status).encode(),
                            "Error",
                        )
                    )
                yield event
                del event  # nor, while the next one is awaited, the object
        except (urllib3.exceptions.HTTPError, OSError) as error:
            # A reset, a timeout, a shutdown from another thread.
            broken = KubeError(0, "WatchBroken", f"{self.origin}: watch ended: {error}")
            raise self._scrubbed(broken) from error
        finally:
            raw.release_conn()

    def _event(self, line: str | bytes) -> JSON:
        """One line of a watch stream as an event with an object, or the watch is broken."""
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            event = None  # a torn line, or one that is not JSON
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            broken = KubeError(0, "WatchBroken", f"{self.origin}: watch ended: not a watch event")
            raise self._scrubbed(broken)
        return event

    def prepare(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
        content_type: str = JSON_TYPE,
        accept: str = JSON_TYPE,
        timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> Prepared:
        """One request as it is to be sent, whichever transport sends it.

        Raises instead when it may not be sent: this client's credentials were replaced, or
        a write's fence says no.
        """
        if self._closed:
            msg = f"{method} {path} not sent: the credentials of this client were replaced"
            raise KubeError(0, "Closed", msg)
        # A dry run writes nothing, so a replica that may not write may still ask one.
        write = method != "GET" and "dryRun" not in (params or {})
        left = self._fence(method, path) if write else None
        metrics.API_REQUESTS.labels(
            self.target, "WATCH" if "watch" in (params or {}) else method
        ).inc()
        if method in ("POST", "PUT", "PATCH"):
            # managedFields then name the operator as who set each field, status included.
            params = {**(params or {}), "fieldManager": FIELD_MANAGER}
        url = self.host + path
        if params:
            url += "?" + urlencode(list(params.items()), quote_via=quote)
        headers = {"Accept": accept, "Content-Type": content_type, **self._authorization()}
        headers["User-Agent"] = USER_AGENT
        token = self.bearer.token() if self.bearer is not None else None
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        connect, read = timeout
        if left is not None:
            connect, read = min(connect, left), min(read, left)
        return Prepared(
            method=method,
            url=url,
            headers=headers,
            data=json.dumps(dict(body)).encode() if body is not None else None,
            connect=connect,
            read=read,
            total=left,
            token=token,
        )

    def answered(self, status: int, prepared: Prepared) -> None:
        """Take note of an answer's status: after a 401 the credentials are asked again."""
        if status == 401:
            self._authorized_at = None  # the credentials' own refresh, at the next request
            if prepared.token is not None and self.bearer is not None:
                self.bearer.rejected(prepared.token)

    def broken(self, error: BaseException) -> KubeError:
        """The error for a request whose connection failed: temporary, and scrubbed."""
        said = str(error) or type(error).__name__
        return self._scrubbed(KubeError(0, "ConnectionError", f"{self.origin}: {said}"))

    def _send(self, prepared: Prepared) -> urllib3.BaseHTTPResponse:
        """Send a prepared request through the kubernetes client's pool; its answer's head."""
        method = prepared.method
        limit = urllib3.Timeout(connect=prepared.connect, read=prepared.read)
        if prepared.total is not None:
            limit = urllib3.Timeout(
                connect=prepared.connect, read=prepared.read, total=prepared.total
            )
        # Reads keep the pool's retries; a write is sent once (see the module's docstring).
        # No request follows a redirect: an API server sends none, and whatever answers in
        # its place must not send the operator's requests elsewhere.
        retries: dict[str, Any] = {"retries": False} if method != "GET" else {}
        try:
            response: urllib3.BaseHTTPResponse = self.api_client.rest_client.pool_manager.request(
                method,
                prepared.url,
                body=prepared.data,
                headers=prepared.headers,
                timeout=limit,
                redirect=False,
                preload_content=False,
                **retries,
            )
        except destinations.Refused as error:
            raise KubeError(0, error.reason, error.message) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise self.broken(error) from error
        self.answered(response.status, prepared)
        return response

    def _authorization(self) -> dict[str, str]:
        """The header that the client's configuration authorizes with, if any.

        Asking the configuration runs its refresh (an expired token is read again) and sets
        its host, which reads the environment's proxy variables: a hundredth of the
        operator's CPU when asked for every request. So it is asked at most once a second,
        and again after a 401.
        """
        now = time.monotonic()
        if self._authorized_at is None or now - self._authorized_at >= AUTHORIZATION_SECONDS:
            setting = self.api_client.configuration.auth_settings().get("BearerToken")
            value = setting.get("value") if setting else None
            self._authorization_header = {"Authorization": str(value)} if value else {}
            self._authorized_at = now
        return self._authorization_header

    def _fence(self, method: str, path: str) -> float | None:
        """Seconds a write may take (None: no limit); raises Fenced when none may be sent."""
        if self.may_write is not None and not self.may_write():
            raise Fenced(0, "Fenced", f"{method} {path} not sent: this process may not write now")
        if self.time_left is None:
            return None
        left = self.time_left()
        if left <= 0:
            raise Fenced(0, "Fenced", f"{method} {path} not sent: no time is left to write in")
        return left


def direct_tls(configuration: k8s.Configuration) -> ssl.SSLContext | Literal[False] | None:
    """The TLS to reach the configured server with from the loop (False: plain HTTP).

    None when only the kubernetes client honours the configuration: a proxy, a host name
    to check other than the server's, or no CA named (that client trusts its own bundle).
    """
    host = str(configuration.host)
    proxied = bool(configuration.proxy) and not should_bypass_proxies(
        host, configuration.no_proxy or ""
    )
    if proxied or configuration.assert_hostname is not None:
        return None
    if host.startswith("http://"):
        return False
    trusted = configuration.ssl_ca_cert or configuration.ca_cert_data
    if not host.startswith("https://") or (configuration.verify_ssl and not trusted):
        return None
    context = ssl.create_default_context(
        cafile=configuration.ssl_ca_cert, cadata=configuration.ca_cert_data
    )
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    if not configuration.verify_ssl:
        # The kubeconfig's own choice (insecure-skip-tls-verify), as its client honours it.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class AsyncKube:
    """The requests of a :class:`Kube`, sent from the event loop.

    The writes of a sync used to go through a thread each, and through urllib3 and
    ``http.client``, whose header parsing alone took a twentieth of the operator's CPU at
    start-up. Here they go through aiohttp on the loop, with the same headers, fence,
    timeouts, errors and scrubbing as :class:`Kube`: per write a third of the CPU.

    Only for the cluster the operator runs in: a remote server's connections are checked
    by :mod:`shared_services.destinations`, which this client does not do. A configuration
    whose TLS or proxy only the kubernetes client honours has each request sent by the
    :class:`Kube` in a thread instead, as before.

    A write is sent once, as by :class:`Kube`: aiohttp would send a DELETE or a PUT again
    when its connection closed before an answer came.
    """

    def __init__(self, kube: Kube, *, connections: int = 64) -> None:
        self.kube = kube
        self._connections = connections
        configuration = kube.api_client.configuration
        self._tls = direct_tls(configuration)
        self._server_name: str | None = configuration.tls_server_name or None
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: Literal["GET", "POST", "PATCH", "PUT", "DELETE"],
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        content_type: str = JSON_TYPE,
    ) -> JSON:
        """Send one request; return the decoded body or raise a :class:`KubeError`."""
        if self._tls is None:
            return await asyncio.to_thread(
                self.kube.request, method, path, body=body, content_type=content_type
            )
        kube = self.kube
        prepared = kube.prepare(method, path, body=body, content_type=content_type)
        limit = aiohttp.ClientTimeout(
            total=prepared.total, sock_connect=prepared.connect, sock_read=prepared.read
        )
        try:
            async with self._open().request(
                method,
                prepared.url,
                data=prepared.data,
                headers=prepared.headers,
                timeout=limit,
                allow_redirects=False,
                ssl=self._tls,
                server_hostname=self._server_name,
            ) as response:
                data = await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise kube.broken(error) from error
        kube.answered(response.status, prepared)
        content = response.headers.get("Content-Type")
        return kube.answer(response.status, response.reason, content, data, f"{method} {path}")

    def _open(self) -> aiohttp.ClientSession:
        """The session, opened on first use, on the loop that uses it."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections)
            session = aiohttp.ClientSession(
                connector=connector, skip_auto_headers=("Accept-Encoding",)
            )
            # Its one switch for that, which its own test client turns off the same way.
            session._retry_connection = False
            self._session = session
        return self._session

    async def get(self, path: str) -> JSON | None:
        """GET an object, or None when it does not exist."""
        try:
            return await self.request("GET", path)
        except NotFound:
            return None

    async def create(self, path: str, body: Mapping[str, Any]) -> JSON:
        """POST a new object to its collection path."""
        return await self.request("POST", path, body=body)

    async def patch(self, path: str, body: Mapping[str, Any], *, uid: str | None = None) -> JSON:
        """Apply a JSON merge patch, only to the object with ``uid`` (see :meth:`Kube.patch`)."""
        try:
            return await self.request(
                "PATCH", path, body=_with_uid(body, uid), content_type=MERGE_PATCH
            )
        except Invalid as error:
            conflict = _replaced(error, path, uid)
            if conflict is None:
                raise
            raise conflict from error

    async def delete(self, path: str, *, uid: str | None = None) -> bool:
        """Delete an object, only if it still has ``uid``; False if it was gone."""
        try:
            await self.request("DELETE", path, body=_preconditions(uid))
        except NotFound:
            return False
        return True

    async def close(self) -> None:
        """Close the session's connections; a later request opens new ones."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def collection_path(*, group: str, version: str, plural: str, namespace: str | None) -> str:
    """The REST path of a collection, namespaced or cluster-wide."""
    prefix = f"/api/{version}" if group == "" else f"/apis/{group}/{version}"
    if namespace is None:
        return f"{prefix}/{plural}"
    return f"{prefix}/namespaces/{namespace}/{plural}"
