"""The custom resources' models: the one source of truth for what a valid spec is.

The CRDs in ``crds/`` are generated from these models (see ``crdgen``), and every rule the
API server enforces through those CRDs is enforced here as well. The duplication is on
purpose: an old CRD, a CRD installed by hand, or a cluster that skips CEL may let a bad spec
through, and the operator must still refuse it with a message a person can act on instead of
writing broken Services and EndpointSlices. Each CEL rule is declared next to the Python
check that mirrors it and uses the same message, so the two read the same to a user.

Nothing here rewrites what the user wrote. Defaults that Kubernetes does not apply (the local
Service name, a port's target port, canonical address text) are exposed as derived helpers so
that the stored object and the model always agree.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, Self

import pydantic
import pydantic.alias_generators
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

JsonDict = dict[str, pydantic.JsonValue]

GROUP = "sharedservices.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# An object as the API server sends and takes it: its JSON, camelCase keys and all.
JSON = dict[str, Any]
# An import by its namespace and name: the key of every table and queue that is per import.
ImportKey = tuple[str, str]

IMPORT_KIND = "SharedServiceImport"
IMPORT_PLURAL = "sharedserviceimports"
IMPORT_SINGULAR = "sharedserviceimport"

REMOTE_CLUSTER_KIND = "RemoteCluster"
REMOTE_CLUSTER_PLURAL = "remoteclusters"
REMOTE_CLUSTER_SINGULAR = "remotecluster"
# Which installation writes a RemoteCluster's status, where several use it (releases that
# shard one cluster by namespace): the value of their --instance. Unset, every one does.
STATUS_WRITER_ANNOTATION = "sharedservices.io/status-writer"
# The label by which a central Service's owners share it: with a RemoteCluster's
# spec.requireExport, only Services that carry it with the value "true" may be imported,
# and only those are ever sent to the operator (the watch selects them on the server).
EXPORT_LABEL = "sharedservices.io/export"
EXPORT_SELECTOR = f"{EXPORT_LABEL}=true"

# An EndpointSlice holds at most 100 ports; the import's ports all go into each slice.
MAX_PORTS = 100
MAX_ADDRESSES = 64
MAX_NAMESPACES = 256
# One EndpointSlice holds at most 1000 endpoints, so more resolved addresses cannot be served.
MAX_STATUS_ADDRESSES = 1000
MAX_CONDITIONS = 32
# The longest textual IPv6 address (with an embedded IPv4 tail) has 45 characters.
MAX_IP_LENGTH = 45

# Kubernetes' own name rules (k8s.io/apimachinery/pkg/util/validation), as RE2-compatible
# patterns so that the API server and pydantic run the very same expression.
DNS1123_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1035_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# A resolvable name: DNS-1123 subdomain whose labels also fit DNS's 63-octet limit, with the
# fully-qualified trailing dot allowed.
HOSTNAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*\.?$"
# IANA_SVC_NAME as Kubernetes checks port names: lowercase letters, digits and single inner
# hyphens, with at least one letter. RE2 has no look-ahead, so "at least one letter" is
# spelled as "digit groups, then a letter, then anything allowed".
PORT_NAME_PATTERN = r"^([0-9]+-?)*[a-z]([a-z0-9]|-[a-z0-9])*$"
# Kubernetes' rule for keys of a Secret's or ConfigMap's data.
DATA_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

SourceKind = Literal["remoteService", "hostname", "addresses"]
Protocol = Literal["TCP", "UDP", "SCTP"]
ConditionStatus = Literal["True", "False", "Unknown"]


class InvalidSpecError(ValueError):
    """A spec the operator refuses; ``message`` is short enough for a status condition."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- helpers that keep a rule, its CEL twin and its message in one place ------------------


def cel_rule(
    rule: str,
    message: str,
    *,
    message_expression: str | None = None,
    field_path: str | None = None,
    reason: str | None = None,
) -> JsonDict:
    """Build one ``x-kubernetes-validations`` entry, so rules read the same everywhere."""
    entry: JsonDict = {"rule": rule, "message": message}
    if message_expression is not None:
        entry["messageExpression"] = message_expression
    if field_path is not None:
        entry["fieldPath"] = field_path
    if reason is not None:
        entry["reason"] = reason
    return entry


def _k8s(
    *rules: JsonDict,
    list_type: str | None = None,
    map_keys: Sequence[str] = (),
    **extra: pydantic.JsonValue,
) -> JsonDict:
    """Collect one node's schema extensions: CEL rules, list semantics, plain keywords."""
    schema: JsonDict = dict(extra)
    if rules:
        schema["x-kubernetes-validations"] = list(rules)
    if list_type is not None:
        schema["x-kubernetes-list-type"] = list_type
    if map_keys:
        schema["x-kubernetes-list-map-keys"] = list(map_keys)
    return schema


def _explained(message: str) -> WrapValidator:
    """Replace pydantic's generic complaint about a constrained value by one that says what fits.

    "String should match pattern '^[a-z0-9]...'" is correct but useless to a person editing
    YAML; the message given here names the rule in words.
    """

    def validate(value: object, handler: ValidatorFunctionWrapHandler) -> object:
        try:
            return handler(value)
        except pydantic.ValidationError as error:
            raise PydanticCustomError("invalid_value", message) from error

    return WrapValidator(validate)


def _fail(message: str) -> PydanticCustomError:
    # Custom errors keep the message as written; a ValueError would be prefixed "Value error,".
    return PydanticCustomError("invalid_value", message)


def _unique(
    *, what: str, key: Callable[[str], str] = str, message: str | None = None
) -> AfterValidator:
    """Reject a list that names the same thing twice, as ``x-kubernetes-list-type: set`` does.

    ``message`` is the CRD rule's, where one says the same: on a release whose CEL cannot
    run that rule, the operator's refusal is the one a user sees, in the same words.
    """
    said = message or f"must not list the same {what} twice"

    def validate(items: tuple[str, ...]) -> tuple[str, ...]:
        counts = Counter(key(item) for item in items)
        repeated = [item for item, count in counts.items() if count > 1]
        if repeated:
            raise _fail(f"{said}; {repeated[0]} is listed twice")
        return items

    return AfterValidator(validate)


def _integral_number(value: object) -> object:
    # JSON has a single number type, and the API server takes 80.0 for the integer 80 (it
    # stores 80). Refusing what the server admitted would only confuse; fractions, strings
    # and booleans are still refused, as the server refuses them.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- constrained scalar types --------------------------------------------------------------

