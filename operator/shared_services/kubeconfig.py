"""A kubeconfig from a Secret, read as data: an allow-list, and nothing of it in any message.

Whoever can write the operator's kubeconfig Secret must not be able to make the operator run
a program, read one of its files, send its traffic through a third party, or turn off TLS
checks. The kubernetes client's own loader does all of these when a kubeconfig asks
(``exec``, ``auth-provider`` with ``cmd-path``, ``tokenFile``, ``proxy-url``, ...). So the text
is parsed and checked here, against an allow-list, and the client is then built from the
:class:`Kubeconfig` returned, never from the document: what this module does not return,
no client library ever sees. Pure: no client, no I/O.

Kept, and why:

- ``apiVersion`` (``v1``), ``kind`` (``Config``): what every kubeconfig starts with.
- ``preferences`` (``colors``, ``extensions``): kubectl writes it; ignored.
- ``current-context``; ``contexts[].name``, ``contexts[].context.cluster``, ``.user``,
  ``.namespace``: to pick the cluster and user. The context is the RemoteCluster's
  ``spec.context``, else ``current-context``, else the only one. ``namespace`` is ignored
  (each import names its remote namespace).
- ``clusters[].name``; ``clusters[].cluster.server``: an ``https`` URL without userinfo, query
  or fragment, so that it cannot carry a credential. Messages show only its scheme, host and
  port (a path may carry a secret: some proxies take a token there), and where it may be
  is judged at each connection (see ``destinations``).
  ``certificate-authority-data``: the CA, inline (PEM certificates, strictly base64); without
  it the system's trust store is used, and TLS is verified either way.
  ``tls-server-name``: the name to verify the server's certificate against (and send as
  SNI); the kubernetes client supports it (``Configuration.tls_server_name``).
  ``insecure-skip-tls-verify: false`` only, which says what is true anyway.
  ``disable-compression`` (a boolean): a hint the kubernetes client has no use for; ignored.
- ``users[].name``; ``users[].user.token`` (a bearer token: visible ASCII, no line break, as
  an HTTP header carries it), or ``client-certificate-data`` and ``client-key-data`` (PEM,
  strictly base64; an unencrypted key).
- ``extensions`` at the top, in clusters, users and contexts: data that other tools (such as
  minikube) keep for themselves; no client reads it; ignored.

Everything else is refused, known or not: fields that read a file, run a program, refresh
tokens against a third party, turn TLS checks off, send traffic elsewhere or act as someone
else (reason ``InsecureKubeconfig``), and fields that are unknown, of the wrong type, or
malformed (``KubeconfigInvalid``).

No byte of the Secret appears in a message. A message is built only from this module's
texts, field paths made of this module's field names and list indices
(``users[0].user.auth-provider``), numbers (line, column, sizes) and the RemoteCluster's own
``spec.context``. Never from the document: neither values, nor its names, nor its keys. YAML
errors are reported by line, column and the kind of problem, chosen from a table by the
parser's message, whose own text (it quotes characters, anchors, aliases, tags and the
offending line) is dropped.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import yaml

from shared_services.advice import Reason

INSECURE: Final = Reason.INSECURE_KUBECONFIG
INVALID: Final = Reason.KUBECONFIG_INVALID

# A kubeconfig with a CA and a client certificate is a few KiB; a Secret holds at most 1 MiB.
MAX_BYTES: Final = 256 * 1024
MAX_DEPTH: Final = 32
MAX_TOKEN_CHARS: Final = 16 * 1024
MAX_DATA_BYTES: Final = 128 * 1024  # each of the *-data fields, decoded
MAX_NAME_CHARS: Final = 1024
MAX_URL_CHARS: Final = 2048
_MAX_LISTED = 3  # problems named in one message; the rest are counted


class CredentialsError(Exception):
    """The Secret or the kubeconfig in it cannot be used; the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class BearerToken:
    """Credentials sent as ``Authorization: Bearer ...``."""

    token: str = field(repr=False)


@dataclass(frozen=True)
class ClientCertificate:
    """Credentials presented in the TLS handshake: PEM certificate (chain) and key."""

    certificate_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)


