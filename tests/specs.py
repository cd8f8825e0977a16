"""Good and bad specs shared by the unit tests and the API-server integration tests.

The same table proves two things: pydantic accepts and refuses exactly these specs (unit
tests), and the generated CRD makes the API server do the same (integration tests). Each bad
spec carries a fragment of the field path that both the operator's readable message and the
API server's error must contain, so a rule enforced on one side only shows up as a failure.

Only specs whose rejection does not depend on request options are listed: an unknown field,
for example, is pruned or refused depending on the client's field validation setting, so it
is tested in the unit tests alone. Addresses come from documentation ranges (RFC 5737,
RFC 3849) unless the case is about a special range.
"""

from __future__ import annotations

from typing import Any, Final

Spec = dict[str, Any]

_PORT: Final[list[dict[str, Any]]] = [{"name": "postgres", "port": 5432}]


def _remote(**overrides: Any) -> Spec:
    reference = {"cluster": "supervisor", "namespace": "shared-db", "name": "db"}
    reference.update(overrides)
    return {"source": {"remoteService": reference}}


def _addresses(*addresses: str | None) -> Spec:
    return {"source": {"addresses": list(addresses)}, "ports": _PORT}


def _hostname(hostname: str) -> Spec:
    return {"source": {"hostname": hostname}, "ports": _PORT}


def _ports(*ports: dict[str, Any]) -> Spec:
    return {"source": {"addresses": ["192.0.2.10"]}, "ports": list(ports)}


GOOD_IMPORT_SPECS: Final[list[tuple[str, Spec]]] = [
    ("remote-service-default-ports", _remote()),
    ("remote-service-with-ports", {**_remote(), "ports": _PORT, "serviceName": "db"}),
    ("remote-service-dotted-cluster", _remote(cluster="supervisor.example")),
    ("hostname", _hostname("db.lb.example.internal")),
    ("hostname-fully-qualified", _hostname("db.lb.example.internal.")),
    ("hostname-single-label", _hostname("db")),
    ("address-v4", _addresses("192.0.2.10")),
    ("address-v4-private", _addresses("10.20.30.40")),
    ("address-v6", _addresses("2001:db8::10")),
    ("address-v6-uppercase", _addresses("2001:DB8::10")),
    ("addresses-dual-stack", _addresses("192.0.2.10", "198.51.100.7", "2001:db8::10")),
    ("addresses-64", _addresses(*(f"192.0.2.{i}" for i in range(1, 65)))),
    ("port-unnamed-single", _ports({"port": 80})),
    ("port-target-and-protocol", _ports({"port": 53, "targetPort": 5353, "protocol": "UDP"})),
    ("port-sctp", _ports({"port": 9899, "protocol": "SCTP"})),
    (
        "port-same-number-two-protocols",
        _ports({"name": "dns-tcp", "port": 53}, {"name": "dns", "port": 53, "protocol": "UDP"}),
    ),
    ("port-name-digits-then-letter", _ports({"name": "8080-x", "port": 8080})),
    ("port-name-15-chars", _ports({"name": "a" * 15, "port": 80})),
    ("ports-100", _ports(*({"name": f"p{i}", "port": 1000 + i} for i in range(100)))),
    ("port-extremes", _ports({"name": "low", "port": 1}, {"name": "high", "port": 65535})),
    ("address-v6-ipv4-tail", _addresses("2001:db8::192.0.2.10")),
    ("address-v6-leading-zero-groups", _addresses("2001:0db8::0010")),
    # NAT64 of an address that can be an endpoint: the address policy judges what it carries.
    ("address-nat64", _addresses("64:ff9b::192.0.2.10")),
    ("address-nat64-local-use", _addresses("64:ff9b:1::192.0.2.10")),
    # JSON has one number type: the API server stores 80.0 as the integer 80.
    ("port-integral-float", _ports({"port": 80.0, "targetPort": 8080.0})),
    # The API server prunes null from a field that is not nullable, then applies defaults.
    ("null-protocol-gets-default", _ports({"port": 80, "protocol": None})),
    (
        "null-optional-fields",
        {
            "source": {"hostname": "db.example.internal", "addresses": None},
            "ports": [{"name": None, "port": 80, "targetPort": None}],
            "serviceName": None,
        },
    ),
    ("null-ports-for-remote-service", {**_remote(), "ports": None}),
]