DNS1123Label = Annotated[
    str,
    Strict(),
    Field(min_length=1, max_length=63, pattern=DNS1123_LABEL_PATTERN),
    _explained(
        "must be a DNS-1123 label: at most 63 lowercase letters, digits or '-', "
        "starting and ending with a letter or digit"
    ),
]
DNS1123Subdomain = Annotated[
    str,
    Strict(),
    Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN_PATTERN),
    _explained(
        "must be a DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' or '.', "
        "each dot-separated part starting and ending with a letter or digit"
    ),
]
DNS1035Label = Annotated[
    str,
    Strict(),
    Field(min_length=1, max_length=63, pattern=DNS1035_LABEL_PATTERN),
    _explained(
        "must be a DNS-1035 label: at most 63 lowercase letters, digits or '-', "
        "starting with a letter and ending with a letter or digit"
    ),
]
PortNumber = Annotated[
    int,
    Strict(),
    Field(ge=1, le=65535),
    BeforeValidator(_integral_number),
    _explained("must be an integer between 1 and 65535"),
]
Generation = Annotated[int, Strict(), Field(ge=0), BeforeValidator(_integral_number)]
PortName = Annotated[
    str,
    Strict(),
    Field(min_length=1, max_length=15, pattern=PORT_NAME_PATTERN),
    _explained(
        "must be a port name: at most 15 lowercase letters, digits or '-', with at least "
        "one letter, no '-' at either end and no '--'"
    ),
]

HOSTNAME_IS_IP_MESSAGE = "is an IP address; list IP addresses under source.addresses instead"

# --- the one hostname rule -----------------------------------------------------------------
# A name the operator looks up (A and AAAA): a host name as RFC 1123 has it, in ASCII
# (an internationalized name in its xn-- form), at most 253 characters without the final
# dot, labels of 1 to 63 letters, digits and '-' that neither start nor end with '-', and
# a last label that is not all digits (which no top-level domain is, and which reads as a
# mistyped address). No '_': it names services in SRV and TXT records, never a host, and
# Kubernetes refuses it in a LoadBalancer's ingress hostname as in every name. The
# CRD's pattern is this rule for the names a spec holds, spelled in lowercase as Kubernetes
# spells names; a LoadBalancer's ingress hostname is lowercased first (DNS ignores case).
MAX_HOSTNAME = 253
MAX_HOSTNAME_LABEL = 63
_HOSTNAME_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?")
# No backslash, which a CEL string would need doubled: [.] is a dot in both languages.
NUMERIC_LAST_LABEL_PATTERN = r"(^|[.])[0-9]+[.]?$"
NUMERIC_LAST_LABEL_MESSAGE = "its last label is all digits, and no top-level domain is"


def hostname_problem(hostname: str) -> str | None:
    """Say why ``hostname`` cannot be looked up, in words a person can act on; None if it can.

    A malformed name would otherwise reach the DNS servers, or fail inside the resolver
    with a message about wire formats. Checking first points at the character or label to
    fix.
    """
    if not hostname:
        return "the hostname is empty"
    if _is_ip_text(hostname):  # any form Python reads, zoned and IPv4-mapped too
        return f"{hostname!r} is an IP address, not a hostname"
    problem = _hostname_text_problem(hostname)
    return None if problem is None else f"{hostname!r} is not a valid hostname: {problem}"


