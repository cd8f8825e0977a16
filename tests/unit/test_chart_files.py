"""The files under deploy/ agree with each other and with the project: the chart's CRDs are the
generated ones byte for byte, both the full ones and those for Kubernetes 1.30 (the chart
renders them as templates from its files/crds/, and keeps no crds/ folder that Helm would
install once and never upgrade), the chart's version is the package's, its address-policy values
are the ones its schema checks, and that schema never admits a CIDR the operator would refuse
to start with, nor a sign-in URL the CRD refuses or a user name or password longer than the
operator sends; values.yaml shows every key a remote cluster may have, and the kubeconfig
that deploy/supervisor/ shows for signing in is one the operator takes without a user; Argo
CD's config map carries the health scripts verbatim and those scripts judge every kind of
status as documented, the examples grant and use exactly what deploy/supervisor/ defines,
and the Deployment's probes ask for paths that the operator's probe server answers. The
alerts that values.yaml lists are those its schema admits; each has a runbook page in
docs/runbooks/ saying what it means, its impact, how to diagnose and how to mitigate, and
those pages explain every reason the operator can give an import's Ready condition or a
RemoteCluster's Connected condition.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import re
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import lupa
import pytest
import yaml

from deploykit import example_imports, forbidden_requests
from harness.pki import write_pki
from shared_services import advice, api, kube, kubeconfig, policy, resolve, signin
from shared_services import probes as probe_server
from shared_services.manager import Manager
from shared_services.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "shared-services-operator"
HEALTH = DEPLOY / "argocd" / "health"
RUNBOOKS = REPO / "docs" / "runbooks"


def _docs(path: Path) -> list[dict[str, Any]]:
    files = sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
    return [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.yaml")}


def test_chart_crds_are_the_generated_crds() -> None:
    generated = _tree(REPO / "crds")
    assert set(generated) == {
        f"{variant}{kind}.yaml"
        for variant in ("", "1.30/")
        for kind in (
            "sharedservices.io_sharedserviceimports",
            "sharedservices.io_remoteclusters",
            "sharedservices.io_sharedservicecatalogs",
        )
    }
    assert _tree(CHART / "files" / "crds") == generated, (
        "copy crds/ to the chart's files/crds/ (byte for byte, 1.30/ included)"
    )
    # A crds/ folder would be installed by Helm before the templates, and clash with them.
    assert not (CHART / "crds").exists()


def test_chart_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return schema


def test_address_policy_values_are_the_schemas() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())["addressPolicy"]
    properties = _schema()["properties"]["addressPolicy"]["properties"]
    assert set(values) == set(properties)
    assert values == {
        "allowedCIDRs": [],
        "deniedCIDRs": [],
        "allowClusterNetworks": False,
        "staticSources": "all",
        "staticSourceNamespaces": [],
        "serviceCIDRs": [],
        "nat64Prefixes": [],
        "allowMetadataServices": False,
        "remoteServerCIDRs": [],
    }
    assert properties["staticSources"]["enum"] == ["all", "none", "listed"]


CIDR_SAMPLES = [
    "198.51.100.0/24",
    "0.0.0.0/0",
    "192.0.2.7/32",
    "2001:db8::/32",
    "2001:db8:100::/48",
    "::/0",
    "fd00:10:96::/112",
    "1:2:3:4:5:6:7:8/128",
    "::ffff:198.51.100.0/120",
    "198.51.100.0/33",
    "198.51.100.256/24",
    "010.0.0.0/8",
    "198.51.100.0",
    "198.51.100.0/",
    " 198.51.100.0/24",
    "198.51.100.0/24,192.0.2.0/24",
    "2001:db8::/129",
    "2001:db8:::/32",
    "1:2:3:4:5:6:7:8:9/64",
    "12345::/64",
    "fe80::%eth0/64",
    "g::/64",
    "banana",
]


@pytest.mark.parametrize("text", CIDR_SAMPLES)
def test_the_schema_admits_no_cidr_the_operator_cannot_read(text: str) -> None:
    cidr = _schema()["definitions"]["cidr"]
    # The patterns use no syntax in which Go's RE2 (helm) and Python's re differ.
    admitted = len(text) <= cidr["maxLength"] and any(
        re.search(p["pattern"], text) for p in cidr["anyOf"]
    )
    try:
        ipaddress.ip_network(text, strict=False)
        readable = "/" in text and "%" not in text
    except ValueError:
        readable = False
    # Host bits are for the operator to point out; the pattern checks the form alone.
    assert admitted == readable


SIGN_IN_URL_SAMPLES = [
    "",
    "https://192.0.2.10/wcp/login",
    "https://supervisor.example.internal:8443/wcp/login",
    "https://[2001:db8::10]/wcp/login",
    "https://192.0.2.10",
    "http://192.0.2.10/wcp/login",
    "https://user@192.0.2.10/wcp/login",
    "https://user:secret@192.0.2.10/wcp/login",
    "https://192.0.2.10/wcp/login?next=/",
    "https://192.0.2.10/wcp/login#top",
    "https://192.0.2.10/wcp/ login",
    "https:///wcp/login",
    " https://192.0.2.10/wcp/login",
    "HTTPS://192.0.2.10/wcp/login",
]


@pytest.mark.parametrize("url", SIGN_IN_URL_SAMPLES)
def test_the_schema_admits_the_sign_in_urls_the_crd_admits(url: str) -> None:
    schema = _schema()["definitions"]["vsphereSignIn"]["properties"]["url"]
    crd = yaml.safe_load((REPO / "crds" / "sharedservices.io_remoteclusters.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    crd_url = spec["properties"]["vsphereSignIn"]["properties"]["url"]
    assert crd_url["pattern"] == api.SIGN_IN_URL_PATTERN
    assert schema["maxLength"] == crd_url["maxLength"]
    # Empty is the chart's "not set": the RemoteCluster then has no url.
    admitted = re.search(schema["pattern"], url) is not None
    assert admitted == (url == "" or re.search(api.SIGN_IN_URL_PATTERN, url) is not None)


@pytest.mark.parametrize("key", ["username", "password"])
def test_the_schema_holds_credentials_to_what_the_operator_sends(key: str) -> None:
    properties = _schema()["definitions"]["vsphereSignIn"]["properties"]
    limit = properties[key]["maxLength"]
    fine = {"username": "tkc-01@vsphere.local", "password": "pw"}
    assert signin.credentials({**fine, key: "x" * limit}, secret="s")
    with pytest.raises(signin.SignInError) as refused:
        signin.credentials({**fine, key: "x" * (limit + 1)}, secret="s")
    assert refused.value.reason == signin.CREDENTIALS_INVALID
    # A pattern's complaint quotes the value: the password is checked by its length alone.
    if key == "password":
        assert set(properties[key]) == {"description", "type", "maxLength"}


def _remote_clusters_example() -> list[dict[str, Any]]:
    """The commented remoteClusters[] example under `remoteClusters: []` in values.yaml."""
    text = (CHART / "values.yaml").read_text()
    block = text.split("\nremoteClusters: []\n", 1)[1].split("\n\n", 1)[0]
    lines = block.splitlines()
    assert all(line.startswith("#") for line in lines)
    example: list[dict[str, Any]] = yaml.safe_load("\n".join(line[1:] for line in lines))
    return example


def test_values_show_every_key_of_a_remote_cluster() -> None:
    (example,) = _remote_clusters_example()
    definitions = _schema()["definitions"]
    assert set(example) == set(definitions["remoteCluster"]["properties"])
    assert set(example["vsphereSignIn"]) == set(definitions["vsphereSignIn"]["properties"])
    assert set(definitions["vsphereSignIn"]["properties"]) == {
        "username",
        "password",
        "existingSecret",
        "url",
    }


def test_the_documented_sign_in_kubeconfig_needs_no_user(tmp_path: Path) -> None:
    readme = (DEPLOY / "supervisor" / "README.md").read_text()
    section = readme.split("## Signing in as a vSphere SSO user", 1)[1]
    (shown,) = [
        block
        for block in re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
        if "kind: Config" in block
    ]
    placeholder = "<base64 of supervisor-ca.pem>"
    assert placeholder in shown
    ca = write_pki(tmp_path, cluster_name="supervisor").ca_pem
    text = shown.replace(placeholder, base64.b64encode(ca).decode())
    parsed = kubeconfig.parse(text, signs_in=True)
    assert parsed.server == "https://192.0.2.10:6443"
    assert parsed.credentials is None
    # The same document without a sign-in names no user, which the operator refuses.
    with pytest.raises(kubeconfig.CredentialsError, match=r"contexts\[0\]\.context\.user"):
        kubeconfig.parse(text)


def test_argocd_config_map_carries_the_scripts_verbatim() -> None:
    (config,) = _docs(DEPLOY / "argocd" / "argocd-cm.yaml")
    scripts = {p.stem.split("_", 1)[1]: p.read_text() for p in HEALTH.glob("*.lua")}
    assert set(scripts) == {"SharedServiceImport", "RemoteCluster", "SharedServiceCatalog"}
    for kind, script in scripts.items():
        assert config["data"][f"resource.customizations.health.sharedservices.io_{kind}"] == script


def test_argo_cd_chart_values_carry_the_scripts_verbatim() -> None:
    """The argo-cd chart renders configs.cm into argocd-cm: the same keys, the same scripts."""
    (values,) = _docs(DEPLOY / "argocd" / "argo-cd-values.yaml")
    (config,) = _docs(DEPLOY / "argocd" / "argocd-cm.yaml")
    assert set(values) == {"configs"}
    assert values["configs"]["cm"] == config["data"]
    text = (DEPLOY / "argocd" / "README.md").read_text()
    assert "kubectl -n argocd patch" not in text, "a hand-made patch is reverted by GitOps"


def health(kind: str, obj: dict[str, Any]) -> str:
    runtime = lupa.LuaRuntime()
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute((HEALTH / f"sharedservices.io_{kind}.lua").read_text())
    return str(result["status"])


def _import(ready: tuple[str, str] | None, *, generation: int = 1, observed: int = 1) -> Any:
    obj: dict[str, Any] = {"metadata": {"name": "db", "generation": generation}}
    if ready is not None:
        obj["status"] = {
            "observedGeneration": observed,
            "conditions": [
                {"type": "Ready", "status": ready[0], "reason": ready[1], "message": "m"},
                {"type": "SourceResolved", "status": "True", "reason": "Resolved", "message": ""},
            ],
        }
    return obj


@pytest.mark.parametrize(
    ("ready", "expected"),
    [
        (None, "Progressing"),
        (("True", "Synced"), "Healthy"),
        (("True", "LastKnownAddresses"), "Healthy"),
        (("False", "Connecting"), "Progressing"),
        (("False", "Resolving"), "Progressing"),
        (("False", "NoIngress"), "Progressing"),
        (("False", "Conflict"), "Degraded"),
        (("False", "NamespaceDenied"), "Degraded"),
        (("False", "RemoteNamespaceDenied"), "Degraded"),
        (("False", "InvalidSpec"), "Degraded"),
        (("False", "RemoteServiceNotFound"), "Degraded"),
        (("False", "RemoteUnavailable"), "Degraded"),
        (("False", "NoPorts"), "Degraded"),
        # The address policy: the platform team or the tenant has to act.
        (("False", "AddressNotAllowed"), "Degraded"),
        (("False", "SourceNotAllowed"), "Degraded"),
    ],
)
def test_import_health(ready: tuple[str, str] | None, expected: str) -> None:
    assert health("SharedServiceImport", _import(ready)) == expected


def test_import_health_waits_for_the_latest_spec() -> None:
    stale = _import(("True", "Synced"), generation=3, observed=2)
    assert health("SharedServiceImport", stale) == "Progressing"


@pytest.mark.parametrize(
    ("connected", "expected"),
    [
        (None, "Progressing"),
        (("True", "Connected"), "Healthy"),
        (("False", "Connecting"), "Progressing"),
        (("False", "Unauthorized"), "Degraded"),
        (("False", "SecretNotFound"), "Degraded"),
        (("False", "Unreachable"), "Degraded"),
    ],
)
def test_remote_cluster_health(connected: tuple[str, str] | None, expected: str) -> None:
    obj: dict[str, Any] = {"metadata": {"name": "supervisor", "generation": 1}}
    if connected is not None:
        obj["status"] = {
            "conditions": [
                {
                    "type": "Connected",
                    "status": connected[0],
                    "reason": connected[1],
                    "message": "m",
                    "observedGeneration": 1,
                }
            ]
        }
    assert health("RemoteCluster", obj) == expected


def test_supervisor_identity_reads_services_only() -> None:
    kustomization = yaml.safe_load((DEPLOY / "supervisor" / "kustomization.yaml").read_text())
    resources = [
        d for name in kustomization["resources"] for d in _docs(DEPLOY / "supervisor" / name)
    ]
    account = next(d for d in resources if d["kind"] == "ServiceAccount")
    token = next(d for d in resources if d["kind"] == "Secret")
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"] == {
        "kubernetes.io/service-account.name": account["metadata"]["name"]
    }
    assert account["automountServiceAccountToken"] is False
    assert not any(d["kind"] in ("Role", "ClusterRole", "ClusterRoleBinding") for d in resources)
    role, binding = _docs(DEPLOY / "supervisor" / "reader.yaml")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["services"], "verbs": ["list", "watch"]}
    ]
    assert "namespace" not in role["metadata"]  # applied to each shared namespace with -n
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": kustomization["namespace"],
        }
    ]


@pytest.mark.parametrize("example", ["single-db", "acme-fitness"])
def test_examples_grant_and_import_consistently(example: str) -> None:
    reader_role, reader_binding = _docs(DEPLOY / "supervisor" / "reader.yaml")
    supervisor = _docs(DEPLOY / "examples" / example / "supervisor")
    workload = _docs(DEPLOY / "examples" / example / "workload")
    values = yaml.safe_load((DEPLOY / "examples" / "values.yaml").read_text())
    (remote,) = values["remoteClusters"]
    services = {
        (d["metadata"]["namespace"], d["metadata"]["name"])
        for d in supervisor
        if d["kind"] == "Service"
    }
    for role in (d for d in supervisor if d["kind"] == "Role"):
        assert role["rules"] == reader_role["rules"]
        assert role["metadata"]["namespace"] in {ns for ns, _ in services}
    for binding in (d for d in supervisor if d["kind"] == "RoleBinding"):
        assert binding["subjects"] == reader_binding["subjects"]
    imports = example_imports(DEPLOY / "examples" / example)
    assert imports
    assert {d["kind"] for d in workload} <= {
        "Namespace",
        "SharedServiceImport",
        "SharedServiceCatalog",
    }
    for item in imports:
        assert item.cluster == remote["name"]
        assert (item.remote_namespace, item.remote_name) in services
        assert item.namespace in remote["allowedNamespaces"]
        assert item.remote_namespace in remote["allowedRemoteNamespaces"]
    if example == "acme-fitness":
        # One catalog stands for the shop's five imports, under the names it calls.
        assert [d["kind"] for d in workload] == ["Namespace", "SharedServiceCatalog"]
        assert {i.name for i in imports} == {
            "users-mongo",
            "users-redis",
            "cart-redis",
            "order-postgres",
            "catalog-mongo",
        }


def test_forbidden_requests_spots_every_403() -> None:
    log = "\n".join(
        [
            '[t,403] urllib3 [DEBUG] h "GET /api/v1/namespaces/w/services/x HTTP/1.1" 403 1',
            "[t,1] shared_services [WARNING] sync of web/x failed: 403 Forbidden: nope",
            "[t,2] kopf [ERROR] GET https://h/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
            " -> APIForbiddenError('forbidden')",
            "[t,3] kopf [ERROR] GET https://h/api/v1/namespaces -> APIForbiddenError('forbidden')",
            "[t,403] kopf [DEBUG] Client is configured via kubeconfig file.",
        ]
    )
    # kopf's scanning is off in the operator, so a 403 from it is as telling as any other;
    # a "403" that is no HTTP status (a timestamp, say) is not one.
    assert [line[:9] for line in forbidden_requests(log)] == [
        "[t,403] u",
        "[t,1] sha",
        "[t,2] kop",
        "[t,3] kop",
    ]


def _answer(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def test_the_probes_ask_for_what_the_operator_serves() -> None:
    (deployment,) = [d for d in _docs(DEPLOY / "manifests") if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    probes = {
        kind: container[kind]["httpGet"]["path"] for kind in ("livenessProbe", "readinessProbe")
    }
    assert probes == {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}

    async def ask() -> dict[str, tuple[int, str]]:
        # Just started, nothing filled yet: live, not ready.
        server = await probe_server.serve(0, Manager(Settings()))
        port = server.sockets[0].getsockname()[1]
        try:
            return {
                path: await asyncio.to_thread(_answer, port, path)
                for path in (*probes.values(), "/elsewhere")
            }
        finally:
            server.close()
            await server.wait_closed()

    answers = asyncio.run(ask())
    assert answers["/healthz"] == (200, '{"imports": 0}')
    assert answers["/readyz"] == (503, "not ready, waiting for:\n  start-up\n")
    assert answers["/elsewhere"][0] == 404


def _alert_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    alerts: dict[str, Any] = values["metrics"]["prometheusRule"]["alerts"]
    return alerts


def test_alert_settings_are_the_schemas() -> None:
    alerts = _alert_values()
    rule = _schema()["properties"]["metrics"]["properties"]["prometheusRule"]["properties"]
    # A name the schema does not know is refused, so that a misspelt one is not ignored.
    assert list(alerts) == rule["alerts"]["propertyNames"]["enum"]
    severity = rule["alerts"]["additionalProperties"]["properties"]["severity"]["pattern"]
    for name, settings in alerts.items():
        assert settings["enabled"] is True, name
        assert re.fullmatch(severity, settings["severity"]), name


def _runbook(name: str) -> str:
    return (RUNBOOKS / f"{name}.md").read_text()


@pytest.mark.parametrize("name", list(_alert_values()))
def test_every_alert_has_a_runbook(name: str) -> None:
    page = _runbook(name)
    assert page.startswith(f"# {name}\n")
    severity = _alert_values()[name]["severity"]
    assert f"**Severity:** {severity}." in page
    sections = re.findall(r"^## (.+)$", page, flags=re.MULTILINE)
    assert sections == ["What it means", "Impact", "Diagnosis", "Mitigation"]
    # The diagnosis gives commands to run, not only prose.
    assert "```sh\n" in page
    index = _runbook("README")
    assert f"| `{name}` | {severity} | [{name}.md]({name}.md) |" in index


def test_runbook_links_lead_to_pages() -> None:
    for page in RUNBOOKS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", page.read_text()):
            assert (RUNBOOKS / target).is_file(), f"{page.name} links {target}"


def _explained(page: str) -> set[str]:
    """The reasons a runbook's tables explain: those in backquotes in a row's first cell."""
    return {
        reason
        for cell in re.findall(r"^\| ([^|]+) \|", page, flags=re.MULTILINE)
        for reason in re.findall(r"`(\w+)`", cell)
    }


def test_runbooks_explain_every_reason_of_a_condition() -> None:
    # Ready=False of an import: a reason with a next step, or one that waits for a first
    # answer. LastKnownAddresses is Ready=True, the subject of its own page.
    not_ready = (set(advice.IMPORT_STEPS) - {"LastKnownAddresses"}) | resolve.PENDING
    assert not_ready - _explained(_runbook("SharedServiceImportsNotReady")) == set()
    # Connected=False of a RemoteCluster: the steps' reasons, those of signing in, and the
    # refusals of the connection's own checks.
    disconnected = set(advice.CLUSTER_STEPS) | set(signin.REASONS)
    disconnected |= {policy.SERVER_NOT_ALLOWED, kube.INVALID_RESPONSE}
    disconnected |= {kubeconfig.INSECURE, kubeconfig.INVALID}
    page = _runbook("SharedServicesRemoteClusterDisconnected")
    assert disconnected - _explained(page) == set()
    # What keeps an import on its last known addresses.
    kept = {"RemoteUnavailable", "HostnameUnresolved"} | resolve.GONE | resolve.PENDING
    assert kept - _explained(_runbook("SharedServiceImportsOnLastKnownAddresses")) == set()


def test_network_policy_values_are_the_schemas() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())["networkPolicy"]
    schema = _schema()["properties"]["networkPolicy"]
    properties = schema["properties"]
    assert set(values) == set(properties)
    assert set(values["egress"]) == set(properties["egress"]["properties"])
    assert set(values["egress"]["dns"]) == set(
        properties["egress"]["properties"]["dns"]["properties"]
    )
    assert set(values["ingress"]) == set(properties["ingress"]["properties"])
    # Off unless asked for, and then only with the API server's endpoints named: a policy
    # without them would cut the operator off from its own cluster.
    assert values["enabled"] is False
    assert values["egress"]["apiServer"] == values["egress"]["remoteClusters"] == []
    assert schema["if"] == {"properties": {"enabled": {"const": True}}, "required": ["enabled"]}
    assert schema["then"]["properties"]["egress"]["properties"]["apiServer"] == {"minItems": 1}
    template = (CHART / "templates" / "networkpolicy.yaml").read_text()
    assert "{{- if $policy.enabled }}" in template
    assert "fail" in template.split("apiVersion:")[0]


def _catalog(ready: tuple[str, str] | None, *, pending: int = 0, conflicts: int = 0) -> Any:
    obj: dict[str, Any] = {"metadata": {"name": "shop", "generation": 2}}
    if ready is not None:
        obj["status"] = {
            "observedGeneration": 2,
            "imported": 3,
            "pending": pending,
            "conflicts": conflicts,
            "conditions": [{"type": "Ready", "status": ready[0], "reason": ready[1]}],
        }
    return obj


@pytest.mark.parametrize(
    ("catalog", "expected"),
    [
        (_catalog(None), "Progressing"),
        (_catalog(("True", "Synced")), "Healthy"),
        (_catalog(("False", "Pending"), pending=2), "Progressing"),
        (_catalog(("False", "Connecting")), "Progressing"),
        (_catalog(("False", "Conflict"), conflicts=1), "Degraded"),
        (_catalog(("False", "RemoteClusterNotFound")), "Degraded"),
        (_catalog(("False", "InvalidSpec")), "Degraded"),
    ],
    ids=["new", "synced", "pending", "connecting", "conflict", "no-cluster", "invalid"],
)
def test_a_catalog_is_healthy_once_all_of_it_is_imported(catalog: Any, expected: str) -> None:
    assert health("SharedServiceCatalog", catalog) == expected
