"""Pins the generated CRDs: current, structural, bounded for CEL, and named as documented.

The committed files in ``crds/`` and ``crds/1.30/`` must equal what the models generate, so
nobody edits one without the other. The structural and bound checks mirror what the API
server checks when the CRD is applied (it refuses non-structural schemas and CEL rules whose
estimated cost is unbounded), so a bad model fails here instead of at ``kubectl apply``; they
run on both variants. The 1.30 variant must call no function of CEL's IP library, which
Kubernetes 1.30 refuses in a new CRD, and must differ from the full CRD by exactly the rules
that call it and nothing else, so that the older clusters lose no other check.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from shared_services import api, crdgen

CRDS = Path(__file__).resolve().parents[2] / "crds"
OLD_CRDS = CRDS / "1.30"
IMPORT_FILE = "sharedservices.io_sharedserviceimports.yaml"
REMOTE_CLUSTER_FILE = "sharedservices.io_remoteclusters.yaml"
CATALOG_FILE = "sharedservices.io_sharedservicecatalogs.yaml"


def _load(name: str, directory: Path = CRDS) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((directory / name).read_text(encoding="utf-8"))
    return loaded


def _schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path or "<root>", node
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if "items" in node:
        yield from _nodes(node["items"], f"{path}[*]")


@pytest.fixture(
    params=[
        (directory, name)
        for directory in (CRDS, OLD_CRDS)
        for name in (IMPORT_FILE, REMOTE_CLUSTER_FILE)
    ],
    ids=lambda param: f"{param[0].name}/{param[1]}",
)
def crd(request: pytest.FixtureRequest) -> dict[str, Any]:
    directory, name = request.param
    return _load(name, directory)


# --- the committed files ---------------------------------------------------------------------


@pytest.mark.parametrize(("directory", "minor"), [(CRDS, 37), (OLD_CRDS, 30)], ids=["full", "1.30"])
def test_committed_crds_equal_the_generated_ones(directory: Path, minor: int) -> None:
    generated = crdgen.generate_variant(minor)
    assert sorted(generated) == sorted(p.name for p in directory.glob("*.yaml"))
    for name, text in generated.items():
        assert (directory / name).read_text(encoding="utf-8") == text, (
            f"{directory.name}/{name} is stale: run `python -m shared_services.crdgen`"
        )


def test_the_full_variant_is_what_generate_gives() -> None:
    assert crdgen.generate_variant(crdgen.IP_LIBRARY_MINOR) == crdgen.generate()
    assert crdgen.generate_tree() == {
        **{Path(name): text for name, text in crdgen.generate().items()},
        **{Path("1.30", name): text for name, text in crdgen.generate_variant(30).items()},
    }


def test_generation_is_deterministic() -> None:
    assert crdgen.generate() == crdgen.generate()
    shuffled = dict(reversed(list(crdgen.import_crd().items())))
    assert crdgen.render(shuffled) == crdgen.render(crdgen.import_crd())


def test_check_mode_passes_on_the_committed_files() -> None:
    assert crdgen.main(["--check", "--out", str(CRDS)]) == 0


def test_main_writes_then_check_detects_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "crds"
    assert crdgen.main(["--check", "--out", str(out)]) == 1
    assert crdgen.main(["--out", str(out)]) == 0
    assert {str(p.relative_to(out)) for p in out.rglob("*.yaml")} == {
        f"{variant}{name}"
        for variant in ("", "1.30/")
        for name in (IMPORT_FILE, REMOTE_CLUSTER_FILE, CATALOG_FILE)
    }
    assert crdgen.main(["--check", "--out", str(out)]) == 0
    # --check looks at both variants.
    for target in (out / IMPORT_FILE, out / "1.30" / IMPORT_FILE):
        original = target.read_text(encoding="utf-8")
        target.write_text(original.replace("ssi", "sx"), encoding="utf-8")
        capsys.readouterr()
        assert crdgen.main(["--check", "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert str(target) in err
        assert err.count(IMPORT_FILE) == 1, "the other variant is current"
        assert crdgen.main(["--out", str(out)]) == 0
        assert target.read_text(encoding="utf-8") == original
        assert crdgen.main(["--check", "--out", str(out)]) == 0
    (out / "1.30" / REMOTE_CLUSTER_FILE).unlink()
    assert crdgen.main(["--check", "--out", str(out)]) == 1


def test_files_say_they_are_generated() -> None:
    for name in (IMPORT_FILE, REMOTE_CLUSTER_FILE):
        assert (CRDS / name).read_text(encoding="utf-8").startswith(crdgen.HEADER + "---\n")
        old = (OLD_CRDS / name).read_text(encoding="utf-8")
        assert old.startswith(crdgen.HEADER + crdgen.OLD_VARIANT_NOTE + "---\n")


# --- the variant for Kubernetes 1.30 ---------------------------------------------------------


@pytest.mark.parametrize("minor", range(31, 38))
def test_releases_with_the_ip_library_read_the_full_crds(minor: int) -> None:
    assert crdgen.variant_dir(minor) == Path("crds")
    assert crdgen.variant_dir(minor, root=CRDS) == CRDS


def test_kubernetes_1_30_reads_the_variant_without_it() -> None:
    assert crdgen.IP_LIBRARY_MINOR == 31
    assert crdgen.variant_dir(30) == Path("crds", "1.30")
    assert crdgen.variant_dir(30, root=CRDS) == OLD_CRDS
    with pytest.raises(ValueError, match=r"1\.29 is older than 1\.30"):
        crdgen.variant_dir(29)
    with pytest.raises(ValueError, match="oldest supported"):
        crdgen.generate_variant(29)


# The library's functions, as the API server's CEL environment names them (k8s.io/apiserver
# pkg/cel/library/ip.go and cidr.go); methods of their results need one of them first.
_IP_LIBRARY = re.compile(r"(?<![A-Za-z0-9_])(isIP|ip|isCIDR|cidr)\s*\(")


def _calls_ip_library(rule: dict[str, str]) -> bool:
    return any(
        _IP_LIBRARY.search(_strip_literals(rule.get(key, "")))
        for key in ("rule", "messageExpression")
    )


def _every_rule(value: object) -> Iterator[dict[str, str]]:
    """Every validation rule anywhere in a CRD, wherever in the schema it sits."""
    if isinstance(value, dict):
        yield from value.get("x-kubernetes-validations", [])
        for child in value.values():
            yield from _every_rule(child)
    elif isinstance(value, list):
        for child in value:
            yield from _every_rule(child)


@pytest.mark.parametrize("name", [IMPORT_FILE, REMOTE_CLUSTER_FILE])
def test_the_1_30_variant_calls_no_ip_library_function(name: str) -> None:
    for rule in _every_rule(_load(name, OLD_CRDS)):
        assert not _calls_ip_library(rule), rule


def test_the_full_crd_does_call_it() -> None:
    # Otherwise the variant test above would pass on a detector that finds nothing. How many
    # rules, and which, is pinned in test_the_rules_1_30_leaves_to_the_operator.
    assert any(map(_calls_ip_library, _every_rule(_load(IMPORT_FILE))))


@pytest.mark.parametrize("name", [IMPORT_FILE, REMOTE_CLUSTER_FILE])
def test_the_1_30_variant_differs_only_by_the_ip_library_rules(name: str) -> None:
    full, old = _load(name), _load(name, OLD_CRDS)
    dropped = crdgen.ip_library_rules(full)
    # Every dropped rule calls the library, and every rule that calls it is dropped.
    assert [d.rule for d in dropped] == [r for _, _, r in _rules(full) if _calls_ip_library(r)]
    # Put back where they were, the dropped rules give the full CRD: nothing else differs.
    restored = copy.deepcopy(old)
    nodes = dict(_nodes(_schema(restored)))
    for rule in dropped:
        nodes[rule.path].setdefault("x-kubernetes-validations", []).insert(
            rule.index, dict(rule.rule)
        )
    assert restored == full
    assert (old == full) == (not dropped)


def test_the_rules_1_30_leaves_to_the_operator() -> None:
    # On 1.30 the operator alone refuses these, with the same messages (api's models): a
    # rule added to this list needs its twin in the models, and a test that the operator
    # reports it as InvalidSpec.
    dropped = crdgen.ip_library_rules(_load(IMPORT_FILE))
    assert [(d.path, d.rule["message"]) for d in dropped] == [
        (".spec.source.addresses", api.DUPLICATE_ADDRESS_MESSAGE),
        (".spec.source.addresses[*]", api.NOT_AN_IP_MESSAGE),
        (".spec.source.addresses[*]", api.NOT_UNICAST_MESSAGE),
        (".spec.source.addresses[*]", api.IPV4_IN_IPV6_MESSAGE),
        (".spec.source.addresses[*]", api.NAT64_UNUSABLE_MESSAGE),
        (".spec.source.hostname", api.HOSTNAME_IS_IP_MESSAGE),
    ]
    assert crdgen.ip_library_rules(_load(REMOTE_CLUSTER_FILE)) == []


@pytest.mark.parametrize(
    ("expression", "calls"),
    [
        ("isIP(self)", True),
        ("!isIP(self) || ip(self).isGlobalUnicast()", True),
        ("cidr('192.0.2.0/24').containsIP(self)", True),
        ("isCIDR (self)", True),
        ("self.all(a, a.ip == 'x')", False),
        ("'must be an ip(...) such as isIP(x)'", False),
        ('"cidr(" + self', False),
        ("self.zip(x)", False),
        ("[has(self.remoteService), has(self.hostname)].exists_one(x, x)", False),
    ],
)
def test_uses_ip_library(expression: str, calls: bool) -> None:
    assert crdgen.uses_ip_library(expression) is calls


# --- names, scope, versions, columns -------------------------------------------------------------


def test_import_crd_names_and_scope() -> None:
    crd = _load(IMPORT_FILE)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"] == {"name": "sharedserviceimports.sharedservices.io"}
    spec = crd["spec"]
    assert spec["group"] == api.GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "SharedServiceImport",
        "listKind": "SharedServiceImportList",
        "plural": "sharedserviceimports",
        "singular": "sharedserviceimport",
        "shortNames": ["ssi"],
        "categories": ["sharedservices"],
    }


def test_remote_cluster_crd_names_and_scope() -> None:
    crd = _load(REMOTE_CLUSTER_FILE)
    assert crd["metadata"] == {"name": "remoteclusters.sharedservices.io"}
    spec = crd["spec"]
    assert spec["scope"] == "Cluster"
    assert spec["names"]["kind"] == "RemoteCluster"
    assert spec["names"]["plural"] == "remoteclusters"
    assert spec["names"]["singular"] == "remotecluster"
    # "rc" belongs to ReplicationController.
    assert spec["names"]["shortNames"] == ["rcl"]


def test_one_served_storage_version_with_status_subresource(crd: dict[str, Any]) -> None:
    (version,) = crd["spec"]["versions"]
    assert version["name"] == api.VERSION
    assert version["served"] is True
    assert version["storage"] is True
    assert version["subresources"] == {"status": {}}
    root = version["schema"]["openAPIV3Schema"]
    assert root["required"] == ["spec"]
    assert set(root["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}


def _columns(crd: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    return [
        (c["name"], c["jsonPath"], c["type"], c.get("priority", 0))
        for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]
    ]


def test_import_printer_columns() -> None:
    ready = '.status.conditions[?(@.type=="Ready")]'
    assert _columns(_load(IMPORT_FILE)) == [
        ("Source", ".status.source", "string", 0),
        ("Addresses", ".status.addresses", "string", 0),
        ("Ready", f"{ready}.status", "string", 0),
        ("Reason", f"{ready}.reason", "string", 1),
        ("Service", ".status.serviceName", "string", 1),
        ("Age", ".metadata.creationTimestamp", "date", 0),
    ]


def test_remote_cluster_printer_columns() -> None:
    connected = '.status.conditions[?(@.type=="Connected")]'
    assert _columns(_load(REMOTE_CLUSTER_FILE)) == [
        ("Connected", f"{connected}.status", "string", 0),
        ("Version", ".status.serverVersion", "string", 0),
        ("Reason", f"{connected}.reason", "string", 1),
        ("Age", ".metadata.creationTimestamp", "date", 0),
    ]


def test_printer_columns_point_into_the_schema(crd: dict[str, Any]) -> None:
    paths = {path for path, _ in _nodes(_schema(crd))}
    for _, json_path, _, _ in _columns(crd):
        if json_path.startswith(".metadata."):
            continue
        # ".status.conditions[?(...)].status" -> ".status.conditions[*].status"
        simple = re.sub(r"\[\?\(.*?\)\]", "[*]", json_path).removesuffix(".*")
        assert simple in paths, json_path


# --- structural schema ---------------------------------------------------------------------


def test_schema_is_structural(crd: dict[str, Any]) -> None:
    for path, node in _nodes(_schema(crd)):
        for keyword in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "title"):
            assert keyword not in node, f"{path} has {keyword}"
        assert (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        ), f"{path} has no type"
        assert node.get("type") != "null", path
        if "properties" in node:
            assert "additionalProperties" not in node, path
            assert set(node.get("required", [])) <= set(node["properties"]), path
        assert "uniqueItems" not in node, f"{path}: Kubernetes forbids uniqueItems"
        assert node.get("default", "unset") is not None, f"{path} has a null default"


def test_generator_self_check_finds_nothing(crd: dict[str, Any]) -> None:
    root = _schema(crd)
    for part in ("spec", "status"):
        assert crdgen.structural_problems(root["properties"][part], f".{part}") == []


def test_generator_self_check_can_fail() -> None:
    bad = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}},
            "any": {"anyOf": [{"type": "string"}]},
        },
        "additionalProperties": False,
    }
    problems = crdgen.structural_problems(bad, ".spec")
    assert ".spec.name: string without maxLength" in problems
    assert ".spec.tags: array without maxItems" in problems
    assert ".spec.any: has anyOf" in problems
    assert ".spec.any: has no type" in problems
    assert ".spec: has both properties and additionalProperties" in problems


def test_unions_other_than_optional_are_refused() -> None:
    class Either(pydantic.BaseModel):
        value: int | str

    with pytest.raises(crdgen.SchemaError, match="Optional"):
        crdgen.model_schema(Either)


def test_optional_fields_are_simply_not_required() -> None:
    spec = _schema(_load(IMPORT_FILE))["properties"]["spec"]
    assert spec["required"] == ["source"]
    assert spec["properties"]["serviceName"]["type"] == "string"
    port = spec["properties"]["ports"]["items"]
    assert port["required"] == ["port"]
    assert port["properties"]["targetPort"] == {
        "description": "Port on the remote address; defaults to port.",
        "type": "integer",
        "minimum": 1,
        "maximum": 65535,
    }


def test_only_real_defaults_are_kept() -> None:
    defaults = {
        (crd_file, path): node["default"]
        for crd_file in (IMPORT_FILE, REMOTE_CLUSTER_FILE)
        for path, node in _nodes(_schema(_load(crd_file)))
        if "default" in node
    }
    assert defaults == {
        (IMPORT_FILE, ".spec.ports[*].protocol"): "TCP",
        (REMOTE_CLUSTER_FILE, ".spec.kubeconfigSecretRef.key"): "kubeconfig",
    }


# --- CEL rules and their bounds ---------------------------------------------------------------


def _rules(crd: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    for path, node in _nodes(_schema(crd)):
        for rule in node.get("x-kubernetes-validations", []):
            yield path, node, rule


def test_every_string_and_list_a_rule_can_read_is_bounded(crd: dict[str, Any]) -> None:
    # The API server estimates each rule's worst-case cost from these bounds and refuses the
    # CRD when a rule can read an unbounded string or list.
    for rule_path, rule_node, _ in _rules(crd):
        for path, node in _nodes(rule_node, rule_path):
            if node.get("type") == "string":
                assert "maxLength" in node or "enum" in node, path
            if node.get("type") == "array":
                assert "maxItems" in node, path


def test_every_spec_and_status_string_and_list_is_bounded(crd: dict[str, Any]) -> None:
    root = _schema(crd)
    for part in ("spec", "status"):
        for path, node in _nodes(root["properties"][part], f".{part}"):
            if node.get("type") == "string":
                assert "maxLength" in node or "enum" in node, path
            if node.get("type") == "array":
                assert "maxItems" in node, path


def _rule_at(path: str) -> list[dict[str, str]]:
    return [rule for where, _, rule in _rules(_load(IMPORT_FILE)) if where == path]


def test_import_cel_rules_sit_beside_their_fields() -> None:
    one_of = _rule_at(".spec.source")
    assert one_of == [
        {
            "rule": "[has(self.remoteService), has(self.hostname), has(self.addresses)]"
            ".exists_one(x, x)",
            "message": api.ONE_SOURCE_MESSAGE,
        }
    ]
    (ports_required,) = _rule_at(".spec")
    assert ports_required["fieldPath"] == ".ports"
    assert ports_required["reason"] == "FieldValueRequired"
    assert ports_required["message"] == api.PORTS_REQUIRED_MESSAGE
    assert "has(self.source.remoteService)" in ports_required["rule"]
    assert [r["message"] for r in _rule_at(".spec.ports")] == [
        api.NAMES_REQUIRED_MESSAGE,
        api.UNIQUE_NAMES_MESSAGE,
    ]
    assert [r["message"] for r in _rule_at(".spec.source.hostname")] == [
        api.HOSTNAME_IS_IP_MESSAGE,
        api.NUMERIC_LAST_LABEL_MESSAGE,
    ]
    assert [r["message"] for r in _rule_at(".spec.source.addresses")] == [
        api.DUPLICATE_ADDRESS_MESSAGE
    ]
    is_ip, usable, ipv4_form, nat64 = _rule_at(".spec.source.addresses[*]")
    assert is_ip == {"rule": "isIP(self)", "message": api.NOT_AN_IP_MESSAGE}
    assert usable["rule"] == "!isIP(self) || ip(self).isGlobalUnicast()"
    # The IPv6 forms of IPv4 addresses are judged only where no reason above applies.
    assert ipv4_form["message"] == api.IPV4_IN_IPV6_MESSAGE
    assert "!ip(self).isGlobalUnicast() ||" in ipv4_form["rule"]
    for network, _ in api.IPV4_IN_IPV6_FORMS:
        assert f"'{network}'" in ipv4_form["rule"]
    assert nat64["message"] == api.NAT64_UNUSABLE_MESSAGE
    for network in ("64:ff9b::/128", "64:ff9b::7f00:0/104", "64:ff9b::a9fe:0/112"):
        assert f"'{network}'" in nat64["rule"]
    for message in (
        api.UNSPECIFIED_MESSAGE,
        api.LOOPBACK_MESSAGE,
        api.LINK_LOCAL_MESSAGE,
        api.LINK_LOCAL_MULTICAST_MESSAGE,
        api.NOT_UNICAST_MESSAGE,
    ):
        assert f"'{message}'" in usable["messageExpression"]


def test_field_paths_name_existing_fields(crd: dict[str, Any]) -> None:
    paths = {path for path, _ in _nodes(_schema(crd))}
    for path, _, rule in _rules(crd):
        if "fieldPath" in rule:
            assert f"{path}{rule['fieldPath']}" in paths


# Functions and macros of Kubernetes CEL that the rules may use. A typo such as isIp() or a
# call with an unbounded result such as string() fails here rather than at apply time.
_KNOWN_CALLS = frozenset(
    {
        "has",
        "size",
        "all",
        "exists",
        "exists_one",
        "filter",
        "map",
        "matches",
        "isIP",
        "ip",
        "isUnspecified",
        "isLoopback",
        "isLinkLocalUnicast",
        "isLinkLocalMulticast",
        "isGlobalUnicast",
        "family",
        "cidr",
        "containsIP",
    }
)


def _strip_literals(expression: str) -> str:
    return re.sub(r"'[^']*'", "''", expression)


@pytest.mark.parametrize("key", ["rule", "messageExpression"])
def test_cel_expressions_are_well_formed(crd: dict[str, Any], key: str) -> None:
    for path, _, rule in _rules(crd):
        if key not in rule:
            continue
        expression = rule[key]
        assert expression.count("'") % 2 == 0, path
        code = _strip_literals(expression)
        for opening, closing in ("()", "[]"):
            depth = 0
            for char in code:
                depth += (char == opening) - (char == closing)
                assert depth >= 0, (path, expression)
            assert depth == 0, (path, expression)
        calls = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", code))
        assert calls <= _KNOWN_CALLS, (path, calls - _KNOWN_CALLS)


def test_list_semantics() -> None:
    imports = dict(_nodes(_schema(_load(IMPORT_FILE))))
    clusters = dict(_nodes(_schema(_load(REMOTE_CLUSTER_FILE))))
    for node in (
        imports[".spec.source.addresses"],
        imports[".status.addresses"],
        clusters[".spec.allowedNamespaces"],
        clusters[".spec.allowedRemoteNamespaces"],
    ):
        assert node["x-kubernetes-list-type"] == "set"
        assert node["items"]["type"] == "string"
    for path in (".spec.ports", ".status.ports"):
        ports = imports[path]
        assert ports["x-kubernetes-list-type"] == "map"
        assert ports["x-kubernetes-list-map-keys"] == ["port", "protocol"]
    for conditions in (imports[".status.conditions"], clusters[".status.conditions"]):
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_list_map_keys_are_required_or_defaulted(crd: dict[str, Any]) -> None:
    # The API server refuses a map-list whose key could be absent.
    for path, node in _nodes(_schema(crd)):
        for key in node.get("x-kubernetes-list-map-keys", []):
            item = node["items"]
            assert key in item.get("required", []) or "default" in item["properties"][key], (
                path,
                key,
            )


def test_limits_match_the_models() -> None:
    imports = dict(_nodes(_schema(_load(IMPORT_FILE))))
    assert imports[".spec.ports"]["maxItems"] == api.MAX_PORTS == 100
    assert imports[".spec.ports"]["minItems"] == 1
    assert imports[".spec.source.addresses"]["maxItems"] == api.MAX_ADDRESSES == 64
    assert imports[".spec.source.addresses"]["minItems"] == 1
    assert imports[".spec.ports[*].name"]["maxLength"] == 15
    assert imports[".spec.ports[*].port"]["minimum"] == 1
    assert imports[".spec.ports[*].port"]["maximum"] == 65535
    assert imports[".spec.ports[*].protocol"]["enum"] == ["TCP", "UDP", "SCTP"]
    assert imports[".spec.source.hostname"]["pattern"] == api.HOSTNAME_PATTERN
    clusters = dict(_nodes(_schema(_load(REMOTE_CLUSTER_FILE))))
    assert clusters[".spec.allowedNamespaces"]["maxItems"] == api.MAX_NAMESPACES == 256
    assert clusters[".spec.kubeconfigSecretRef.key"]["pattern"] == api.DATA_KEY_PATTERN