def _is_ip_text(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _hostname_text_problem(hostname: str) -> str | None:
    if not hostname.isascii():
        return (
            "only ASCII letters, digits and '-' are allowed; write an internationalized name "
            "in its xn-- form"
        )
    name = hostname.removesuffix(".")
    if len(name) > MAX_HOSTNAME:
        return f"it is {len(name)} characters long, at most {MAX_HOSTNAME} are allowed"
    labels = name.split(".")
    for label in labels:
        if not label:
            return "it has an empty label (a leading dot or two dots in a row)"
        if len(label) > MAX_HOSTNAME_LABEL:
            return (
                f"the label {label[:20]!r}... is {len(label)} characters long, "
                f"at most {MAX_HOSTNAME_LABEL} are allowed"
            )
        if label.startswith("-") or label.endswith("-"):
            return f"the label {label!r} may not start or end with '-'"
        if _HOSTNAME_LABEL.fullmatch(label) is None:
            return f"the label {label!r} may hold only letters, digits and '-'"
    if labels[-1].isdigit():
        return f"its last label {labels[-1]!r} is all digits, and no top-level domain is"
    return None


def _hostname_not_ip(value: str) -> str:
    # Such a name would be looked up in DNS and never found; say where it belongs instead.
    if _parse_kubernetes_ip(value) is not None:
        raise _fail(HOSTNAME_IS_IP_MESSAGE)
    if re.search(NUMERIC_LAST_LABEL_PATTERN, value):
        raise _fail(NUMERIC_LAST_LABEL_MESSAGE)
    return value


Hostname = Annotated[
    str,
    Strict(),
    Field(
        min_length=1,
        max_length=253,
        pattern=HOSTNAME_PATTERN,
        json_schema_extra=_k8s(
            cel_rule("!isIP(self)", HOSTNAME_IS_IP_MESSAGE),
            cel_rule(f"!self.matches('{NUMERIC_LAST_LABEL_PATTERN}')", NUMERIC_LAST_LABEL_MESSAGE),
        ),
    ),
    _explained(
        "must be a DNS name such as db.example.internal: at most 253 lowercase letters, "
        "digits, '-' or '.', each label at most 63 characters starting and ending with a "
        "letter or digit, optionally ending in '.'"
    ),
    AfterValidator(_hostname_not_ip),
]

# --- endpoint addresses --------------------------------------------------------------------

NOT_AN_IP_MESSAGE = (
    "must be an IPv4 or IPv6 address such as 192.0.2.10 or 2001:db8::10 "
    "(no zone, no IPv4-mapped IPv6 form, no leading zeros)"
)
UNSPECIFIED_MESSAGE = "must not be the unspecified address (0.0.0.0 or ::)"
LOOPBACK_MESSAGE = "must not be a loopback address (127.0.0.0/8 or ::1)"
LINK_LOCAL_MESSAGE = "must not be a link-local address (169.254.0.0/16 or fe80::/10)"
LINK_LOCAL_MULTICAST_MESSAGE = (
    "must not be a link-local multicast address (224.0.0.0/24 or ff02::/16)"
)
NOT_UNICAST_MESSAGE = (
    "must be a unicast address, not multicast (224.0.0.0/4, ff00::/8) "
    "or broadcast (255.255.255.255)"
)
DUPLICATE_ADDRESS_MESSAGE = "must not list the same address twice, in any spelling"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_kubernetes_ip(text: str) -> IPAddress | None:
    """Parse ``text`` as the Kubernetes CEL ``ip()`` function does, or return None.

    Python accepts zones ("fe80::1%eth0") and IPv4-mapped IPv6 addresses, which Kubernetes
    refuses; both are refused here too so the operator and the API server agree.
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and (
        address.scope_id is not None or address.ipv4_mapped is not None
    ):
        return None
    return address


_LINK_LOCAL_MULTICAST_V4 = ipaddress.IPv4Network("224.0.0.0/24")


def _is_link_local_multicast(address: IPAddress) -> bool:
    # Go's net/netip definition, which the API server uses: 224.0.0.0/24 and ffX2::/16.
    if isinstance(address, ipaddress.IPv4Address):
        return address in _LINK_LOCAL_MULTICAST_V4
    packed = address.packed
    return packed[0] == 0xFF and packed[1] & 0x0F == 0x02


_BROADCAST = ipaddress.IPv4Address("255.255.255.255")

# Why an address cannot be an endpoint, checked in this order by both the Python check and
# the CEL message expression, so both name the same reason: (CEL test, Python test, message,
# word). The word names the reason where refused addresses are listed ("127.0.0.1 (loopback)").
# Whatever is left, when Kubernetes' isGlobalUnicast() is false, is multicast or broadcast.
_ADDRESS_PROBLEMS: tuple[tuple[str, Callable[[IPAddress], bool], str, str], ...] = (
    ("ip(self).isUnspecified()", lambda a: a.is_unspecified, UNSPECIFIED_MESSAGE, "unspecified"),
    ("ip(self).isLoopback()", lambda a: a.is_loopback, LOOPBACK_MESSAGE, "loopback"),
    ("ip(self).isLinkLocalUnicast()", lambda a: a.is_link_local, LINK_LOCAL_MESSAGE, "link-local"),
    (
        "ip(self).isLinkLocalMulticast()",
        _is_link_local_multicast,
        LINK_LOCAL_MULTICAST_MESSAGE,
        "multicast",
    ),
    (
        "!ip(self).isGlobalUnicast()",
        lambda a: a.is_multicast or a == _BROADCAST,
        NOT_UNICAST_MESSAGE,
        "multicast",
    ),
)


def _address_message_expression() -> str:
    # The last entry is what remains when the rule fails, so it needs no test of its own.
    *tested, (_, _, fallback, _) = _ADDRESS_PROBLEMS
    expression = f"'{fallback}'"
    for cel_test, _, message, _ in reversed(tested):
        expression = f"{cel_test} ? '{message}' : {expression}"
    return expression


def endpoint_address_problem(text: str) -> str | None:
    """Say why ``text`` cannot be an endpoint address, or return None when it can.

    The API server refuses unspecified, loopback and link-local addresses in Endpoints and
    EndpointSlices; multicast and broadcast cannot back a Service. The resolver of hostname
    sources uses this too, so that a DNS answer of 127.0.0.1 is dropped, not written.
    """
    address = _parse_kubernetes_ip(text)
    if address is None:
        return NOT_AN_IP_MESSAGE
    for _, is_problem, message, _ in _ADDRESS_PROBLEMS:
        if is_problem(address):
            return message
    return None


# IPv6 ranges whose addresses stand for an IPv4 address, with the name of each form. No
# shared service's VIP takes one of these forms: IPv4-compatible and IPv4-translated
# addresses are deprecated, 6to4 and Teredo tunnel to IPv4 hosts. Each would carry an
# endpoint past every rule that judges IPv4 addresses, so each is refused outright.
IPV4_IN_IPV6_FORMS: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (ipaddress.IPv6Network("::/96"), "IPv4-compatible"),
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), "IPv4-translated"),
    (ipaddress.IPv6Network("2002::/16"), "6to4"),
    (ipaddress.IPv6Network("2001::/32"), "Teredo"),
)
IPV4_IN_IPV6_MESSAGE = (
    "must not be an IPv6 form of an IPv4 address: "
    + ", ".join(f"{word} ({network})" for network, word in IPV4_IN_IPV6_FORMS[:-1])
    + f" or {IPV4_IN_IPV6_FORMS[-1][1]} ({IPV4_IN_IPV6_FORMS[-1][0]})"
)
# NAT64's well-known prefix (RFC 6052): a translator sends what reaches 64:ff9b::a.b.c.d to
# a.b.c.d. Its layout is fixed, so a rule with no settings can read the IPv4 address out of
# it; network-specific prefixes are the operator's address policy's to judge.
NAT64_WELL_KNOWN_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_UNUSABLE_MESSAGE = (
    f"must not be a NAT64 address ({NAT64_WELL_KNOWN_PREFIX}) of an IPv4 address that "
    "cannot be an endpoint (unspecified, loopback, link-local, multicast or broadcast)"
)
# The IPv4 addresses that cannot be endpoints (the IPv4 half of _ADDRESS_PROBLEMS, as ranges),
# where the NAT64 rule of the CRD looks for them; a unit test holds the two together.
UNUSABLE_IPV4 = (
    "0.0.0.0/32",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "224.0.0.0/4",
    "255.255.255.255/32",
)


def nat64_ranges(prefix: ipaddress.IPv6Network, networks: Iterable[str]) -> list[str]:
    """The IPv4 ``networks`` as a /96 NAT64 ``prefix`` writes them, for a CEL rule."""
    ranges = []
    for text in networks:
        network = ipaddress.IPv4Network(text)
        start = int(prefix.network_address) | int(network.network_address)
        ranges.append(str(ipaddress.IPv6Network((start, 96 + network.prefixlen))))
    return ranges


def _cel_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


def ipv4_in_ipv6_problem(address: IPAddress) -> str | None:
    """Say why an IPv6 address that carries an IPv4 one cannot be an endpoint, or None.

    Only for an address that is otherwise usable (as Kubernetes' ``isGlobalUnicast`` is
    true): the refusals of :func:`endpoint_address_problem` come first, as the CRD's rules
    do, so that ``::1`` is a loopback address and not an IPv4-compatible one.
    """
    if not isinstance(address, ipaddress.IPv6Address) or unusable_reason(address) is not None:
        return None
    if any(address in network for network, _ in IPV4_IN_IPV6_FORMS):
        return IPV4_IN_IPV6_MESSAGE
    if address in NAT64_WELL_KNOWN_PREFIX:
        carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if unusable_reason(carried) is not None:
            return NAT64_UNUSABLE_MESSAGE
    return None


def unusable_reason(address: IPAddress) -> str | None:
    """A word for why ``address`` cannot be an endpoint, or None when it can.

    It refuses what :func:`endpoint_address_problem` refuses, named in a word for the lists
    of refused ingress entries and DNS answers ("127.0.0.1 (loopback)").
    """
    for _, is_problem, _, word in _ADDRESS_PROBLEMS:
        if is_problem(address):
            return "broadcast" if address == _BROADCAST else word
    return None


def endpoint_ip(raw: object) -> IPAddress:
    """Parse an address that is to be an endpoint, as Kubernetes' own components read it.

    Remote ingress entries, and every address an import resolved to before it is built,
    come from places the operator does not control. Go reads ``::ffff:a.b.c.d`` as the
    IPv4 address, and so does this; a zone is refused. Only text is accepted: ``ipaddress``
    would also take an int or packed bytes, which no JSON status meant. Raises ValueError,
    with a short reason as message, for anything that cannot be an endpoint.
    """
    if not isinstance(raw, str):
        raise ValueError(f"not a string but {type(raw).__name__}")  # noqa: TRY004
    if len(raw) > MAX_IP_LENGTH:
        raise ValueError("too long to be an IP address")
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        raise ValueError("not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            raise ValueError("has a zone index, which has no meaning off its host")
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
    reason = unusable_reason(address)
    if reason is not None:
        raise ValueError(reason)
    return address


def canonical_address(raw: object) -> str:
    """Spell a usable endpoint address canonically (``2001:DB8::1`` -> ``2001:db8::1``).

    RFC 5952 for IPv6, as Go prints it. The spec keeps what the user wrote; every object the
    operator builds uses this one spelling, so that the built objects are stable and
    "2001:DB8::1" and "2001:db8:0::1" are recognised as the same endpoint. Raises
    ValueError, as :func:`endpoint_ip` does.
    """
    return str(endpoint_ip(raw))


def _check_endpoint_address(value: str) -> str:
    problem = endpoint_address_problem(value)
    address = _parse_kubernetes_ip(value)
    if problem is None and address is not None:
        problem = ipv4_in_ipv6_problem(address)
    if problem is not None:
        raise _fail(problem)
    return value


def _canonical_or_self(text: str) -> str:
    address = _parse_kubernetes_ip(text)
    return text if address is None else str(address)


EndpointAddress = Annotated[
    str,
    Strict(),
    Field(
        min_length=1,
        max_length=MAX_IP_LENGTH,
        json_schema_extra=_k8s(
            cel_rule("isIP(self)", NOT_AN_IP_MESSAGE),
            cel_rule(
                "!isIP(self) || ip(self).isGlobalUnicast()",
                NOT_UNICAST_MESSAGE,
                message_expression=_address_message_expression(),
            ),
            # Only where the rule above holds, so that one address gets one reason.
            cel_rule(
                "!isIP(self) || ip(self).family() == 4 || !ip(self).isGlobalUnicast() || "
                f"!{_cel_list(str(n) for n, _ in IPV4_IN_IPV6_FORMS)}"
                ".exists(c, cidr(c).containsIP(ip(self)))",
                IPV4_IN_IPV6_MESSAGE,
            ),
            cel_rule(
                "!isIP(self) || ip(self).family() == 4 || "
                f"!{_cel_list(nat64_ranges(NAT64_WELL_KNOWN_PREFIX, UNUSABLE_IPV4))}"
                ".exists(c, cidr(c).containsIP(ip(self)))",
                NAT64_UNUSABLE_MESSAGE,
            ),
        ),
    ),
    _explained(NOT_AN_IP_MESSAGE),
    AfterValidator(_check_endpoint_address),
]

Addresses = Annotated[
    tuple[EndpointAddress, ...],
    Field(
        min_length=1,
        max_length=MAX_ADDRESSES,
        json_schema_extra=_k8s(
            # list-type "set" rejects the same string twice; this also catches the same
            # address spelled two ways, which would otherwise become two identical endpoints.
            # IP values are compared directly: the cost estimator prices that at 1, whereas
            # string(ip(...)) has no size bound and would push the rule over its budget.
            cel_rule(
                "self.all(a, !isIP(a) || self.exists_one(b, isIP(b) && ip(b) == ip(a)))",
                DUPLICATE_ADDRESS_MESSAGE,
            ),
            list_type="set",
        ),
    ),
    _unique(what="address", key=_canonical_or_self, message=DUPLICATE_ADDRESS_MESSAGE),
]

# --- SharedServiceImport -------------------------------------------------------------------


class _Wire(pydantic.BaseModel):
    """Base of every model read from the API server: a null field counts as an absent one."""

    @pydantic.model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data: object) -> object:
        # The API server prunes the null value of a field that is not nullable before it
        # defaults and validates, so "protocol: null" means the same as no protocol at all:
        # the default applies, and a required field is reported as missing.
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value is not None}
        return data


class _Spec(_Wire):
    """Base of the specs: immutable, camelCase on the wire, and strict about unknown fields."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=pydantic.alias_generators.to_camel,
        populate_by_name=True,
        extra="forbid",
    )