@dataclass(frozen=True)
class Kubeconfig:
    """What a client of the selected context needs, and nothing else.

    ``cluster_path`` and ``user_path`` (``clusters[0].cluster``) let later messages name the
    fields these came from. The credentials and the CA are left out of the repr.
    """

    server: str
    ca_pem: bytes | None = field(repr=False)
    tls_server_name: str | None
    # None where the RemoteCluster signs in instead (its user, if any, is not used).
    credentials: BearerToken | ClientCertificate | None
    cluster_path: str
    user_path: str


# --- YAML -----------------------------------------------------------------------------------------


class _Refusal(Exception):
    """Something in the YAML text itself that a kubeconfig must not have."""

    def __init__(self, mark: yaml.Mark | None, kind: str) -> None:
        super().__init__(kind)
        self.mark = mark
        self.kind = kind


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load``, with what a kubeconfig never needs refused instead of resolved.

    Anchors and aliases go (they would let a small text stand for a huge document, and an
    undefined alias's error quotes its name); so do merge keys, keys that appear twice
    (PyYAML keeps the last, other parsers may keep the first) and deep nesting (the
    composer recurses).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refusal(
                event.start_mark,
                "an anchor (&) or alias (*), which a kubeconfig has no use for; "
                "write the value out",
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refusal(event.start_mark, f"nesting deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key, _ in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                raise _Refusal(key.start_mark, "a merge key (<<); write the fields out")
            if isinstance(key, yaml.ScalarNode):
                if (key.tag, key.value) in seen:
                    raise _Refusal(key.start_mark, "a key that appears twice in the same mapping")
                seen.add((key.tag, key.value))
        return super().construct_mapping(node, deep=deep)

    def construct_checked_timestamp(self, node: yaml.ScalarNode) -> object:
        """A date, as SafeLoader makes it; one that does not exist is a YAML problem."""
        try:
            return self.construct_yaml_timestamp(node)
        except ValueError:
            raise _Refusal(node.start_mark, "a date that does not exist (quote it)") from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_checked_timestamp)


# PyYAML's messages, by the fixed text they start with, and what to say instead. The
# parser's text itself is never shown: it quotes characters, names and tags of the document.
_PROBLEMS: Final = (
    ("found character", "a character that cannot start a token (indent with spaces, not tabs)"),
    ("found unexpected end of stream", "the text ends inside a value (a quote not closed?)"),
    ("found unknown escape character", "an unknown escape sequence in a double-quoted string"),
    ("expected escape sequence", "a malformed escape sequence in a double-quoted string"),
    ("mapping values are not allowed here", "a colon where no mapping may start"),
    ("mapping keys are not allowed here", "a key where no mapping may start"),
    ("sequence entries are not allowed here", "a list entry (-) where no list may start"),
    ("expected <block end>", "a line indented differently from the lines before it"),
    ("could not find expected ':'", "a key without a colon after it"),
    ("expected ',' or ']'", "a list in brackets that is not closed"),
    ("expected ',' or '}'", "a mapping in braces that is not closed"),
    ("invalid indentation or unclosed", "bad indentation, or a bracket or brace not closed"),
    ("expected the node content", "a missing value"),
    ("expected a comment or a line break", "text after a value on the same line"),
    ("expected alphabetic or numeric character", "a malformed anchor, alias or tag"),
    ("found undefined alias", "an alias (*), which a kubeconfig has no use for"),
    ("found duplicate anchor", "an anchor (&), which a kubeconfig has no use for"),
    ("could not determine a constructor", "a tag (!) that a kubeconfig may not use"),
    ("found undefined tag handle", "a tag (!) that a kubeconfig may not use"),
    ("expected URI", "a malformed tag (!)"),
    ("expected '!'", "a malformed tag (!)"),
    ("found non-specific tag", "a tag (!) that a kubeconfig may not use"),
    ("but found another document", "more than one YAML document (---)"),
    ("found unexpected document separator", "a document separator (---) inside a value"),
    ("expected '<document start>'", "text that does not start a YAML document"),
    ("found unhashable key", "a key that is a list or a mapping"),
    ("found duplicate key", "a key that appears twice in the same mapping"),
    ("failed to ", "!!binary data that is not base64"),
    ("expected chomping or indentation", "a malformed block scalar (| or >) header"),
    ("expected indentation indicator", "a malformed block scalar (| or >) header"),
    ("expected a digit", "a malformed directive (%)"),
    ("expected ' '", "a malformed directive (%)"),
    ("found incompatible YAML document", "a YAML version directive (%YAML) other than 1.x"),
    ("found duplicate YAML directive", "a malformed directive (%)"),
    ("duplicate tag handle", "a malformed directive (%)"),
    ("expected non-empty name", "a malformed tag (!)"),
    ("expected '>'", "a malformed tag (!)"),
)
_CONTEXTS: Final = (
    ("while scanning a quoted scalar", "in a quoted string"),
    ("while scanning a double-quoted scalar", "in a quoted string"),
    ("while scanning a simple key", "in a key"),
    ("while scanning a block scalar", "in a block scalar (| or >)"),
    ("while parsing a block mapping", "in a mapping"),
    ("while parsing a flow mapping", "in a mapping in braces"),
    ("while parsing a flow sequence", "in a list in brackets"),
    ("while parsing a block collection", "in a list"),
    ("while parsing a flow node", "in a value"),
    ("while parsing a block node", "in a value"),
    ("while parsing a node", "in a value"),
    ("while scanning an anchor", "in an anchor (&)"),
    ("while scanning an alias", "in an alias (*)"),
    ("while scanning a tag", "in a tag (!)"),
    ("while parsing a tag", "in a tag (!)"),
    ("while scanning a directive", "in a directive (%)"),
    ("while constructing a mapping", "in a mapping"),
    ("expected a single document", "after the document"),
)


def _lookup(table: tuple[tuple[str, str], ...], text: str | None, default: str) -> str:
    return next((said for start, said in table if (text or "").startswith(start)), default)


def _where(mark: yaml.Mark | None) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"line {line}, column {offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


def _yaml_error(text: str, error: Exception) -> str:
    """Where the YAML is broken and how, with nothing quoted from it."""
    if isinstance(error, _Refusal):
        where, kind = _where(error.mark), error.kind
    elif isinstance(error, yaml.reader.ReaderError):
        where = _position(text, error.position)
        kind = "a control character or another character that YAML does not allow"
    elif isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = _where(mark)
        kind = _lookup(_PROBLEMS, error.problem, "malformed YAML")
        if error.context and error.context_mark is not None and mark is not error.context_mark:
            inside = _lookup(_CONTEXTS, error.context, "in a value")
            kind += f" ({inside} that starts at {_where(error.context_mark)})"
    else:
        where, kind = "somewhere", "malformed YAML"
    return f"the kubeconfig is not valid YAML: {where}: {kind}"


def _load(text: str) -> object:
    size = len(text.encode(errors="replace"))
    if size > MAX_BYTES:
        raise CredentialsError(
            INVALID,
            f"the kubeconfig is {size} bytes, more than the {MAX_BYTES} allowed; "
            "keep only the cluster, user and context the operator needs",
        )
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader, made stricter
    except (yaml.YAMLError, _Refusal) as error:
        raise CredentialsError(INVALID, _yaml_error(text, error)) from None
    except Exception:  # whatever it was, its text may quote the document
        raise CredentialsError(INVALID, "the kubeconfig cannot be read as YAML") from None


# --- the allow-list -------------------------------------------------------------------------------

_READS_FILE = "reads a file of the operator's own filesystem"
_RUNS = "runs a program in the operator"
# Known fields that a kubeconfig from a Secret may not hold: what each does, what to do instead.
_REFUSED_CLUSTER: Final = {
    "insecure-skip-tls-verify": (
        "turns off TLS verification",
        "give the server's CA as certificate-authority-data instead",
    ),
    "certificate-authority": (
        f"{_READS_FILE} (a CA file)",
        "embed the CA as certificate-authority-data",
    ),
    "proxy-url": (
        "sends the operator's traffic through a proxy",
        "let the operator connect to the server directly (or set HTTPS_PROXY on the operator)",
    ),
}
_INLINE = (
    "give the credentials inline: a token (deploy/supervisor/ and "
    "python -m shared_services.kubeconfig_cli make one), or "
    "client-certificate-data and client-key-data"
)
_REFUSED_USER: Final = {
    "auth-provider": (f"{_RUNS} or refreshes tokens against a third party", _INLINE),
    "exec": (_RUNS, _INLINE),
    "tokenFile": (_READS_FILE, "put the token itself in token"),
    "token-file": (_READS_FILE, "put the token itself in token"),
    "client-certificate": (_READS_FILE, "embed the certificate as client-certificate-data"),
    "client-key": (_READS_FILE, "embed the key as client-key-data"),
    "username": ("sends a password with every request (basic authentication)", _INLINE),
    "password": ("sends a password with every request (basic authentication)", _INLINE),
    "as": ("acts as another identity (impersonation)", "give that identity's own token"),
    "as-uid": ("acts as another identity (impersonation)", "give that identity's own token"),
    "as-groups": ("acts as another identity (impersonation)", "give that identity's own token"),
    "as-user-extra": (
        "acts as another identity (impersonation)",
        "give that identity's own token",
    ),
}
_TOP_FIELDS: Final = (
    "apiVersion",
    "kind",
    "preferences",
    "current-context",
    "clusters",
    "users",
    "contexts",
    "extensions",
)
_CLUSTER_FIELDS: Final = (
    "server",
    "certificate-authority-data",
    "tls-server-name",
    "disable-compression",
    "extensions",
)
_USER_FIELDS: Final = ("token", "client-certificate-data", "client-key-data", "extensions")
_CONTEXT_FIELDS: Final = ("cluster", "user", "namespace", "extensions")
_PREFERENCES_FIELDS: Final = ("colors", "extensions")

_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]{1,64})-----(.*?)-----END ([A-Z0-9 ]{1,64})-----", re.DOTALL
)
_KEY_LABELS = frozenset({b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY"})
_HOST_NAME = re.compile(r"[A-Za-z0-9.:\[\]-]{1,253}")


def _kind(value: object) -> str:
    """The YAML kind of a value, in words: never the value."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bytes):
        return "binary data"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a date or another YAML type"


def _ordinal(number: int) -> str:
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{'th' if 10 <= number % 100 <= 20 else suffix}"


class _Check:
    """Walks the document, collecting problems; refusals of insecure fields come first."""

    def __init__(self) -> None:
        self.insecure: list[str] = []
        self.invalid: list[str] = []

    def fail(self) -> None:
        """Raise the problems found, if any: insecure ones before malformed ones."""
        for reason, problems in ((INSECURE, self.insecure), (INVALID, self.invalid)):
            if problems:
                message = "; ".join(problems[:_MAX_LISTED])
                if len(problems) > _MAX_LISTED:
                    message += f"; and {len(problems) - _MAX_LISTED} more problems"
                raise CredentialsError(reason, message)

    def mapping(
        self,
        value: object,
        path: str,
        allowed: tuple[str, ...],
        refused: Mapping[str, tuple[str, str]] | None = None,
    ) -> dict[str, object] | None:
        """The fields of a mapping that are allowed, having noted every other one."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.invalid.append(f"{path} must be a mapping, not {_kind(value)}")
            return None
        kept: dict[str, object] = {}
        for number, (key, item) in enumerate(value.items(), start=1):
            if not isinstance(key, str):
                self.invalid.append(f"the {_ordinal(number)} key of {path} is not a string")
            elif refused and key in refused:
                if key == "insecure-skip-tls-verify" and item is False:
                    continue  # says that TLS is verified, which it is anyway
                does, instead = refused[key]
                self.insecure.append(f"{path}.{key} {does}; {instead}")
            elif key in allowed:
                kept[key] = item
            else:
                where = f"{path}" if path else "the top level"
                self.invalid.append(
                    f"the {_ordinal(number)} field of {where} is not one a kubeconfig from a "
                    f"Secret may hold; allowed there: {', '.join(allowed)}"
                )
        return kept

    def string(
        self, value: object, path: str, *, limit: int = MAX_NAME_CHARS, required: bool = False
    ) -> str | None:
        """A string field, or None when absent or wrong (then noted)."""
        if value is None or value == "":
            if required:
                self.invalid.append(f"{path} is missing")
            return None
        if not isinstance(value, str):
            self.invalid.append(f"{path} must be a string, not {_kind(value)} (quote it)")
            return None
        if len(value) > limit:
            self.invalid.append(f"{path} is longer than {limit} characters")
            return None
        return value

    def server(self, value: object, path: str) -> str | None:
        """An https URL that cannot carry a credential or a surprise."""
        url = self.string(value, path, limit=MAX_URL_CHARS, required=True)
        if url is None:
            return None
        if not all(33 <= ord(c) < 127 for c in url):
            self.invalid.append(f"{path} holds a space, a control or a non-ASCII character")
            return None
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            self.invalid.append(f"{path} is not a URL with a valid host and port")
            return None
        problems = [
            (parts.scheme != "https", "must start with https:// (TLS is required)"),
            ("@" in parts.netloc, "must not hold a user name or password"),
            (bool(parts.query) or "?" in url, "must not hold a query (?)"),
            (bool(parts.fragment) or "#" in url, "must not hold a fragment (#)"),
            (not parts.hostname, "names no host"),
            (port == 0, "names port 0"),
        ]
        said = [text for wrong, text in problems if wrong]
        if said:
            self.invalid.append(f"{path} {said[0]}")
            return None
        return url.rstrip("/")

    def token(self, value: object, path: str) -> str | None:
        """A bearer token as an HTTP header can carry it."""
        token = self.string(value, path, limit=MAX_TOKEN_CHARS)
        if token is None:
            return None
        if all(33 <= ord(c) < 127 for c in token.rstrip("\r\n")) and token[-1] in "\r\n":
            self.invalid.append(f"{path} ends with a line break; store the token without it")
            return None
        if not all(33 <= ord(c) < 127 for c in token):
            self.invalid.append(
                f"{path} holds a space, a line break, a control or a non-ASCII character, "
                "which a bearer token cannot have (an HTTP header carries it)"
            )
            return None
        return token

    def pem(self, value: object, path: str, *, key: bool) -> bytes | None:
        """Strict base64 of PEM: certificates, or one unencrypted private key."""
        text = self.string(value, path, limit=MAX_DATA_BYTES * 4 // 3 + 4)
        if text is None:
            return None
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            self.invalid.append(
                f"{path} is not base64 (the standard alphabet, padded, on one line)"
            )
            return None
        blocks = []
        for match in _PEM_BLOCK.finditer(raw):
            label, body, end = match.groups()
            try:
                der = base64.b64decode(b"".join(body.split()), validate=True)
            except (binascii.Error, ValueError):
                der = b""
            if label != end or not der:
                self.invalid.append(f"{path} holds a malformed PEM block")
                return None
            blocks.append((label, der))
        what = "a private key" if key else "certificates"
        if not blocks:
            self.invalid.append(f"{path} is base64, but not of PEM text holding {what}")
            return None
        if key:
            if any(label == b"ENCRYPTED PRIVATE KEY" for label, _ in blocks):
                self.invalid.append(
                    f"{path} is an encrypted key, and nobody is there to give its password; "
                    "embed the key unencrypted"
                )
                return None
            keys = [(label, der) for label, der in blocks if label in _KEY_LABELS]
            others = [label for label, _ in blocks if label not in _KEY_LABELS]
            if len(keys) != 1 or any(label != b"EC PARAMETERS" for label in others):
                self.invalid.append(f"{path} must hold exactly one private key, and nothing else")
                return None
            blocks = keys
        elif any(label != b"CERTIFICATE" for label, _ in blocks):
            self.invalid.append(f"{path} holds a PEM block that is not a certificate")
            return None
        return b"".join(_pem(label, der) for label, der in blocks)

    def boolean(self, value: object, path: str) -> None:
        """A boolean field that is ignored."""
        if value is not None and not isinstance(value, bool):
            self.invalid.append(f"{path} must be true or false, not {_kind(value)}")

    def listing(self, value: object, path: str) -> None:
        """A list whose content is ignored (``extensions``)."""
        if value is not None and not isinstance(value, list):
            self.invalid.append(f"{path} must be a list, not {_kind(value)}")


def _pem(label: bytes, der: bytes) -> bytes:
    body = base64.b64encode(der)
    lines = b"\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return b"-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, lines, label)


T = TypeVar("T")


@dataclass(frozen=True)
class _Cluster:
    server: str | None
    ca_pem: bytes | None
    tls_server_name: str | None


@dataclass(frozen=True)
class _User:
    token: str | None
    certificate_pem: bytes | None
    key_pem: bytes | None


@dataclass(frozen=True)
class _Link:
    cluster: str | None
    user: str | None


def _cluster(check: _Check, fields: Mapping[str, object], path: str) -> _Cluster:
    check.boolean(fields.get("disable-compression"), f"{path}.disable-compression")
    check.listing(fields.get("extensions"), f"{path}.extensions")
    name = check.string(fields.get("tls-server-name"), f"{path}.tls-server-name", limit=253)
    if name is not None and not _HOST_NAME.fullmatch(name):
        check.invalid.append(f"{path}.tls-server-name is not a host name")
        name = None
    return _Cluster(
        server=check.server(fields.get("server"), f"{path}.server"),
        ca_pem=check.pem(
            fields.get("certificate-authority-data"),
            f"{path}.certificate-authority-data",
            key=False,
        ),
        tls_server_name=name,
    )


def _user(check: _Check, fields: Mapping[str, object], path: str) -> _User:
    check.listing(fields.get("extensions"), f"{path}.extensions")
    return _User(
        token=check.token(fields.get("token"), f"{path}.token"),
        certificate_pem=check.pem(
            fields.get("client-certificate-data"), f"{path}.client-certificate-data", key=False
        ),
        key_pem=check.pem(fields.get("client-key-data"), f"{path}.client-key-data", key=True),
    )


def _link(check: _Check, fields: Mapping[str, object], path: str) -> _Link:
    check.string(fields.get("namespace"), f"{path}.namespace")
    check.listing(fields.get("extensions"), f"{path}.extensions")
    return _Link(
        cluster=check.string(fields.get("cluster"), f"{path}.cluster", required=True),
        user=check.string(fields.get("user"), f"{path}.user"),  # required by parse()
    )


def _named(
    check: _Check,
    value: object,
    *,
    plural: str,
    singular: str,
    allowed: tuple[str, ...],
    refused: Mapping[str, tuple[str, str]] | None,
    read: Callable[[_Check, Mapping[str, object], str], T],
) -> dict[str, tuple[int, T]]:
    """One of the lists of ``{name, <singular>}`` entries, by name, with each one's index."""
    found: dict[str, tuple[int, T]] = {}
    if value is None:
        return found
    if not isinstance(value, list):
        check.invalid.append(f"{plural} must be a list, not {_kind(value)}")
        return found
    for index, entry in enumerate(value):
        outer = check.mapping(entry, f"{plural}[{index}]", ("name", singular))
        if outer is None:
            continue
        path = f"{plural}[{index}].{singular}"
        fields = check.mapping(outer.get(singular), path, allowed, refused)
        name = check.string(outer.get("name"), f"{plural}[{index}].name", required=True)
        if fields is None or name is None:
            continue
        if name in found:
            first = found[name][0]
            check.invalid.append(f"{plural}[{index}].name is the same as {plural}[{first}].name")
            continue
        found[name] = (index, read(check, fields, path))
    return found


@dataclass(frozen=True)
class _Document:
    current: str | None
    clusters: dict[str, tuple[int, _Cluster]]
    users: dict[str, tuple[int, _User]]
    contexts: dict[str, tuple[int, _Link]]


def _walk(document: Mapping[object, object]) -> _Document:
    """Check every field of the document; raise the problems found, if any."""
    check = _Check()
    top = check.mapping(document, "", _TOP_FIELDS) or {}
    if top.get("apiVersion") not in (None, "v1"):
        check.invalid.append("apiVersion must be v1")
    if top.get("kind") not in (None, "Config"):
        check.invalid.append("kind must be Config")
    preferences = check.mapping(top.get("preferences"), "preferences", _PREFERENCES_FIELDS)
    if preferences:
        check.boolean(preferences.get("colors"), "preferences.colors")
        check.listing(preferences.get("extensions"), "preferences.extensions")
    check.listing(top.get("extensions"), "extensions")
    if not top.get("clusters"):
        check.invalid.append("the kubeconfig names no clusters")
    walked = _Document(
        current=check.string(top.get("current-context"), "current-context"),
        clusters=_named(
            check,
            top.get("clusters"),
            plural="clusters",
            singular="cluster",
            allowed=_CLUSTER_FIELDS,
            refused=_REFUSED_CLUSTER,
            read=_cluster,
        ),
        users=_named(
            check,
            top.get("users"),
            plural="users",
            singular="user",
            allowed=_USER_FIELDS,
            refused=_REFUSED_USER,
            read=_user,
        ),
        contexts=_named(
            check,
            top.get("contexts"),
            plural="contexts",
            singular="context",
            allowed=_CONTEXT_FIELDS,
            refused=None,
            read=_link,
        ),
    )
    check.fail()
    return walked


def _select(document: _Document, context: str | None) -> tuple[int, _Link]:
    """The context to use: ``spec.context``, else ``current-context``, else the only one."""
    contexts = document.contexts
    if context:
        if context not in contexts:
            msg = (
                f"the kubeconfig has no context named {context!r}, which the RemoteCluster's "
                "spec.context asks for"
            )
            raise CredentialsError(INVALID, msg)
        return contexts[context]
    if document.current:
        if document.current not in contexts:
            raise CredentialsError(INVALID, "current-context names none of the contexts")
        return contexts[document.current]
    if len(contexts) == 1:
        return next(iter(contexts.values()))
    if not contexts:
        msg = "the kubeconfig names no contexts; add one naming the cluster and the user"
        raise CredentialsError(INVALID, msg)
    msg = (
        f"the kubeconfig has {len(contexts)} contexts and no current-context; set "
        "current-context or the RemoteCluster's spec.context"
    )
    raise CredentialsError(INVALID, msg)


def _credentials(user: _User, path: str) -> BearerToken | ClientCertificate:
    if user.token is not None and (user.certificate_pem or user.key_pem):
        msg = f"{path} holds both a token and a client certificate; keep one of the two"
        raise CredentialsError(INVALID, msg)
    if user.token is not None:
        return BearerToken(user.token)
    if user.certificate_pem and user.key_pem:
        return ClientCertificate(certificate_pem=user.certificate_pem, key_pem=user.key_pem)
    if user.certificate_pem or user.key_pem:
        msg = f"{path} needs both client-certificate-data and client-key-data, or neither"
        raise CredentialsError(INVALID, msg)
    msg = (
        f"{path} holds no credentials; give a token, or client-certificate-data and client-key-data"
    )
    raise CredentialsError(INVALID, msg)


def parse(text: str, *, context: str | None = None, signs_in: bool = False) -> Kubeconfig:
    """Check a kubeconfig against the allow-list; return what a client of ``context`` needs.

    ``context`` is the RemoteCluster's ``spec.context``; without it, ``current-context``,
    else the only context. With ``signs_in`` (the RemoteCluster signs in with credentials of
    its own) the context needs no user, and a user it names is still checked but not used.
    Raises :class:`CredentialsError` (``InsecureKubeconfig`` or
    ``KubeconfigInvalid``) with a message that names fields by path and never holds a byte
    of ``text``.
    """
    document = _load(text)
    if document is None:
        raise CredentialsError(INVALID, "the kubeconfig is empty")
    if not isinstance(document, Mapping):
        msg = f"the kubeconfig must be a YAML mapping, not {_kind(document)}"
        raise CredentialsError(INVALID, msg)
    walked = _walk(document)
    index, link = _select(walked, context)
    path = f"contexts[{index}].context"
    if link.cluster not in walked.clusters:
        raise CredentialsError(INVALID, f"{path}.cluster names none of the clusters")
    if link.user is None and not signs_in:
        raise CredentialsError(INVALID, f"{path}.user is missing")
    if link.user is not None and link.user not in walked.users:
        raise CredentialsError(INVALID, f"{path}.user names none of the users")
    cluster_index, cluster = walked.clusters[link.cluster]
    credentials: BearerToken | ClientCertificate | None = None
    user_path = ""
    if link.user is not None:
        user_index, user = walked.users[link.user]
        user_path = f"users[{user_index}].user"
        if not signs_in:
            credentials = _credentials(user, user_path)
    if cluster.server is None:  # noted by the walk already; here for the type checker
        raise CredentialsError(INVALID, f"clusters[{cluster_index}].cluster.server is missing")
    return Kubeconfig(
        server=cluster.server,
        ca_pem=cluster.ca_pem,
        tls_server_name=cluster.tls_server_name,
        credentials=credentials,
        cluster_path=f"clusters[{cluster_index}].cluster",
        user_path=user_path,
    )
