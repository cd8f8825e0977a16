"""Signing in to a vSphere Supervisor as a vCenter SSO user, and keeping the session fresh.

On vSphere with Tanzu, what every user can do is sign in: ``POST https://<supervisor>/wcp/login``
with HTTP Basic authentication answers JSON whose ``session_id`` is a JWT, the bearer token
of the Supervisor's API server, valid for 10 hours. A :class:`Session` does that for one
RemoteCluster: it signs in when first asked for a token, hands out the same token until it
is due for renewal, and signs in again then, before the token expires:

- due once 80 % of the lifetime that the JWT's ``exp`` gives has passed (a 10-hour token is
  renewed after 8 hours, a 20-second one after 16 seconds); a token without a readable
  ``exp`` is renewed after an hour, well inside vSphere's 10;
- at once after the API server refused the token (401), once per token;
- never used within a second of its ``exp``: a request would reach the server after it.

While signing in fails, the old token is used for as long as it is valid, and the next try
waits (1 s, doubling to a minute); after that every request fails with the sign-in's own
error (wrong password, endpoint unreachable, certificate not trusted), which the
RemoteCluster's condition shows. Its imports keep their last addresses meanwhile, as in any
outage.

The password goes to the sign-in endpoint and nowhere else: no redirect is followed, and
the connection is judged by the same rules as the API server's (:mod:`destinations`), with
TLS verified against the kubeconfig's CA. The token goes only to the API server. Neither is
ever part of a message: messages are made of this module's words, HTTP status codes and the
endpoint as ``https://host:port``; :meth:`Session.secrets` lists what a client scrubs from
the server's words.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import urllib3

from shared_services import metrics
from shared_services.advice import Reason
from shared_services.destinations import Destinations, Refused, guard, origin
from shared_services.kube import KubeError
from shared_services.version import USER_AGENT

log = logging.getLogger(__name__)

# The reasons of a RemoteCluster's Connected condition that a failed sign-in leads to.
REJECTED = Reason.SIGN_IN_REJECTED
UNREACHABLE = Reason.SIGN_IN_UNREACHABLE
FAILED = Reason.SIGN_IN_FAILED
UNTRUSTED = Reason.TLS_UNTRUSTED
CREDENTIALS_INVALID = Reason.SIGN_IN_CREDENTIALS_INVALID
REASONS = (REJECTED, UNREACHABLE, FAILED, UNTRUSTED, CREDENTIALS_INVALID)

RENEW_AT = 0.8  # of the token's lifetime
NO_EXP_LIFETIME = 3600.0  # seconds a token without a readable exp is used
EXP_MARGIN = 1.0  # a token is not sent within this many seconds of its exp
_BACKOFF_START = 1.0
_MIN_INTERVAL = 1.0  # between two sign-ins, whatever happens
_BACKOFF_MAX = 60.0
_TIMEOUT = urllib3.Timeout(connect=5.0, read=15.0, total=20.0)
_MAX_ANSWER = 64 * 1024
_MAX_TOKEN = 16 * 1024
_MAX_NAME = 512
_MAX_PASSWORD = 1024


class SignInError(KubeError):
    """Signing in failed, worded for the RemoteCluster's condition (status 0: temporary)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(0, reason, message)


@dataclass(frozen=True)
class Credentials:
    """An SSO user's name and password, from a basic-auth Secret; kept out of reprs."""

    username: str
    password: str

    def __repr__(self) -> str:
        return "Credentials(...)"


def credentials(data: dict[str, str], *, secret: str) -> Credentials:
    """The user and password from a Secret's decoded ``data``; SignInError if unusable.

    The message names the Secret and its keys, never what they hold.
    """
    where = f"Secret {secret}"
    username = data.get("username", "")
    password = data.get("password", "")
    problems = []
    if not username:
        problems.append("has no 'username'")
    if not password:
        problems.append("has no 'password'")
    for key, value, limit in (
        ("username", username, _MAX_NAME),
        ("password", password, _MAX_PASSWORD),
    ):
        if len(value) > limit:
            problems.append(f"holds a '{key}' longer than {limit} characters")
        elif any(ord(c) < 32 or ord(c) == 127 for c in value):
            problems.append(f"holds a control character or line break in '{key}'")
    if username and ":" in username:
        problems.append("holds a ':' in 'username', which HTTP Basic authentication cannot carry")
    if problems:
        raise SignInError(
            CREDENTIALS_INVALID,
            f"{where} {' and '.join(problems)}; it must be of type kubernetes.io/basic-auth "
            "with the SSO user's name under 'username' and password under 'password'",
        )
    return Credentials(username=username, password=password)


def sign_in_url(server: str, url: str | None) -> str:
    """The sign-in endpoint: ``url`` as given, else vSphere's place on the server's host."""
    if url:
        return url
    host = origin(server).split("://", 1)[1].rsplit(":", 1)[0]
    return f"https://{host}/wcp/login"


