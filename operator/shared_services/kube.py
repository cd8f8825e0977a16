"""A thin JSON layer over the kubernetes client: requests, errors and watch streams.

The generated client turns every response into model objects, which costs more than the
operator's whole reconcile and hides fields the builders compare. Here bodies stay plain
dicts, while authentication, TLS and connection pooling stay the client's. Errors are
sorted once, here, into the few kinds the rest of the operator acts on: gone (404),
conflict (409), forbidden, invalid, and temporary (5xx, 429, connection trouble), the way
crate-operator keeps 404/409 handling in one module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, Literal

import urllib3
from kubernetes import client as k8s
from kubernetes.watch.watch import iter_resp_lines

from shared_services import metrics
from shared_services.api import JSON

MERGE_PATCH: Final = "application/merge-patch+json"
REQUEST_TIMEOUT: Final = (5.0, 30.0)


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


class NotFound(KubeError):
    """404: the object (or its namespace) does not exist."""


class Conflict(KubeError):
    """409: already exists, or a resourceVersion/uid precondition failed."""


class Gone(KubeError):
    """410: a watch asked for a resourceVersion the server no longer has."""


class Fenced(KubeError):
    """A write this process refused to send, because it may not write now (status 0).

    With leader election, a replica whose leadership is no longer certain must not write,
    even from work it queued while it still led: see :mod:`shared_services.leader`.
    """


def _error(status: int, body: bytes, fallback: str) -> KubeError:
    reason, message = fallback, body.decode(errors="replace")[:500]
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    fields: tuple[str, ...] = ()
    if isinstance(payload, dict):
        reason = str(payload.get("reason") or fallback)
        message = str(payload.get("message") or message)
        causes = (payload.get("details") or {}).get("causes") or []
        fields = tuple(str(c.get("field")) for c in causes if isinstance(c, dict))
    kinds: dict[int, type[KubeError]] = {404: NotFound, 409: Conflict, 410: Gone}
    return kinds.get(status, KubeError)(status, reason, message, fields=fields)


class Kube:
    """JSON requests to one API server, through a configured kubernetes ApiClient."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        target: str = "local",
        secrets: Sequence[str] = (),
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        self.api_client = api_client
        self.target = target
        # Credentials this client sends. A server's error text is quoted in conditions and
        # logs, and a server (or a proxy before it) may echo the Authorization header back:
        # every error message is scrubbed of them, whatever its source.
        self._secrets = tuple(s for s in secrets if len(s) >= 8)
        # Asked before every request but a GET is sent; when it says no, the request is not
        # sent and Fenced is raised instead.
        self.may_write = may_write

    def _scrubbed(self, error: KubeError) -> KubeError:
        message = error.message
        for secret in self._secrets:
            message = message.replace(secret, "[redacted]")
        if message == error.message:
            return error
        return type(error)(error.status, error.reason, message, fields=error.fields)

    @property
    def host(self) -> str:
        """The API server's URL."""
        host: str = self.api_client.configuration.host
        return host

    def request(
        self,
        method: Literal["GET", "POST", "PATCH", "PUT", "DELETE"],
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
        content_type: str = "application/json",
        timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> JSON:
        """Send one request; return the decoded body or raise a :class:`KubeError`."""
        response = self._send(
            method, path, body=body, params=params, content_type=content_type, timeout=timeout
        )
        data = response.read()
        if response.status >= 300:
            raise self._scrubbed(_error(response.status, data, response.reason or "Error"))
        decoded: JSON = json.loads(data) if data else {}
        return decoded

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
        if uid:
            metadata = {**(body.get("metadata") or {}), "uid": uid}
            body = {**body, "metadata": metadata}
        try:
            return self.request("PATCH", path, body=body, content_type=MERGE_PATCH)
        except KubeError as error:
            if uid and error.status == 422 and "metadata.uid" in error.fields:
                raise Conflict(409, "Replaced", f"{path} is no longer the object {uid}") from error
            raise

    def delete(self, path: str, *, uid: str | None = None) -> bool:
        """Delete an object, only if it still has ``uid`` when given; False if it was gone.

        The uid precondition keeps a delete aimed at an old object from removing a new one
        that someone created under the same name in the meantime.
        """
        body = {"preconditions": {"uid": uid}} if uid else None
        try:
            self.request("DELETE", path, body=body)
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
        response = self._send("GET", path, params=query, timeout=(5.0, timeout_seconds + 30.0))
        if response.status >= 300:
            raise self._scrubbed(
                _error(response.status, response.read(), response.reason or "Error")
            )
        raw: urllib3.BaseHTTPResponse = response.response
        if opened is not None:
            opened(raw)  # lets another thread shut the stream down
        try:
            for line in iter_resp_lines(raw):
                event: JSON = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object", {})
                    raise self._scrubbed(
                        _error(int(status.get("code", 500)), json.dumps(status).encode(), "Error")
                    )
                yield event
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
            # A reset, a timeout, a shutdown from another thread, or a torn JSON line.
            broken = KubeError(0, "WatchBroken", f"{self.host}: watch ended: {error}")
            raise self._scrubbed(broken) from error
        finally:
            raw.release_conn()

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
        content_type: str = "application/json",
        timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> Any:
        if method != "GET" and self.may_write is not None and not self.may_write():
            raise Fenced(0, "Fenced", f"{method} {path} not sent: this process may not write now")
        metrics.API_REQUESTS.labels(
            self.target, "WATCH" if "watch" in (params or {}) else method
        ).inc()
        headers = {"Accept": "application/json", "Content-Type": content_type}
        serialized = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((params or {}).items()),
            header_params=headers,
            body=dict(body) if body is not None else None,
            auth_settings=["BearerToken"],
        )
        try:
            return self.api_client.call_api(*serialized[:4], _request_timeout=timeout)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise self._scrubbed(
                KubeError(0, "ConnectionError", f"{self.host}: {error}")
            ) from error
        except k8s.ApiException as error:
            refused = KubeError(error.status or 0, error.reason or "Error", str(error.body))
            # Not chained: the client's exception quotes the body as it came, unscrubbed.
            raise self._scrubbed(refused) from None


def collection_path(*, group: str, version: str, plural: str, namespace: str | None) -> str:
    """The REST path of a collection, namespaced or cluster-wide."""
    prefix = f"/api/{version}" if group == "" else f"/apis/{group}/{version}"
    if namespace is None:
        return f"{prefix}/{plural}"
    return f"{prefix}/namespaces/{namespace}/{plural}"
