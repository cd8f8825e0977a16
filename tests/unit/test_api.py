"""Pins what the models accept and refuse, and that every refusal names the field.

The operator puts ``explain_validation_error``'s line into a status condition, so each bad
spec must produce a short message that starts at the offending field's YAML path. The
bad-spec table lives in ``tests/specs.py`` so the API-server tests can prove the generated
CRD refuses the very same specs.
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import re
from typing import Any

import pydantic
import pytest

from shared_services import api, builders, dns
from specs import (
    BAD_IMPORT_SPECS,
    BAD_REMOTE_CLUSTER_SPECS,
    GOOD_IMPORT_SPECS,
    GOOD_REMOTE_CLUSTER_SPECS,
)


def _refusal(model: type[pydantic.BaseModel], spec: dict[str, Any]) -> str:
    with pytest.raises(pydantic.ValidationError) as caught:
        model.model_validate(spec)
    return api.explain_validation_error(caught.value)


# --- the shared tables -------------------------------------------------------------------


def test_tables_cover_enough_cases() -> None:
    assert len(BAD_IMPORT_SPECS) >= 25
    ids = [case[0] for case in (*BAD_IMPORT_SPECS, *GOOD_IMPORT_SPECS)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(("case", "spec"), GOOD_IMPORT_SPECS, ids=[c[0] for c in GOOD_IMPORT_SPECS])
def test_good_import_specs_are_accepted(case: str, spec: dict[str, Any]) -> None:
    parsed = api.parse_import_spec(spec, import_name="db")
    assert parsed.source.kind in {"remoteService", "hostname", "addresses"}


@pytest.mark.parametrize(
    ("case", "spec", "field"), BAD_IMPORT_SPECS, ids=[c[0] for c in BAD_IMPORT_SPECS]
)
def test_bad_import_specs_are_refused_naming_the_field(
    case: str, spec: dict[str, Any], field: str
) -> None:
    message = _refusal(api.ImportSpec, spec)
    assert field in message
    assert message.startswith("spec")
    assert len(message) < 1024
    with pytest.raises(api.InvalidSpecError) as caught:
        api.parse_import_spec(spec, import_name="db")
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("case", "spec"), GOOD_REMOTE_CLUSTER_SPECS, ids=[c[0] for c in GOOD_REMOTE_CLUSTER_SPECS]
)
def test_good_remote_cluster_specs_are_accepted(case: str, spec: dict[str, Any]) -> None:
    parsed = api.parse_remote_cluster_spec(spec)
    assert parsed.kubeconfig_secret_ref.name == spec["kubeconfigSecretRef"]["name"]


@pytest.mark.parametrize(
    ("case", "spec", "field"),
    BAD_REMOTE_CLUSTER_SPECS,
    ids=[c[0] for c in BAD_REMOTE_CLUSTER_SPECS],
)
def test_bad_remote_cluster_specs_are_refused_naming_the_field(
    case: str, spec: dict[str, Any], field: str
) -> None:
    message = _refusal(api.RemoteClusterSpec, spec)
    assert field in message
    with pytest.raises(api.InvalidSpecError, match=re.escape(field)):
        api.parse_remote_cluster_spec(spec)


# --- the messages themselves ----------------------------------------------------------------

_ADDRESS = {"addresses": ["192.0.2.10"]}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"source": _ADDRESS, "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 0}]},
            "spec.ports[1].port: must be an integer between 1 and 65535",
        ),
        (
            {"source": _ADDRESS, "ports": [{"port": 80, "protocol": "HTTP"}]},
            "spec.ports[0].protocol: must be one of 'TCP', 'UDP' or 'SCTP'",
        ),
        (
            {"source": _ADDRESS, "ports": [{"port": 80}], "colour": "red"},
            "spec.colour: is not a known field",
        ),
        (
            {"source": _ADDRESS, "ports": [{"port": 80, "targetport": 8080}]},
            "spec.ports[0].targetport: is not a known field",
        ),
        (
            {"source": {"hostname": "db.example.internal"}},
            f"spec.ports: {api.PORTS_REQUIRED_MESSAGE}",
        ),
        (
            {"source": {"addresses": ["192.0.2.10", "::1"]}, "ports": [{"port": 80}]},
            f"spec.source.addresses[1]: {api.LOOPBACK_MESSAGE}",
        ),
        (
            {"source": {}, "ports": [{"port": 80}]},
            f"spec.source: {api.ONE_SOURCE_MESSAGE} (found: none)",
        ),
        (
            {"source": {"addresses": ["192.0.2.10"], "hostname": "db"}, "ports": [{"port": 80}]},
            f"spec.source: {api.ONE_SOURCE_MESSAGE} (found: hostname, addresses)",
        ),
        (
            {"source": _ADDRESS, "ports": [{"port": 80}, {"port": 81}]},
            f"spec.ports: {api.NAMES_REQUIRED_MESSAGE}; ports[0] (80/TCP) has none",
        ),
        (
            {"source": {"addresses": ["2001:db8::10", "2001:DB8::10"]}, "ports": [{"port": 80}]},
            f"spec.source.addresses: {api.DUPLICATE_ADDRESS_MESSAGE}; 2001:db8::10 is listed twice",
        ),
        (
            {"source": {"remoteService": {"cluster": "c", "namespace": "n"}}},
            "spec.source.remoteService.name: is required",
        ),
        (
            {"source": {"addresses": "192.0.2.10"}, "ports": [{"port": 80}]},
            "spec.source.addresses: must be a list",
        ),
        (
            {"source": "192.0.2.10", "ports": [{"port": 80}]},
            "spec.source: must be an object",
        ),
    ],
)
def test_message_is_exact(spec: dict[str, Any], expected: str) -> None:
    assert _refusal(api.ImportSpec, spec) == expected


def test_item_errors_are_not_buried_under_a_list_length_complaint() -> None:
    message = _refusal(
        api.ImportSpec, {"source": _ADDRESS, "ports": [{"port": 0, "name": "a"}, {"port": 1}]}
    )
    assert message == "spec.ports[0].port: must be an integer between 1 and 65535"


def test_long_error_lists_are_cut_and_counted() -> None:
    spec = {"source": _ADDRESS, "ports": [{"name": f"p{i}", "port": 0} for i in range(5)]}
    message = _refusal(api.ImportSpec, spec)
    assert message.count("must be an integer between 1 and 65535") == 3
    assert message.endswith("(and 2 more)")
    assert "spec.ports[3]" not in message


def test_status_errors_use_the_given_root() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        api.ImportStatus.model_validate({"observedGeneration": -1})
    assert api.explain_validation_error(caught.value, root="status") == (
        "status.observedGeneration: must be at least 0"
    )


@pytest.mark.parametrize("value", [True, 80.5, "80", 1e30])
def test_port_numbers_are_strict_integers(value: object) -> None:
    # The API server refuses these for "type: integer"; coercing them would hide the mistake.
    message = _refusal(api.ImportSpec, {"source": _ADDRESS, "ports": [{"port": value}]})
    assert message.startswith("spec.ports[0].port: must be an integer")


def test_an_integral_float_is_the_integer_as_the_api_server_stores_it() -> None:
    spec = api.ImportSpec.model_validate(
        {"source": _ADDRESS, "ports": [{"port": 80.0, "targetPort": 8080.0}]}
    )
    assert spec.ports is not None
    assert (spec.ports[0].port, spec.ports[0].target_port) == (80, 8080)
    assert type(spec.ports[0].port) is int


def test_a_null_field_counts_as_absent_as_the_api_server_prunes_it() -> None:
    spec = api.ImportSpec.model_validate(
        {"source": _ADDRESS, "ports": [{"port": 80, "protocol": None}], "serviceName": None}
    )
    assert spec.ports is not None
    assert spec.ports[0].protocol == "TCP"
    assert _refusal(api.ImportSpec, {"source": _ADDRESS, "ports": [{"port": None}]}) == (
        "spec.ports[0].port: is required"
    )
    cluster = api.RemoteClusterSpec.model_validate(
        {"kubeconfigSecretRef": {"name": "s", "key": None}, "allowedNamespaces": None}
    )
    assert (cluster.kubeconfig_secret_ref.key, cluster.allowed_namespaces) == ("kubeconfig", ())


# --- endpoint addresses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("192.0.2.10", None),
        ("10.0.0.1", None),
        ("100.64.0.1", None),
        ("0.1.2.3", None),  # Go's IsGlobalUnicast, which the API server uses, allows it
        ("240.0.0.1", None),
        ("2001:db8::10", None),
        ("2001:DB8:0::10", None),
        ("fd00::1", None),
        ("0.0.0.0", api.UNSPECIFIED_MESSAGE),
        ("::", api.UNSPECIFIED_MESSAGE),
        ("127.0.0.1", api.LOOPBACK_MESSAGE),
        ("127.255.255.254", api.LOOPBACK_MESSAGE),
        ("::1", api.LOOPBACK_MESSAGE),
        ("169.254.0.1", api.LINK_LOCAL_MESSAGE),
        ("fe80::1", api.LINK_LOCAL_MESSAGE),
        ("febf::1", api.LINK_LOCAL_MESSAGE),
        ("224.0.0.1", api.LINK_LOCAL_MULTICAST_MESSAGE),
        ("224.0.0.255", api.LINK_LOCAL_MULTICAST_MESSAGE),
        ("ff02::1", api.LINK_LOCAL_MULTICAST_MESSAGE),
        ("ff12::1", api.LINK_LOCAL_MULTICAST_MESSAGE),
        ("224.0.1.1", api.NOT_UNICAST_MESSAGE),
        ("239.255.255.255", api.NOT_UNICAST_MESSAGE),
        ("ff01::1", api.NOT_UNICAST_MESSAGE),
        ("ff05::2", api.NOT_UNICAST_MESSAGE),
        ("255.255.255.255", api.NOT_UNICAST_MESSAGE),
        ("", api.NOT_AN_IP_MESSAGE),
        ("192.0.2.010", api.NOT_AN_IP_MESSAGE),
        ("192.0.2.256", api.NOT_AN_IP_MESSAGE),
        ("::ffff:192.0.2.10", api.NOT_AN_IP_MESSAGE),
        ("2001:db8::1%eth0", api.NOT_AN_IP_MESSAGE),
        ("192.0.2.0/24", api.NOT_AN_IP_MESSAGE),
        (" 192.0.2.10", api.NOT_AN_IP_MESSAGE),
    ],
)
def test_endpoint_address_problem(address: str, problem: str | None) -> None:
    assert api.endpoint_address_problem(address) == problem


def test_addresses_keep_their_spelling_and_canonical_form_is_derived() -> None:
    spec = api.ImportSpec.model_validate(
        {"source": {"addresses": ["2001:DB8:0:0::10", "192.0.2.10"]}, "ports": [{"port": 80}]}
    )
    assert spec.source.addresses == ("2001:DB8:0:0::10", "192.0.2.10")
    assert spec.source.canonical_addresses == ("2001:db8::10", "192.0.2.10")
    assert api.canonical_address("2001:0db8::0010") == "2001:db8::10"
    with pytest.raises(ValueError, match="not an IP address"):
        api.canonical_address("db.example.internal")


def test_canonical_addresses_is_empty_for_other_sources() -> None:
    source = api.Source.model_validate({"hostname": "db.example.internal"})
    assert source.canonical_addresses == ()


@pytest.mark.parametrize(
    "text",
    [
        "192.0.2.10",
        "2001:db8::10",
        "0.0.0.0",
        "::",
        "127.0.0.1",
        "::1",
        "169.254.0.5",
        "fe80::1",
        "224.0.0.1",
        "ff02::1",
        "239.1.1.1",
        "ff0e::1",
        "255.255.255.255",
        "db.example.internal",
    ],
)
def test_what_a_spec_refuses_is_what_remote_and_dns_addresses_are_refused_for(text: str) -> None:
    # The admission check (long messages) and the reading of remote ingress and DNS answers
    # (short reasons) share one table, so an address is usable in both or in neither.
    problem = api.endpoint_address_problem(text)
    if problem is None:
        assert api.canonical_address(text) == str(ipaddress.ip_address(text))
    else:
        with pytest.raises(ValueError, match=r"^[a-zA-Z -]+$"):
            api.canonical_address(text)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("127.0.0.2", "loopback"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("::", "unspecified"),
        ("fe80::1%eth0", "zone index"),
        ("1" * 46, "too long"),
        (3232235777, "not a string but int"),
        (b"\xc0\x00\x02\x01", "not a string but bytes"),
    ],
)
def test_an_unusable_address_from_elsewhere_is_named_in_a_word(raw: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        api.canonical_address(raw)


def test_the_ipv4_mapped_form_from_elsewhere_is_the_ipv4_address() -> None:
    # As Go reads it; a spec must not use that form (the CRD refuses it, as CEL's ip() does).
    assert api.canonical_address("::ffff:192.0.2.1") == "192.0.2.1"
    assert api.endpoint_address_problem("::ffff:192.0.2.1") == api.NOT_AN_IP_MESSAGE


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("::192.0.2.10", api.IPV4_IN_IPV6_MESSAGE),
        ("::c000:20a", api.IPV4_IN_IPV6_MESSAGE),
        ("::2", api.IPV4_IN_IPV6_MESSAGE),
        ("::ffff:0:192.0.2.10", api.IPV4_IN_IPV6_MESSAGE),
        ("2002:c000:20a::1", api.IPV4_IN_IPV6_MESSAGE),
        ("2001:0:c000:20a::1", api.IPV4_IN_IPV6_MESSAGE),
        ("64:ff9b::", api.NAT64_UNUSABLE_MESSAGE),
        ("64:ff9b::127.0.0.1", api.NAT64_UNUSABLE_MESSAGE),
        ("64:ff9b::169.254.169.254", api.NAT64_UNUSABLE_MESSAGE),
        ("64:ff9b::224.0.0.251", api.NAT64_UNUSABLE_MESSAGE),
        ("64:ff9b::239.1.2.3", api.NAT64_UNUSABLE_MESSAGE),
        ("64:ff9b::255.255.255.255", api.NAT64_UNUSABLE_MESSAGE),
        # What the rules before these refuse keeps its own reason.
        ("::", api.UNSPECIFIED_MESSAGE),
        ("::1", api.LOOPBACK_MESSAGE),
        # NAT64 of an address that can be an endpoint is the address policy's to judge.
        ("64:ff9b::192.0.2.10", None),
        ("64:ff9b::10.0.0.5", None),
        ("64:ff9b:1::127.0.0.1", None),
        ("2001:db8::192.0.2.10", None),
        ("2003::1", None),
        ("192.0.2.10", None),
    ],
)
def test_an_ipv6_form_of_an_ipv4_address_is_refused_in_a_spec(
    address: str, problem: str | None
) -> None:
    spec = {"source": {"addresses": [address]}, "ports": [{"port": 80}]}
    if problem is None:
        api.parse_import_spec(spec, import_name="db")
        return
    with pytest.raises(api.InvalidSpecError) as caught:
        api.parse_import_spec(spec, import_name="db")
    assert caught.value.message == f"spec.source.addresses[0]: {problem}"


@pytest.mark.parametrize("last", [0, 1, 2, 126, 127, 128, 169, 223, 224, 239, 240, 254, 255])
def test_the_nat64_rule_of_the_crd_reads_the_ipv4_rules_of_the_api_server(last: int) -> None:
    # The CEL rule lists, under 64:ff9b::/96, the IPv4 ranges that cannot be endpoints;
    # they must be those the API server refuses, whose reasons unusable_reason() words.
    ranges = [
        ipaddress.IPv6Network(r)
        for r in api.nat64_ranges(api.NAT64_WELL_KNOWN_PREFIX, api.UNUSABLE_IPV4)
    ]
    for text in (f"{last}.0.0.0", f"{last}.254.1.2", f"{last}.255.255.255", f"{last}.0.0.1"):
        carried = ipaddress.IPv4Address(text)
        nat64 = ipaddress.IPv6Address(
            int(api.NAT64_WELL_KNOWN_PREFIX.network_address) | int(carried)
        )
        listed = any(nat64 in network for network in ranges)
        assert listed == (api.unusable_reason(carried) is not None), text


# --- derived defaults and helpers ------------------------------------------------------------


def test_port_defaults_are_derived_not_written() -> None:
    spec = api.ImportSpec.model_validate(
        {
            "source": _ADDRESS,
            "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 53, "targetPort": 5353}],
        }
    )
    first, second = spec.ports or ()
    assert first.target_port is None
    assert first.effective_target_port == 80
    assert first.protocol == "TCP"
    assert second.effective_target_port == 5353


def test_service_name_defaults_to_the_import_name() -> None:
    unnamed = api.ImportSpec.model_validate({"source": _ADDRESS, "ports": [{"port": 80}]})
    named = api.ImportSpec.model_validate(
        {"source": _ADDRESS, "ports": [{"port": 80}], "serviceName": "postgres"}
    )
    assert unnamed.service_name is None
    assert unnamed.effective_service_name("db") == "db"
    assert named.effective_service_name("db") == "postgres"


@pytest.mark.parametrize("name", ["db.v2", "1db", "d" * 64, "Db"])
def test_an_import_name_that_cannot_name_a_service_needs_service_name(name: str) -> None:
    spec = {"source": _ADDRESS, "ports": [{"port": 80}]}
    with pytest.raises(api.InvalidSpecError) as caught:
        api.parse_import_spec(spec, import_name=name)
    assert caught.value.message.startswith("metadata.name:")
    assert "spec.serviceName" in caught.value.message
    parsed = api.parse_import_spec({**spec, "serviceName": "db"}, import_name=name)
    assert parsed.effective_service_name(name) == "db"


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ({"remoteService": {"cluster": "c", "namespace": "n", "name": "s"}}, "remoteService"),
        ({"hostname": "db.example.internal"}, "hostname"),
        ({"addresses": ["192.0.2.10"]}, "addresses"),
    ],
)
def test_source_kind(source: dict[str, Any], kind: str) -> None:
    assert api.Source.model_validate(source).kind == kind


def test_remote_service_ports_may_be_left_out() -> None:
    spec = api.ImportSpec.model_validate(
        {"source": {"remoteService": {"cluster": "c", "namespace": "n", "name": "s"}}}
    )
    assert spec.ports is None


def test_models_are_frozen_and_round_trip_through_their_wire_form() -> None:
    raw = {
        "source": {"remoteService": {"cluster": "sup", "namespace": "shared-db", "name": "db"}},
        "serviceName": "db",
        "ports": [{"name": "postgres", "port": 5432, "targetPort": 15432, "protocol": "TCP"}],
    }
    spec = api.ImportSpec.model_validate(raw)
    assert spec.model_dump(mode="json", by_alias=True, exclude_none=True) == raw
    with pytest.raises(pydantic.ValidationError):
        spec.service_name = "other"  # type: ignore[misc]
    assert hash(spec) == hash(api.ImportSpec.model_validate(raw))


def test_python_names_are_accepted_too() -> None:
    spec = api.ImportSpec.model_validate(
        {"source": {"addresses": ["192.0.2.10"]}, "ports": [{"port": 80, "target_port": 81}]}
    )
    assert spec.ports is not None
    assert spec.ports[0].effective_target_port == 81


def test_remote_cluster_defaults_and_namespace_rules() -> None:
    everyone = api.RemoteClusterSpec.model_validate({"kubeconfigSecretRef": {"name": "k"}})
    assert everyone.kubeconfig_secret_ref.key == "kubeconfig"
    assert everyone.context is None
    assert everyone.allows_namespace("anything")
    assert everyone.allows_remote_namespace("anything")
    limited = api.RemoteClusterSpec.model_validate(
        {
            "kubeconfigSecretRef": {"name": "k", "key": "config"},
            "allowedNamespaces": ["web"],
            "allowedRemoteNamespaces": ["shared-db"],
        }
    )
    assert limited.allows_namespace("web")
    assert not limited.allows_namespace("shop")
    assert limited.allows_remote_namespace("shared-db")
    assert not limited.allows_remote_namespace("kube-system")


# --- patterns against Kubernetes' own definitions ---------------------------------------------


def _k8s_port_name_ok(name: str) -> bool:
    # k8s.io/apimachinery/pkg/util/validation.IsValidPortName, written out step by step.
    return (
        1 <= len(name) <= 15
        and re.fullmatch(r"[-a-z0-9]+", name) is not None
        and re.search(r"[a-z]", name) is not None
        and "--" not in name
        and not name.startswith("-")
        and not name.endswith("-")
    )


def _k8s_hostname_ok(name: str) -> bool:
    body = name.removesuffix(".")
    labels = body.split(".")
    return 0 < len(name) <= 253 and all(
        len(label) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", label)
        for label in labels
    )


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _strings(alphabet: str, longest: int) -> list[str]:
    return [
        "".join(letters)
        for size in range(1, longest + 1)
        for letters in itertools.product(alphabet, repeat=size)
    ]


def test_port_name_rule_matches_kubernetes_exhaustively() -> None:
    adapter: pydantic.TypeAdapter[str] = pydantic.TypeAdapter(api.PortName)
    candidates = [*_strings("a1-", 6), "a" * 15, "a" * 16, "1" * 14 + "a", "A", "a_b"]
    for name in candidates:
        try:
            adapter.validate_python(name)
            accepted = True
        except pydantic.ValidationError:
            accepted = False
        assert accepted == _k8s_port_name_ok(name), name


def test_hostname_rule_matches_dns_exhaustively() -> None:
    adapter: pydantic.TypeAdapter[str] = pydantic.TypeAdapter(api.Hostname)
    candidates = [
        *_strings("a-.", 6),
        *_strings("1.", 7),
        "a" * 63,
        "a" * 64,
        ".".join(["a" * 63] * 4),  # 255 characters
        ".".join(["a" * 63] * 3 + ["a" * 61]),  # 253 characters
        "192.0.2.10",
        "192.0.2.10.",
    ]
    for name in candidates:
        try:
            adapter.validate_python(name)
            accepted = True
        except pydantic.ValidationError:
            accepted = False
        # An IP address in "hostname" is refused with a pointer to "addresses"; a name whose
        # last label is all digits is refused too (no top-level domain is).
        numeric = name.rstrip(".").rsplit(".", 1)[-1].isdigit()
        expected = _k8s_hostname_ok(name) and not _is_ip(name) and not numeric
        assert accepted == expected, name


TRICKY_HOSTNAMES = [
    ("db.example.test", True),
    ("db.example.test.", True),
    ("DB.Example.Test", True),  # DNS ignores case; a spec spells it in lowercase
    ("_service.example.test", False),
    ("db_1.example.test", False),
    ("a" * 63 + ".test", True),
    ("a" * 64 + ".test", False),
    (".".join(["a" * 63] * 3 + ["a" * 61]), True),  # 253 characters
    (".".join(["a" * 63] * 3 + ["a" * 62]), False),  # 254
    ("-db.example.test", False),
    ("db-.example.test", False),
    ("xn--bcher-kva.example.test", True),
    ("bücher.example.test", False),
    ("10.example.test", True),
    ("db.example.123", False),
    ("db..example.test", False),
    (".example.test", False),
    ("192.0.2.10", False),
    ("2001:db8::1", False),
    ("", False),
]


@pytest.mark.parametrize(("name", "valid"), TRICKY_HOSTNAMES)
def test_the_three_hostname_checks_are_one_rule(name: str, valid: bool) -> None:
    """The spec's schema, the ingress canonicaliser and the resolver agree on every name."""
    assert (api.hostname_problem(name) is None) == valid
    assert (dns.hostname_problem(name) is None) == valid
    try:
        builders.canonical_hostname(name)
        canonical = True
    except ValueError:
        canonical = False
    assert canonical == valid
    if name == name.lower():  # the CRD's pattern and the model take names in lowercase
        try:
            pydantic.TypeAdapter(api.Hostname).validate_python(name)
            modelled = True
        except pydantic.ValidationError:
            modelled = False
        assert modelled == valid
        # What the API server checks: the pattern, the length and the two CEL rules.
        crd = (
            re.fullmatch(api.HOSTNAME_PATTERN, name) is not None
            and len(name) <= 253
            and not _is_ip(name)
            and re.search(api.NUMERIC_LAST_LABEL_PATTERN, name) is None
        )
        assert crd == valid