class _Status(_Wire):
    """Base of the statuses: what older or newer operators wrote is ignored, not an error."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=pydantic.alias_generators.to_camel,
        populate_by_name=True,
        extra="ignore",
    )


class RemoteServiceRef(_Spec):
    """A LoadBalancer Service on a central cluster whose ingress addresses are imported."""

    cluster: DNS1123Subdomain = Field(
        description="Name of the RemoteCluster that holds the Service."
    )
    namespace: DNS1123Label = Field(description="Namespace of the Service on that cluster.")
    name: DNS1035Label = Field(description="Name of the Service on that cluster.")


ONE_SOURCE_MESSAGE = "set exactly one of remoteService, hostname or addresses"
_SOURCE_FIELDS: tuple[tuple[str, SourceKind], ...] = (
    ("remote_service", "remoteService"),
    ("hostname", "hostname"),
    ("addresses", "addresses"),
)


# Fixed addresses beyond these are counted, not listed, in the one-line source.
_SHOWN_ADDRESSES = 3
# The longest one-line source: a cluster, a namespace and a name (253 + 63 + 63 + 2).
MAX_SHOWN_SOURCE = 381


class Source(_Spec):
    """Where the shared service's addresses come from; exactly one way must be chosen."""

    model_config = ConfigDict(
        json_schema_extra=_k8s(
            cel_rule(
                "[has(self.remoteService), has(self.hostname), has(self.addresses)]"
                ".exists_one(x, x)",
                ONE_SOURCE_MESSAGE,
            )
        )
    )

    remote_service: RemoteServiceRef | None = Field(
        default=None,
        description=(
            "A LoadBalancer Service on a RemoteCluster; its status.loadBalancer.ingress "
            "addresses are watched and kept in sync."
        ),
    )
    hostname: Hostname | None = Field(
        default=None,
        description="A DNS name, resolved and re-resolved when the answer's TTL runs out.",
    )
    addresses: Addresses | None = Field(
        default=None,
        description=(
            "Fixed IPv4 or IPv6 addresses (1 to 64). Loopback, link-local, multicast, "
            "unspecified and broadcast addresses cannot be endpoints and are refused, and so "
            "are IPv6 forms of IPv4 addresses (IPv4-compatible, IPv4-translated, 6to4, Teredo) "
            "and NAT64 addresses of IPv4 addresses that cannot be endpoints."
        ),
    )

    @pydantic.model_validator(mode="after")
    def _exactly_one(self) -> Self:
        chosen = [wire for field, wire in _SOURCE_FIELDS if getattr(self, field) is not None]
        if len(chosen) != 1:
            found = ", ".join(chosen) if chosen else "none"
            raise _fail(f"{ONE_SOURCE_MESSAGE} (found: {found})")
        return self

    @property
    def kind(self) -> SourceKind:
        """Which of the three sources is set; handy for labels, metrics and dispatch."""
        for field, wire in _SOURCE_FIELDS:
            if getattr(self, field) is not None:
                return wire
        # The model validator guarantees one source; a model built with model_construct()
        # that skips it is a programming error.
        raise AssertionError("source has no kind")

    def display(self) -> str:
        """The source in one short line, as ``kubectl get ssi`` prints it.

        The printer column reads it from the status, because a column takes one JSONPath
        and a path into the spec would print the chosen source as JSON.
        """
        if self.remote_service is not None:
            ref = self.remote_service
            return f"{ref.cluster}/{ref.namespace}/{ref.name}"
        if self.hostname is not None:
            return f"dns:{self.hostname}"
        shown = self.canonical_addresses
        text = ",".join(shown[:_SHOWN_ADDRESSES])
        more = len(shown) - _SHOWN_ADDRESSES
        return f"{text} +{more} more" if more > 0 else text

    @property
    def canonical_addresses(self) -> tuple[str, ...]:
        """The fixed addresses in canonical form, first spelling first; empty for others."""
        seen: dict[str, None] = {}
        for text in self.addresses or ():
            seen.setdefault(canonical_address(text), None)
        return tuple(seen)