# (id, spec, fragment of the field path that the rejection must name)
BAD_IMPORT_SPECS: Final[list[tuple[str, Spec, str]]] = [
    # source: exactly one of three
    ("source-missing", {"ports": _PORT}, "spec.source"),
    ("source-empty", {"source": {}, "ports": _PORT}, "spec.source"),
    ("source-null", {"source": None, "ports": _PORT}, "spec.source"),
    (
        "source-two",
        {
            "source": {"hostname": "db.example.internal", "addresses": ["192.0.2.10"]},
            "ports": _PORT,
        },
        "spec.source",
    ),
    (
        "source-three",
        {
            "source": {
                "remoteService": {"cluster": "supervisor", "namespace": "shared-db", "name": "db"},
                "hostname": "db.example.internal",
                "addresses": ["192.0.2.10"],
            },
            "ports": _PORT,
        },
        "spec.source",
    ),
    # remoteService names
    ("remote-name-starts-with-digit", _remote(name="1db"), "spec.source.remoteService.name"),
    ("remote-name-uppercase", _remote(name="DB"), "spec.source.remoteService.name"),
    ("remote-name-too-long", _remote(name="d" * 64), "spec.source.remoteService.name"),
    (
        "remote-namespace-underscore",
        _remote(namespace="shared_db"),
        "spec.source.remoteService.namespace",
    ),
    ("remote-cluster-leading-dash", _remote(cluster="-sup"), "spec.source.remoteService.cluster"),
    (
        "remote-service-empty",
        {"source": {"remoteService": {}}, "ports": _PORT},
        "spec.source.remoteService.cluster",
    ),
    (
        "remote-name-missing",
        {"source": {"remoteService": {"cluster": "supervisor", "namespace": "shared-db"}}},
        "spec.source.remoteService.name",
    ),
    # hostname
    ("hostname-with-space", _hostname("db example.internal"), "spec.source.hostname"),
    ("hostname-uppercase", _hostname("DB.example.internal"), "spec.source.hostname"),
    ("hostname-empty-label", _hostname("db..example.internal"), "spec.source.hostname"),
    ("hostname-label-too-long", _hostname("a" * 64 + ".example"), "spec.source.hostname"),
    ("hostname-too-long", _hostname(".".join(["a" * 60] * 5)), "spec.source.hostname"),
    ("hostname-is-an-ip", _hostname("192.0.2.10"), "spec.source.hostname"),
    ("hostname-without-ports", {"source": {"hostname": "db.example.internal"}}, "spec.ports"),
    (
        "hostname-with-null-ports",
        {"source": {"hostname": "db.example.internal"}, "ports": None},
        "spec.ports",
    ),
    # addresses
    ("addresses-without-ports", {"source": {"addresses": ["192.0.2.10"]}}, "spec.ports"),
    ("addresses-empty", _addresses(), "spec.source.addresses"),
    (
        "addresses-65",
        _addresses(*(f"192.0.2.{i}" for i in range(1, 66))),
        "spec.source.addresses",
    ),
    ("addresses-duplicate", _addresses("192.0.2.10", "192.0.2.10"), "spec.source.addresses"),
    (
        "addresses-duplicate-other-spelling",
        _addresses("2001:db8::10", "2001:DB8:0:0::10"),
        "spec.source.addresses",
    ),
    (
        "addresses-duplicate-ipv4-tail",
        _addresses("2001:db8::c000:20a", "2001:db8::192.0.2.10"),
        "spec.source.addresses",
    ),
    (
        "addresses-not-a-list",
        {"source": {"addresses": "192.0.2.10"}, "ports": _PORT},
        "spec.source.addresses",
    ),
    ("address-not-ip", _addresses("192.0.2"), "spec.source.addresses[0]"),
    ("address-hostname", _addresses("db.example.internal"), "spec.source.addresses[0]"),
    ("address-v4-leading-zero", _addresses("192.0.2.010"), "spec.source.addresses[0]"),
    ("address-v6-invalid", _addresses("2001:db8::g"), "spec.source.addresses[0]"),
    ("address-v6-zone", _addresses("2001:db8::10%eth0"), "spec.source.addresses[0]"),
    ("address-v4-mapped-v6", _addresses("::ffff:192.0.2.10"), "spec.source.addresses[0]"),
    ("address-cidr", _addresses("192.0.2.0/24"), "spec.source.addresses[0]"),
    ("address-with-space", _addresses(" 192.0.2.10"), "spec.source.addresses[0]"),
    ("address-v6-five-hex-digits", _addresses("2001:db8::00010"), "spec.source.addresses[0]"),
    ("address-null", _addresses("192.0.2.10", None), "spec.source.addresses[1]"),
    ("address-v4-loopback", _addresses("192.0.2.10", "127.0.0.1"), "spec.source.addresses[1]"),
    ("address-v4-loopback-other", _addresses("127.1.2.3"), "spec.source.addresses[0]"),
    ("address-v6-loopback", _addresses("::1"), "spec.source.addresses[0]"),
    ("address-v4-link-local", _addresses("169.254.169.254"), "spec.source.addresses[0]"),
    ("address-v6-link-local", _addresses("fe80::1"), "spec.source.addresses[0]"),
    ("address-v6-link-local-uppercase", _addresses("FE80::1"), "spec.source.addresses[0]"),
    ("address-v4-link-local-multicast", _addresses("224.0.0.251"), "spec.source.addresses[0]"),
    ("address-v6-link-local-multicast", _addresses("ff02::fb"), "spec.source.addresses[0]"),
    # Go counts any ffX2::/16 as link-local multicast, whatever the flags X are.
    (
        "address-v6-link-local-multicast-transient",
        _addresses("ff12::1"),
        "spec.source.addresses[0]",
    ),
    ("address-v4-multicast", _addresses("239.1.2.3"), "spec.source.addresses[0]"),
    ("address-v6-multicast", _addresses("ff05::1:3"), "spec.source.addresses[0]"),
    ("address-v6-interface-local-multicast", _addresses("ff01::1"), "spec.source.addresses[0]"),
    ("address-v4-unspecified", _addresses("0.0.0.0"), "spec.source.addresses[0]"),
    ("address-v6-unspecified", _addresses("::"), "spec.source.addresses[0]"),
    ("address-v4-broadcast", _addresses("255.255.255.255"), "spec.source.addresses[0]"),
    # IPv6 forms of IPv4 addresses, and NAT64 of what cannot be an endpoint
    ("address-v6-ipv4-compatible", _addresses("::192.0.2.10"), "spec.source.addresses[0]"),
    (
        "address-v6-ipv4-translated",
        _addresses("192.0.2.10", "::ffff:0:192.0.2.10"),
        "spec.source.addresses[1]",
    ),
    ("address-v6-6to4", _addresses("2002:c000:20a::1"), "spec.source.addresses[0]"),
    ("address-v6-teredo", _addresses("2001:0:c000:20a::1"), "spec.source.addresses[0]"),
    ("address-nat64-unspecified", _addresses("64:ff9b::"), "spec.source.addresses[0]"),
    ("address-nat64-loopback", _addresses("64:ff9b::127.0.0.1"), "spec.source.addresses[0]"),
    (
        "address-nat64-link-local",
        _addresses("64:ff9b::169.254.169.254"),
        "spec.source.addresses[0]",
    ),
    ("address-nat64-multicast", _addresses("64:ff9b::e000:fb"), "spec.source.addresses[0]"),
    # serviceName
    ("service-name-dotted", {**_remote(), "serviceName": "my.db"}, "spec.serviceName"),
    ("service-name-digit-first", {**_remote(), "serviceName": "1db"}, "spec.serviceName"),
    ("service-name-too-long", {**_remote(), "serviceName": "s" * 64}, "spec.serviceName"),
    ("service-name-empty", {**_remote(), "serviceName": ""}, "spec.serviceName"),
    # ports
    ("port-zero", _ports({"port": 0}), "spec.ports[0].port"),
    ("port-65536", _ports({"port": 65536}), "spec.ports[0].port"),
    ("port-negative", _ports({"port": -80}), "spec.ports[0].port"),
    ("port-string", _ports({"port": "80"}), "spec.ports[0].port"),
    ("port-fraction", _ports({"port": 80.5}), "spec.ports[0].port"),
    ("port-boolean", _ports({"port": True}), "spec.ports[0].port"),
    ("port-missing", _ports({"name": "web"}), "spec.ports[0].port"),
    ("port-null", _ports({"name": "web", "port": None}), "spec.ports[0].port"),
    ("target-port-zero", _ports({"port": 80, "targetPort": 0}), "spec.ports[0].targetPort"),
    (
        "target-port-65536",
        _ports({"port": 80, "targetPort": 65536}),
        "spec.ports[0].targetPort",
    ),
    ("protocol-http", _ports({"port": 80, "protocol": "HTTP"}), "spec.ports[0].protocol"),
    ("protocol-lowercase", _ports({"port": 80, "protocol": "tcp"}), "spec.ports[0].protocol"),
    ("port-name-underscore", _ports({"name": "http_alt", "port": 80}), "spec.ports[0].name"),
    ("port-name-no-letter", _ports({"name": "8080", "port": 80}), "spec.ports[0].name"),
    ("port-name-double-dash", _ports({"name": "web--x", "port": 80}), "spec.ports[0].name"),
    ("port-name-leading-dash", _ports({"name": "-web", "port": 80}), "spec.ports[0].name"),
    ("port-name-trailing-dash", _ports({"name": "web-", "port": 80}), "spec.ports[0].name"),
    ("port-name-uppercase", _ports({"name": "Web", "port": 80}), "spec.ports[0].name"),
    ("port-name-16-chars", _ports({"name": "a" * 16, "port": 80}), "spec.ports[0].name"),
    ("port-name-empty", _ports({"name": "", "port": 80}), "spec.ports[0].name"),
    ("port-name-not-ascii", _ports({"name": "wéb", "port": 80}), "spec.ports[0].name"),
    ("ports-empty", {**_remote(), "ports": []}, "spec.ports"),
    (
        "ports-101",
        _ports(*({"name": f"p{i}", "port": 1000 + i} for i in range(101))),
        "spec.ports",
    ),
    ("ports-multiple-unnamed", _ports({"port": 80}, {"port": 443}), "spec.ports"),
    (
        "ports-one-of-two-unnamed",
        _ports({"name": "http", "port": 80}, {"port": 443}),
        "spec.ports",
    ),
    (
        "ports-duplicate-name",
        _ports({"name": "web", "port": 80}, {"name": "web", "port": 443}),
        "spec.ports",
    ),
    (
        "ports-duplicate-port-protocol",
        _ports({"name": "a", "port": 80}, {"name": "b", "port": 80, "protocol": "TCP"}),
        "spec.ports",
    ),
    (
        "ports-two-null-names",
        _ports({"name": None, "port": 80}, {"name": None, "port": 443}),
        "spec.ports",
    ),
    (
        "ports-duplicate-port-default-protocol",
        _ports({"name": "a", "port": 80, "protocol": "TCP"}, {"name": "b", "port": 80}),
        "spec.ports",
    ),
]