# --- statuses --------------------------------------------------------------------------------


def test_status_reads_what_the_api_server_returns() -> None:
    status = api.ImportStatus.model_validate(
        {
            "observedGeneration": 3,
            "addresses": ["192.0.2.10"],
            "ports": [{"name": "pg", "port": 5432, "targetPort": 5432, "protocol": "TCP"}],
            "lastChangeTime": "2024-05-01T12:00:00Z",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "EndpointsWritten",
                    "message": "",
                    "lastTransitionTime": "2024-05-01T12:00:00Z",
                    "observedGeneration": 3,
                }
            ],
            "somethingNewer": {"ignored": True},
        }
    )
    assert status.conditions is not None
    assert status.conditions[0].reason == "EndpointsWritten"
    assert (
        status.model_dump(mode="json", by_alias=True, exclude_none=True)["ports"][0]["targetPort"]
        == 5432
    )


_READY = {
    "type": "Ready",
    "status": "True",
    "reason": "EndpointsWritten",
    "message": "",
    "lastTransitionTime": "2024-05-01T12:00:00Z",
}


@pytest.mark.parametrize(
    ("status", "field"),
    [
        ({"lastChangeTime": "yesterday"}, "status.lastChangeTime"),
        ({"lastChangeTime": "2024-02-30T00:00:00Z"}, "status.lastChangeTime"),
        ({"lastChangeTime": "2024-05-01 12:00:00"}, "status.lastChangeTime"),
        ({"addresses": ["192.0.2.10", "192.0.2.10"]}, "status.addresses"),
        ({"conditions": [_READY, _READY]}, "status.conditions"),
        ({"conditions": [{**_READY, "status": "Maybe"}]}, "status.conditions[0].status"),
        ({"conditions": [{**_READY, "reason": "not ok"}]}, "status.conditions[0].reason"),
        ({"conditions": [{**_READY, "reason": ""}]}, "status.conditions[0].reason"),
        ({"conditions": [{**_READY, "type": "-Ready"}]}, "status.conditions[0].type"),
    ],
)
def test_bad_status_is_refused(status: dict[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        api.ImportStatus.model_validate(status)
    assert field in api.explain_validation_error(caught.value, root="status")


def test_rfc3339_writes_kubernetes_timestamps() -> None:
    moment = datetime.datetime(
        2024, 5, 1, 14, 0, 0, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    assert api.rfc3339(moment) == "2024-05-01T12:00:00Z"
    condition = api.Condition(
        type="Connected",
        status="True",
        reason="Reachable",
        message="",
        last_transition_time=api.rfc3339(moment),
    )
    assert condition.last_transition_time == "2024-05-01T12:00:00Z"
    with pytest.raises(ValueError, match="time zone"):
        api.rfc3339(datetime.datetime(2024, 5, 1))


def test_remote_cluster_status() -> None:
    status = api.RemoteClusterStatus.model_validate(
        {"serverVersion": "v1.34.2+vmware.1", "lastContactTime": "2024-05-01T12:00:00.5+02:00"}
    )
    assert status.server_version == "v1.34.2+vmware.1"
    assert status.conditions is None