class ImportPort(_Spec):
    """One port of the local Service and where it leads on the remote address."""

    name: PortName | None = Field(
        default=None,
        description="Port name; required when there is more than one port.",
    )
    port: PortNumber = Field(description="Port of the local Service.")
    target_port: PortNumber | None = Field(
        default=None,
        description="Port on the remote address; defaults to port.",
    )
    protocol: Protocol = Field(default="TCP", description="TCP, UDP or SCTP.")

    @property
    def effective_target_port(self) -> int:
        """The port on the remote address, with the documented default applied."""
        return self.port if self.target_port is None else self.target_port


NAMES_REQUIRED_MESSAGE = "every port needs a name when there is more than one port"
UNIQUE_NAMES_MESSAGE = "port names must be unique"
UNIQUE_PORTS_MESSAGE = "each port and protocol pair may appear only once"
PORTS_REQUIRED_MESSAGE = (
    "ports are required unless the source is remoteService, whose Service's ports are used"
)


def _check_ports(ports: tuple[ImportPort, ...]) -> tuple[ImportPort, ...]:
    if len(ports) > 1:
        for index, port in enumerate(ports):
            if port.name is None:
                raise _fail(
                    f"{NAMES_REQUIRED_MESSAGE}; ports[{index}] "
                    f"({port.port}/{port.protocol}) has none"
                )
    names = Counter(port.name for port in ports if port.name is not None)
    for name, count in names.items():
        if count > 1:
            raise _fail(f"{UNIQUE_NAMES_MESSAGE}; {name!r} is used {count} times")
    pairs = Counter((port.port, port.protocol) for port in ports)
    for (number, protocol), count in pairs.items():
        if count > 1:
            raise _fail(f"{UNIQUE_PORTS_MESSAGE}; {number}/{protocol} is listed {count} times")
    return ports


Ports = Annotated[
    tuple[ImportPort, ...],
    Field(
        min_length=1,
        max_length=MAX_PORTS,
        json_schema_extra=_k8s(
            cel_rule("self.size() <= 1 || self.all(p, has(p.name))", NAMES_REQUIRED_MESSAGE),
            cel_rule(
                "self.all(p, !has(p.name) || self.exists_one(q, has(q.name) && q.name == p.name))",
                UNIQUE_NAMES_MESSAGE,
            ),
            # A map keyed like Service.spec.ports: the API server then rejects a repeated
            # (port, protocol) itself, and server-side apply merges ports one by one, so a
            # GitOps tool and a person editing different ports do not overwrite each other.
            list_type="map",
            map_keys=("port", "protocol"),
        ),
    ),
    AfterValidator(_check_ports),
]


class ImportSpec(_Spec):
    """What to import and under which local Service, so applications keep their DNS name."""

    model_config = ConfigDict(
        json_schema_extra=_k8s(
            cel_rule(
                "!has(self.source) || has(self.source.remoteService) || has(self.ports)",
                PORTS_REQUIRED_MESSAGE,
                field_path=".ports",
                reason="FieldValueRequired",
            )
        )
    )

    source: Source = Field(description="Exactly one of remoteService, hostname or addresses.")
    service_name: DNS1035Label | None = Field(
        default=None,
        description="Name of the local Service; defaults to the import's metadata.name.",
    )
    ports: Ports | None = Field(
        default=None,
        validate_default=True,
        description=(
            "Ports of the local Service (at most 100). Required unless the source is "
            "remoteService, whose Service's ports are used when this is left out."
        ),
    )

    @pydantic.field_validator("ports", mode="after")
    @classmethod
    def _ports_required(
        cls, ports: tuple[ImportPort, ...] | None, info: ValidationInfo
    ) -> tuple[ImportPort, ...] | None:
        source = info.data.get("source")
        # Without a valid source the source's own error is the one worth reading.
        if ports is None and isinstance(source, Source) and source.remote_service is None:
            raise _fail(PORTS_REQUIRED_MESSAGE)
        return ports

    def effective_service_name(self, import_name: str) -> str:
        """Name of the local Service: serviceName, or else the import's own name."""
        return import_name if self.service_name is None else self.service_name