def expiry(token: str) -> float | None:
    """The ``exp`` of a JWT as a Unix time, or None where it cannot be read.

    Read for scheduling only, never trusted: the API server checks the signature.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError, RecursionError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


@dataclass
class _Token:
    value: str
    renew_at: float  # wall-clock time
    usable_until: float  # wall-clock time


class Session:
    """One RemoteCluster's sign-in: a current token, renewed before it expires.

    Thread-safe: requests of many informer threads ask for a token at once, and only one of
    them signs in while the others wait for its answer.
    """

    def __init__(
        self,
        *,
        cluster: str,
        url: str,
        credentials: Credentials,
        secret: str,
        tls: ssl.SSLContext,
        destinations: Destinations | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cluster = cluster
        self.url = url
        self._credentials = credentials
        self._secret = secret
        self._clock = clock
        self._lock = threading.Lock()
        self._token: _Token | None = None
        self._next_try = 0.0
        self._backoff = _BACKOFF_START
        self._error: SignInError | None = None
        self._pool = urllib3.PoolManager(ssl_context=tls, retries=False)
        self.where = f"the sign-in endpoint {origin(url)}"
        if destinations is not None:
            guard(self._pool, destinations, what=self.where)
        self.sign_ins = 0

    def close(self) -> None:
        """Sign in no more; the connections are closed."""
        self._pool.clear()

    def secrets(self) -> tuple[str, ...]:
        """What a message must never show: the password, and the token in use."""
        token = self._token
        return (self._credentials.password, *((token.value,) if token else ()))

    def token(self) -> str:
        """A token to send now: the current one, or a new one when it is due.

        Raises :class:`SignInError` when none can be had.
        """
        with self._lock:
            now = self._clock()
            current = self._token
            if current is not None and now < current.renew_at:
                return current.value
            if now >= self._next_try:
                try:
                    return self._sign_in(now)
                except SignInError as error:
                    self._error = error
                    self._next_try = now + self._backoff
                    self._backoff = min(self._backoff * 2, _BACKOFF_MAX)
                    if error.reason == REJECTED:
                        # Not again with this password: vCenter locks a user out after a
                        # few failed sign-ins. A changed Secret makes a new session.
                        self._next_try = float("inf")
            if current is not None and now < current.usable_until:
                return current.value  # due, but still good: the next request tries again
            raise self._error or SignInError(
                FAILED, f"{self.where}: no session yet; it tries again"
            )

    def rejected(self, token: str) -> None:
        """The API server answered 401 to ``token``: sign in again at the next request.

        At most one sign-in a second, whatever the API server says: one that refuses every
        token must not turn requests into a stream of sign-ins.
        """
        with self._lock:
            current = self._token
            if current is None or current.value != token:
                return  # an old token, replaced already
            log.info(
                "remote cluster %s: the API server refused the session; signing in again",
                self.cluster,
            )
            current.renew_at = current.usable_until = 0.0
            self._error = SignInError(
                Reason.UNAUTHORIZED,
                f"the API server refused the session of {self.where} (401); signing in again",
            )

    def _sign_in(self, now: float) -> str:
        self.sign_ins += 1
        answer = self._post()
        token = answer.get("session_id")
        if (
            not isinstance(token, str)
            or not token
            or len(token) > _MAX_TOKEN
            or not all(33 <= ord(c) < 127 for c in token)
        ):
            metrics.SIGN_INS.labels(self.cluster, "failed").inc()
            msg = f"{self.where} answered without a usable session_id"
            raise SignInError(FAILED, msg)
        exp = expiry(token)
        if exp is None:
            renew_at, usable_until = now + NO_EXP_LIFETIME, now + NO_EXP_LIFETIME
        else:
            renew_at = now + max(0.0, exp - now) * RENEW_AT
            usable_until = exp - EXP_MARGIN
        self._token = _Token(token, renew_at=renew_at, usable_until=usable_until)
        self._next_try = now + _MIN_INTERVAL
        self._backoff = _BACKOFF_START
        self._error = None
        metrics.SIGN_INS.labels(self.cluster, "succeeded").inc()
        log.info(
            "remote cluster %s: signed in at %s; renewing in %.0f s",
            self.cluster,
            self.where,
            renew_at - now,
        )
        return token

    def _post(self) -> dict[str, object]:
        """The sign-in endpoint's JSON answer, or a SignInError that says what went wrong."""
        user = self._credentials
        basic = base64.b64encode(f"{user.username}:{user.password}".encode()).decode()
        try:
            response = self._pool.request(
                "POST",
                self.url,
                headers={
                    "Authorization": f"Basic {basic}",
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,  # as every request of the operator says
                },
                timeout=_TIMEOUT,
                redirect=False,
                preload_content=False,
            )
        except Refused as error:
            metrics.SIGN_INS.labels(self.cluster, "failed").inc()
            raise SignInError(error.reason, error.message) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            metrics.SIGN_INS.labels(self.cluster, "failed").inc()
            raise self._transport_error(error) from None
        try:
            data = response.read(_MAX_ANSWER + 1)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            metrics.SIGN_INS.labels(self.cluster, "failed").inc()
            raise self._transport_error(error) from None
        finally:
            response.release_conn()
        status = response.status
        if status in (401, 403):
            metrics.SIGN_INS.labels(self.cluster, "rejected").inc()
            msg = (
                f"{self.where} refused the user of Secret {self._secret} ({status}): the "
                "password is wrong, or the user is locked, disabled or removed in vCenter "
                "SSO; correct the Secret's 'username' and 'password'"
            )
            raise SignInError(REJECTED, msg)
        if status != 200:
            metrics.SIGN_INS.labels(self.cluster, "failed").inc()
            raise SignInError(FAILED, f"{self.where} answered {status}; it tries again")
        try:
            decoded = json.loads(data) if len(data) <= _MAX_ANSWER else None
        except (ValueError, RecursionError):
            decoded = None
        if not isinstance(decoded, dict):
            metrics.SIGN_INS.labels(self.cluster, "failed").inc()
            msg = f"{self.where} answered 200 with something other than a JSON object"
            raise SignInError(FAILED, msg)
        return decoded

    def _transport_error(self, error: Exception) -> SignInError:
        text = str(error)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            msg = (
                f"{self.where}'s certificate is not trusted by the kubeconfig's CA; add the "
                "CA that signed it to certificate-authority-data"
            )
            return SignInError(UNTRUSTED, msg)
        kind = type(getattr(error, "reason", None) or error).__name__
        return SignInError(UNREACHABLE, f"{self.where} did not answer ({kind}); it tries again")