# Specs valid for the CRD that the operator still refuses, because the rule reads more than
# the spec: with no serviceName the import's own name becomes the Service's name, and a CEL
# rule on metadata.name costs more than the API server allows. The API server accepts these;
# the operator reports them in a condition.
# (id, import name, spec, start of the operator's message)
PYTHON_ONLY_IMPORTS: Final[list[tuple[str, str, Spec, str]]] = [
    ("import-name-dotted", "db.v2", _addresses("192.0.2.10"), "metadata.name"),
    ("import-name-digit-first", "1db", _addresses("192.0.2.10"), "metadata.name"),
    ("import-name-64-chars", "d" * 64, _remote(), "metadata.name"),
]

_SECRET: Final[dict[str, Any]] = {"kubeconfigSecretRef": {"name": "supervisor-kubeconfig"}}

GOOD_REMOTE_CLUSTER_SPECS: Final[list[tuple[str, Spec]]] = [
    ("minimal", _SECRET),
    (
        "everything",
        {
            "kubeconfigSecretRef": {"name": "supervisor-kubeconfig", "key": "config.yaml"},
            "context": "supervisor-admin@supervisor",
            "allowedNamespaces": ["web", "shop"],
            "allowedRemoteNamespaces": ["shared-db"],
        },
    ),
    ("empty-context", {**_SECRET, "context": ""}),
    ("namespaces-256", {**_SECRET, "allowedNamespaces": [f"ns-{i}" for i in range(256)]}),
    ("namespaces-empty", {**_SECRET, "allowedNamespaces": [], "allowedRemoteNamespaces": []}),
    # Kubernetes counts characters, not bytes, against maxLength.
    ("context-253-non-ascii", {**_SECRET, "context": "é" * 253}),
    ("secret-key-dots", {"kubeconfigSecretRef": {"name": "s", "key": "..kubeconfig"}}),
    # The API server prunes null from a field that is not nullable, then applies defaults.
    (
        "nulls-get-defaults",
        {
            "kubeconfigSecretRef": {"name": "supervisor-kubeconfig", "key": None},
            "context": None,
            "allowedNamespaces": None,
            "allowedRemoteNamespaces": None,
        },
    ),
]