class ResolvedPort(_Status):
    """A port as the operator applied it, with every default filled in."""

    name: PortName | None = None
    port: PortNumber
    target_port: PortNumber
    protocol: Protocol


def _check_rfc3339(value: str) -> str:
    if _RFC3339.match(value) is None:
        raise _fail("must be an RFC 3339 timestamp such as 2024-05-01T12:00:00Z")
    try:
        datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError as error:
        raise _fail(f"is not a real date and time: {error}") from error
    return value


Timestamp = Annotated[
    str,
    Strict(),
    Field(max_length=64, json_schema_extra={"format": "date-time"}),
    AfterValidator(_check_rfc3339),
]


def rfc3339(moment: datetime.datetime) -> str:
    """Format a timestamp the way Kubernetes writes metav1.Time: UTC, whole seconds, "Z"."""
    if moment.tzinfo is None:
        raise ValueError("a timestamp needs a time zone; pass an aware datetime")
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Condition(_Status):
    """One observation about the object, shaped like metav1.Condition so tools understand it."""

    type: Annotated[str, Strict(), Field(max_length=316, pattern=CONDITION_TYPE_PATTERN)]
    status: ConditionStatus
    reason: Annotated[
        str, Strict(), Field(min_length=1, max_length=1024, pattern=CONDITION_REASON_PATTERN)
    ]
    message: Annotated[str, Strict(), Field(max_length=32768)]
    last_transition_time: Timestamp
    observed_generation: Generation | None = None


def _unique_condition_types(conditions: tuple[Condition, ...]) -> tuple[Condition, ...]:
    counts = Counter(condition.type for condition in conditions)
    repeated = [kind for kind, count in counts.items() if count > 1]
    if repeated:
        raise _fail(f"condition types must be unique; {repeated[0]!r} appears twice")
    return conditions


Conditions = Annotated[
    tuple[Condition, ...],
    Field(
        max_length=MAX_CONDITIONS,
        json_schema_extra=_k8s(list_type="map", map_keys=("type",)),
    ),
    AfterValidator(_unique_condition_types),
]


def _check_ports_unique(ports: tuple[ResolvedPort, ...]) -> tuple[ResolvedPort, ...]:
    pairs = Counter((port.port, port.protocol) for port in ports)
    for (number, protocol), count in pairs.items():
        if count > 1:
            raise _fail(f"{UNIQUE_PORTS_MESSAGE}; {number}/{protocol} is listed {count} times")
    return ports


class ImportStatus(_Status):
    """What the operator last applied for an import, and whether it is healthy."""

    observed_generation: Generation | None = Field(
        default=None, description="The spec generation this status describes."
    )
    source: Annotated[str, Strict(), Field(max_length=MAX_SHOWN_SOURCE)] | None = Field(
        default=None,
        description=(
            "The source in one line, for kubectl: cluster/namespace/name, dns:hostname or "
            "the fixed addresses."
        ),
    )
    service_name: DNS1035Label | None = Field(
        default=None, description="The local Service the import keeps pointed at the source."
    )
    addresses: (
        Annotated[
            tuple[Annotated[str, Strict(), Field(max_length=MAX_IP_LENGTH)], ...],
            Field(max_length=MAX_STATUS_ADDRESSES, json_schema_extra=_k8s(list_type="set")),
            _unique(what="address"),
        ]
        | None
    ) = Field(default=None, description="Addresses currently written to the endpoints.")
    ports: (
        Annotated[
            tuple[ResolvedPort, ...],
            Field(
                max_length=MAX_PORTS,
                json_schema_extra=_k8s(list_type="map", map_keys=("port", "protocol")),
            ),
            AfterValidator(_check_ports_unique),
        ]
        | None
    ) = Field(default=None, description="Ports of the local Service, defaults applied.")
    last_change_time: Timestamp | None = Field(
        default=None, description="When the addresses last changed."
    )
    conditions: Conditions | None = Field(
        default=None, description="Ready, SourceResolved and other observations."
    )


# --- RemoteCluster -------------------------------------------------------------------------


class SecretKeyRef(_Spec):
    """A key of a Secret in the operator's own namespace; Secrets elsewhere are never read."""

    name: DNS1123Subdomain = Field(description="Name of the Secret.")
    key: Annotated[
        str,
        Strict(),
        Field(min_length=1, max_length=253, pattern=DATA_KEY_PATTERN),
        _explained("must be a Secret data key: at most 253 letters, digits, '-', '_' or '.'"),
    ] = Field(default="kubeconfig", description="Key holding the kubeconfig.")


class SecretRef(_Spec):
    """A Secret in the operator's own namespace, read by its well-known keys."""

    name: DNS1123Subdomain = Field(description="Name of the Secret.")


# Where vSphere with Tanzu's sign-in endpoint is: a URL without userinfo, query or fragment,
# so that it carries no credential of its own.
SIGN_IN_URL_PATTERN = r"^https://[^\s/?#@]+(/[^\s?#@]*)?$"
SIGN_IN_PATH = "/wcp/login"


class VsphereSignIn(_Spec):
    """Sign in to a vSphere Supervisor as a vCenter SSO user, as ``kubectl vsphere login`` does.

    The operator posts the user's name and password to the sign-in endpoint, uses the
    session token it gets for every request to the Supervisor, and signs in again before
    the token expires. The kubeconfig still says where the Supervisor's API server is and
    which CA to trust; its user, if it has one, is not used.
    """

    credentials_secret_ref: SecretRef = Field(
        description="Secret of type kubernetes.io/basic-auth in the operator's namespace, "
        "with the SSO user's name under 'username' and password under 'password'."
    )
    url: (
        Annotated[
            str,
            Strict(),
            Field(max_length=2048, pattern=SIGN_IN_URL_PATTERN),
            _explained("must be an https URL without user name, query or fragment"),
        ]
        | None
    ) = Field(
        default=None,
        description="The sign-in endpoint; absent means https://<the kubeconfig server's "
        "host>/wcp/login (port 443), where vSphere serves it.",
    )


Namespaces = Annotated[
    tuple[DNS1123Label, ...],
    Field(max_length=MAX_NAMESPACES, json_schema_extra=_k8s(list_type="set")),
    _unique(what="namespace"),
]