BAD_REMOTE_CLUSTER_SPECS: Final[list[tuple[str, Spec, str]]] = [
    ("secret-missing", {}, "spec.kubeconfigSecretRef"),
    ("secret-name-missing", {"kubeconfigSecretRef": {}}, "spec.kubeconfigSecretRef.name"),
    (
        "secret-name-null",
        {"kubeconfigSecretRef": {"name": None}},
        "spec.kubeconfigSecretRef.name",
    ),
    (
        "secret-name-too-long",
        {"kubeconfigSecretRef": {"name": "s" * 254}},
        "spec.kubeconfigSecretRef.name",
    ),
    (
        "secret-name-invalid",
        {"kubeconfigSecretRef": {"name": "Supervisor_Kubeconfig"}},
        "spec.kubeconfigSecretRef.name",
    ),
    (
        "secret-key-with-space",
        {"kubeconfigSecretRef": {"name": "s", "key": "kube config"}},
        "spec.kubeconfigSecretRef.key",
    ),
    (
        "secret-key-with-slash",
        {"kubeconfigSecretRef": {"name": "s", "key": "a/b"}},
        "spec.kubeconfigSecretRef.key",
    ),
    (
        "secret-key-empty",
        {"kubeconfigSecretRef": {"name": "s", "key": ""}},
        "spec.kubeconfigSecretRef.key",
    ),
    ("context-too-long", {**_SECRET, "context": "c" * 254}, "spec.context"),
    ("context-254-non-ascii", {**_SECRET, "context": "é" * 254}, "spec.context"),
    (
        "namespace-null",
        {**_SECRET, "allowedNamespaces": ["web", None]},
        "spec.allowedNamespaces[1]",
    ),
    ("namespace-invalid", {**_SECRET, "allowedNamespaces": ["Web"]}, "spec.allowedNamespaces[0]"),
    (
        "namespace-duplicate",
        {**_SECRET, "allowedNamespaces": ["web", "web"]},
        "spec.allowedNamespaces",
    ),
    (
        "namespaces-257",
        {**_SECRET, "allowedNamespaces": [f"ns-{i}" for i in range(257)]},
        "spec.allowedNamespaces",
    ),
    (
        "remote-namespace-too-long",
        {**_SECRET, "allowedRemoteNamespaces": ["n" * 64]},
        "spec.allowedRemoteNamespaces[0]",
    ),
]