class RemoteClusterSpec(_Spec):
    """How to reach one central cluster, and which namespaces may use it on either side."""

    kubeconfig_secret_ref: SecretKeyRef = Field(
        description="Secret with the kubeconfig, in the operator's namespace. With "
        "vsphereSignIn, only its server and CA are used."
    )
    vsphere_sign_in: VsphereSignIn | None = Field(
        default=None,
        description="Sign in as a vCenter SSO user instead of using the kubeconfig's user.",
    )
    context: Annotated[str, Strict(), Field(max_length=253)] | None = Field(
        default=None,
        description="Kubeconfig context to use; empty or absent means the current context.",
    )
    allowed_namespaces: Namespaces = Field(
        default=(),
        description="Local namespaces whose imports may use this cluster; empty means all.",
    )
    allowed_remote_namespaces: Namespaces = Field(
        default=(),
        description="Remote namespaces that may be imported from; empty means all.",
    )
    require_export: Annotated[bool, Strict()] = Field(
        default=False,
        description="Import only the Services their owners exported, by labelling them "
        f'{EXPORT_LABEL}: "true"; no other Service is read from the central cluster. '
        "A Service no longer labelled stops being served.",
    )

    def allows_namespace(self, namespace: str) -> bool:
        """Whether an import in this local namespace may read from this cluster."""
        return not self.allowed_namespaces or namespace in self.allowed_namespaces

    def allows_remote_namespace(self, namespace: str) -> bool:
        """Whether a Service in this remote namespace may be imported."""
        return not self.allowed_remote_namespaces or namespace in self.allowed_remote_namespaces


class RemoteClusterStatus(_Status):
    """Whether the central cluster answered, and what it runs."""

    conditions: Conditions | None = Field(
        default=None, description="Connected and other observations."
    )
    server_version: Annotated[str, Strict(), Field(max_length=256)] | None = Field(
        default=None, description="The central cluster's Kubernetes version."
    )
    last_contact_time: Timestamp | None = Field(
        default=None, description="When the central cluster last answered."
    )


# --- turning errors into one line a person can act on ---------------------------------------

_MESSAGE_TEMPLATES: Mapping[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "bool_type": "must be true or false",
    "literal_error": "must be one of {expected}",
    "too_short": "must have at least {min_length} items",
    "too_long": "must have at most {max_length} items",
    "string_too_long": "must be at most {max_length} characters long",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "must match the pattern {pattern}",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
}


def _field_path(root: str, location: Iterable[int | str]) -> str:
    path = root
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else part
    return path or "(root)"


def _describe(error: ErrorDetails) -> str:
    kind = error["type"]
    context: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "too_short" and context.get("min_length") == 1:
        return "must have at least 1 item"
    template = _MESSAGE_TEMPLATES.get(kind)
    if template is None:
        return error["msg"]
    try:
        return template.format_map(context)
    except (KeyError, IndexError, ValueError):
        # A pydantic release that renames a context key must not turn a refusal into a crash.
        return error["msg"]


def explain_validation_error(
    error: pydantic.ValidationError, *, root: str = "spec", limit: int = 3
) -> str:
    """Turn a ValidationError into one short line, like "spec.ports[1].port: must be ...".

    The line goes into a status condition and an Event, so it names each field by its path
    in the YAML the user wrote and says what is allowed. Only the first few problems are
    listed; fixing them and applying again shows the rest.
    """
    errors = error.errors(include_url=False)
    # pydantic reports a list whose items failed as "too short, 0 items after validation" on
    # top of the items' own errors; the item errors are the ones that help.
    item_failures = {tuple(item["loc"][:-1]) for item in errors if item["loc"]}
    lines: list[str] = []
    for item in errors:
        location = tuple(item["loc"])
        if item["type"] in {"too_short", "too_long"} and any(
            failed[: len(location)] == location and len(failed) >= len(location)
            for failed in item_failures
        ):
            continue
        line = f"{_field_path(root, location)}: {_describe(item)}"
        if line not in lines:
            lines.append(line)
    shown = "; ".join(lines[:limit])
    hidden = len(lines) - limit
    return f"{shown} (and {hidden} more)" if hidden > 0 else shown


def parse_import_spec(raw: object, *, import_name: str) -> ImportSpec:
    """Validate a SharedServiceImport's spec, or raise InvalidSpecError with a readable line.

    Besides the spec itself this checks the one rule the CRD cannot: with no serviceName the
    import's own name becomes the Service's name, so it must be a valid Service name. (A CEL
    rule on metadata.name is too costly for the API server to accept, since it does not bound
    the name's length for the cost estimate.)
    """
    try:
        spec = ImportSpec.model_validate(raw)
    except pydantic.ValidationError as error:
        raise InvalidSpecError(explain_validation_error(error, root="spec")) from error
    if spec.service_name is None and not (
        len(import_name) <= 63 and re.match(DNS1035_LABEL_PATTERN, import_name)
    ):
        raise InvalidSpecError(
            f"metadata.name: {import_name!r} cannot be a Service name (it must be a DNS-1035 "
            "label: at most 63 lowercase letters, digits or '-', starting with a letter); "
            "set spec.serviceName"
        )
    return spec


def parse_remote_cluster_spec(raw: object) -> RemoteClusterSpec:
    """Validate a RemoteCluster's spec, or raise InvalidSpecError with a readable line."""
    try:
        return RemoteClusterSpec.model_validate(raw)
    except pydantic.ValidationError as error:
        raise InvalidSpecError(explain_validation_error(error, root="spec")) from error


# --- SharedServiceCatalog -------------------------------------------------------------------

CATALOG_KIND = "SharedServiceCatalog"
CATALOG_PLURAL = "sharedservicecatalogs"
CATALOG_SINGULAR = "sharedservicecatalog"
# The label a catalog puts on each import it made, naming the catalog.
CATALOG_LABEL = "sharedservices.io/catalog"
# Label keys and values as Kubernetes takes them: an optional DNS subdomain prefix and "/",
# then a name of at most 63 characters; a value of at most 63, possibly empty.
LABEL_NAME_PATTERN = r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
MAX_SELECTOR_TERMS = 16
MAX_CATALOG_NAMES = 256
# Entries listed in a catalog's status; beyond them, only the counts.
MAX_CATALOG_ENTRIES = 256
CATALOG_PREFIX_PATTERN = r"^[a-z]([-a-z0-9]*)?$"


def _label_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not re.match(DNS1123_SUBDOMAIN_PATTERN, prefix)):
        return f"label key {key!r}: its prefix must be a DNS-1123 subdomain"
    if not name or len(name) > 63 or not re.match(LABEL_NAME_PATTERN, name):
        return (
            f"label key {key!r}: its name must be at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def _check_label_keys(labels: Mapping[str, str]) -> Mapping[str, str]:
    for key in labels:
        problem = _label_key_problem(key)
        if problem is not None:
            raise _fail(problem)
    return labels


LabelValue = Annotated[
    str,
    Strict(),
    Field(max_length=63, pattern=LABEL_VALUE_PATTERN),
    _explained(
        "must be a label value: at most 63 letters, digits, '-', '_' or '.', starting and "
        "ending with a letter or digit, or empty"
    ),
]
LabelKey = Annotated[str, Strict(), Field(min_length=1, max_length=317)]


class SelectorRequirement(_Spec):
    """One term of a label selector, as Deployments and NetworkPolicies write them."""

    model_config = ConfigDict(
        json_schema_extra=_k8s(
            cel_rule(
                "self.operator in ['In', 'NotIn'] ? size(self.values) > 0 : size(self.values) == 0",
                "In and NotIn need values; Exists and DoesNotExist take none",
            )
        )
    )

    key: LabelKey = Field(description="The label key the term is about.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the label's value relates to values."
    )
    values: Annotated[tuple[LabelValue, ...], Field(max_length=64)] = Field(
        default=(), description="The values, for In and NotIn."
    )

    @pydantic.model_validator(mode="after")
    def _values_fit_operator(self) -> Self:
        problem = _label_key_problem(self.key)
        if problem is not None:
            raise _fail(problem)
        if (self.operator in ("In", "NotIn")) != bool(self.values):
            raise _fail("In and NotIn need values; Exists and DoesNotExist take none")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether labels satisfy this term."""
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        inside = labels.get(self.key) in self.values
        return inside if self.operator == "In" else not inside


class LabelSelector(_Spec):
    """Which remote Services: all terms must hold; an empty selector selects every one."""

    match_labels: (
        Annotated[
            dict[LabelKey, LabelValue],
            Field(max_length=MAX_SELECTOR_TERMS),
            AfterValidator(_check_label_keys),
        ]
        | None
    ) = Field(default=None, description="Labels a Service must carry, with these values.")
    match_expressions: Annotated[
        tuple[SelectorRequirement, ...], Field(max_length=MAX_SELECTOR_TERMS)
    ] = Field(default=(), description="Terms a Service's labels must satisfy.")

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a Service with these labels is selected."""
        wanted = self.match_labels or {}
        return all(labels.get(k) == v for k, v in wanted.items()) and all(
            term.matches(labels) for term in self.match_expressions
        )


def _unique_local_names(names: Mapping[str, str]) -> Mapping[str, str]:
    # The keys are checked here: a pattern on a map's keys is beyond a CRD's schema.
    for remote in names:
        if len(remote) > 63 or not re.match(DNS1035_LABEL_PATTERN, remote):
            raise _fail(f"{remote!r} is no Service name (a DNS-1035 label)")
    counts = Counter(names.values())
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise _fail(f"two remote Services cannot both be imported as {repeated[0]!r}")
    return names


class CatalogSpec(_Spec):
    """Which Services of one central namespace to import, and under which local names."""

    cluster: DNS1123Subdomain = Field(description="Name of the RemoteCluster to import from.")
    namespace: DNS1123Label = Field(
        description="The namespace on that cluster whose Services are imported."
    )
    selector: LabelSelector | None = Field(
        default=None,
        description="Only the Services whose labels match; absent means every LoadBalancer "
        "Service the RemoteCluster may import (with requireExport, every exported one).",
    )
    name_prefix: (
        Annotated[
            str,
            Strict(),
            Field(min_length=1, max_length=30, pattern=CATALOG_PREFIX_PATTERN),
            _explained(
                "must be at most 30 lowercase letters, digits or '-', starting with a letter"
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="Put before each remote Service's name to make its import's (and local "
        "Service's) name, where names would clash with the namespace's own.",
    )
    names: (
        Annotated[
            dict[str, DNS1035Label],
            Field(max_length=MAX_CATALOG_NAMES),
            AfterValidator(_unique_local_names),
        ]
        | None
    ) = Field(
        default=None,
        description="Local names by remote Service name; these win over namePrefix.",
    )

    def local_name(self, remote: str) -> str:
        """The import's (and its Service's) name for a remote Service."""
        if self.names and remote in self.names:
            return self.names[remote]
        return f"{self.name_prefix or ''}{remote}"

    def selects(self, labels: Mapping[str, str]) -> bool:
        """Whether a remote Service with these labels belongs to the catalog."""
        return self.selector is None or self.selector.matches(labels)


CatalogState = Literal["Imported", "Pending", "Conflict"]


class CatalogEntry(_Status):
    """One remote Service of the catalog, and what became of it here."""

    name: DNS1035Label = Field(description="The remote Service's name.")
    import_name: Annotated[str, Strict(), Field(max_length=253)] = Field(
        description="The SharedServiceImport made for it (or that would be, in a conflict)."
    )
    state: CatalogState = Field(
        description="Imported (ready), Pending (made, not ready yet) or Conflict (the "
        "name is taken by something the catalog did not make)."
    )


class CatalogStatus(_Status):
    """What the catalog imported, and whether all of it is ready."""

    observed_generation: Generation | None = Field(
        default=None, description="The spec generation this status describes."
    )
    source: Annotated[str, Strict(), Field(max_length=MAX_SHOWN_SOURCE)] | None = Field(
        default=None, description="cluster/namespace, for kubectl."
    )
    imported: Annotated[int, Strict(), Field(ge=0)] | None = Field(
        default=None, description="Services imported and ready."
    )
    pending: Annotated[int, Strict(), Field(ge=0)] | None = Field(
        default=None, description="Services whose imports are made but not ready yet."
    )
    conflicts: Annotated[int, Strict(), Field(ge=0)] | None = Field(
        default=None, description="Services not imported because their name is taken."
    )
    services: (
        Annotated[
            tuple[CatalogEntry, ...],
            Field(
                max_length=MAX_CATALOG_ENTRIES,
                json_schema_extra=_k8s(list_type="map", map_keys=("name",)),
            ),
        ]
        | None
    ) = Field(default=None, description="Each Service of the catalog and its state.")
    conditions: Conditions | None = Field(
        default=None, description="Ready: every selected Service imported and ready."
    )


def parse_catalog_spec(raw: object) -> CatalogSpec:
    """Validate a SharedServiceCatalog's spec, or raise InvalidSpecError with a readable line."""
    try:
        return CatalogSpec.model_validate(raw)
    except pydantic.ValidationError as error:
        raise InvalidSpecError(explain_validation_error(error, root="spec")) from error
