"""What installing, upgrading and uninstalling the chart does to its CRDs, on a real API server.

The chart renders the CRDs as templates, since Helm installs a chart's crds/ folder once and
never upgrades it, and marks them to be kept. Pinned here:

- ``helm install`` creates the CRDs that the cluster's Kubernetes release accepts (on 1.30
  the variant without CEL's IP library, which that API server refuses: shown too), marked
  to be kept; a first install with remoteClusters creates those as well, although the API
  server learns their kind only during the install;
- ``helm upgrade`` of a chart whose CRD gained a field applies the new field;
- ``helm uninstall`` leaves the CRDs, an import and the Service it owns, in a cluster whose
  garbage collector is shown to delete the Service of an import that does go, and an
  install under the same name takes the CRDs back;
- with ``crds.enabled=false`` the release creates no CRD;
- CRDs that an install of the chart's former crds/ folder created are taken into the
  release, by ``helm upgrade --reuse-values`` once they carry the labels and annotations
  that the chart's README gives.

The module brings a workload cluster of its own, of the release ``SSO_K8S_RELEASE`` names
(as the tests marked ``releases`` do): CRDs are cluster-scoped, and the session's cluster
has its own, installed without Helm.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from deploykit import CHART, REPO, Helm, kubectl, status_of
from harness.binaries import ensure_binaries, workload_release
from harness.cluster import Cluster, start_clusters
from harness.helm import ensure_helm
from kit import GROUP, VERSION, server_minor
from shared_services import crdgen
from support import eventually

pytestmark = pytest.mark.releases

IMPORTS = f"sharedserviceimports.{GROUP}"
REMOTE_CLUSTERS = f"remoteclusters.{GROUP}"
CATALOGS = f"sharedservicecatalogs.{GROUP}"
CRD_NAMES = (IMPORTS, REMOTE_CLUSTERS, CATALOGS)
KEEP = {
    "helm.sh/resource-policy": "keep",
    "argocd.argoproj.io/sync-options": "Prune=false,Delete=false",
}


@dataclass(frozen=True)
class Workload:
    """This module's cluster, an admin client of it, and its Kubernetes minor release."""

    cluster: Cluster
    api: k8s.ApiClient
    kubeconfig: Path
    minor: int


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workload]:
    base = tmp_path_factory.mktemp("chart-crds")
    (cluster,) = start_clusters(
        ["chart-crds"], bin_dir=ensure_binaries(workload_release()), base_dir=base
    )
    api = cluster.api_client()
    try:
        yield Workload(
            cluster=cluster,
            api=api,
            kubeconfig=cluster.write_kubeconfig(base / "admin.kubeconfig"),
            minor=server_minor(api),
        )
    finally:
        api.close()
        cluster.stop()


@pytest.fixture
def extensions(own_cluster: Workload) -> Iterator[Any]:
    """The CRD API, with no CRD of the project in the cluster before the test, nor after."""
    # Any: the typed client's models are not what these tests pass and read (plain dicts).
    api: Any = k8s.ApiextensionsV1Api(own_cluster.api)

    def remove() -> None:
        for name in CRD_NAMES:
            if status_of(api.delete_custom_resource_definition, name) not in (200, 404):
                raise AssertionError(f"cannot delete {name}")
        eventually(
            lambda: all(
                status_of(api.read_custom_resource_definition, n) == 404 for n in CRD_NAMES
            ),
            timeout=60,
        )

    remove()
    yield api
    remove()


@pytest.fixture
def helm(own_cluster: Workload, tmp_path: Path) -> Helm:
    return Helm(ensure_helm(), home=tmp_path / "helm", kubeconfig=own_cluster.kubeconfig)


def _release() -> tuple[str, str]:
    suffix = secrets.token_hex(3)
    return f"crds-{suffix}", f"sso-crds-{suffix}"


def _install(helm: Helm, release: str, namespace: str, *args: str, chart: Path = CHART) -> str:
    return helm.run(
        "install", release, str(chart), "-n", namespace, "--create-namespace", *args
    ).stdout


def _crd(extensions: Any, name: str) -> dict[str, Any]:
    """The CRD as the API server returns it, not as the typed client would remodel it."""
    response = extensions.read_custom_resource_definition(name, _preload_content=False)
    stored: dict[str, Any] = json.loads(response.data)
    return stored


def _generated(minor: int, name: str, *, root: Path = REPO / "crds") -> dict[str, Any]:
    """The CRD ``name`` of the repository's crds/ that Kubernetes 1.<minor> accepts."""
    for path in crdgen.variant_dir(minor, root=root).glob("*.yaml"):
        crd: dict[str, Any] = yaml.safe_load(path.read_text())
        if crd["metadata"]["name"] == name:
            return crd
    raise AssertionError(f"no {name} for 1.{minor}")


def _served(extensions: Any, name: str) -> bool:
    conditions = _crd(extensions, name)["status"].get("conditions", [])
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def _custom(cluster: Workload) -> Any:
    custom: Any = k8s.CustomObjectsApi(cluster.api)
    return custom


def _import(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SharedServiceImport",
        "metadata": {"name": name},
        "spec": {
            "source": {"addresses": ["192.0.2.10"]},
            "ports": [{"name": "postgres", "port": 5432}],
            **spec,
        },
    }


def test_only_the_variant_for_its_release_is_accepted(
    own_cluster: Workload, extensions: Any, tmp_path: Path
) -> None:
    # On 1.30 the full CRD is refused outright; from 1.31 on it is the one installed.
    full = _generated(crdgen.IP_LIBRARY_MINOR, IMPORTS)
    dry_run = kubectl(
        own_cluster.kubeconfig,
        "create",
        "--dry-run=server",
        "-f",
        "-",
        stdin=yaml.safe_dump(full),
        check=False,
    )
    if own_cluster.minor < crdgen.IP_LIBRARY_MINOR:
        assert dry_run.returncode != 0
        assert "undeclared reference to 'isIP'" in dry_run.stderr, dry_run.stderr
    else:
        assert dry_run.returncode == 0, dry_run.stderr
    variant = _generated(own_cluster.minor, IMPORTS)
    kubectl(
        own_cluster.kubeconfig,
        "create",
        "--dry-run=server",
        "-f",
        "-",
        stdin=yaml.safe_dump(variant),
    )


def test_install_creates_the_crds_and_upgrade_changes_them(
    own_cluster: Workload, extensions: Any, helm: Helm, tmp_path: Path
) -> None:
    release, namespace = _release()
    remote = f"{release}-central"
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({"remoteClusters": [{"name": remote, "existingSecret": "central"}]})
    )
    custom = _custom(own_cluster)
    _install(helm, release, namespace, "-f", str(values))
    try:
        for name in CRD_NAMES:
            stored = _crd(extensions, name)
            assert KEEP.items() <= stored["metadata"]["annotations"].items()
            assert stored["metadata"]["labels"]["app.kubernetes.io/instance"] == release
            generated = _generated(own_cluster.minor, name)
            assert {k: v for k, v in stored["spec"].items() if k != "conversion"} == (
                generated["spec"]
            )
        # The RemoteCluster's kind was unknown when the install began: created after the
        # CRDs, it is there all the same.
        created = custom.get_cluster_custom_object(GROUP, VERSION, "remoteclusters", remote)
        assert created["spec"]["kubeconfigSecretRef"]["name"] == "central"

        # The same chart, but the import's spec gained a field.
        chart = tmp_path / "chart"
        shutil.copytree(CHART, chart)
        edited = crdgen.variant_dir(own_cluster.minor, root=chart / "files" / "crds")
        target = edited / f"{GROUP}_sharedserviceimports.yaml"
        crd = yaml.safe_load(target.read_text())
        spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        spec["properties"]["comment"] = {
            "description": "A field the running CRD does not have yet.",
            "type": "string",
            "maxLength": 64,
        }
        target.write_text("# edited by the test\n---\n" + yaml.safe_dump(crd))
        helm.run("upgrade", release, str(chart), "-n", namespace, "--reuse-values")

        upgraded = _crd(extensions, IMPORTS)
        properties = upgraded["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
        assert properties["spec"]["properties"]["comment"]["maxLength"] == 64
        assert KEEP.items() <= upgraded["metadata"]["annotations"].items()
        # Served with it: the API server keeps the field instead of pruning it, once it
        # has taken up the new schema.
        apps = f"{release}-apps"
        core: Any = k8s.CoreV1Api(own_cluster.api)
        core.create_namespace({"metadata": {"name": apps}})

        def stored_with_comment() -> dict[str, Any]:
            plural = "sharedserviceimports"
            created: dict[str, Any] = custom.create_namespaced_custom_object(
                GROUP, VERSION, apps, plural, _import("db", comment="kept")
            )
            if "comment" in created["spec"]:
                return created
            custom.delete_namespaced_custom_object(GROUP, VERSION, apps, plural, "db")
            return {}

        stored_import = eventually(stored_with_comment, timeout=30, retry_on=(k8s.ApiException,))
        assert stored_import["spec"]["comment"] == "kept"
        # The upgrade took the RemoteCluster into the release as an ordinary object.
        manifest = helm.run("get", "manifest", release, "-n", namespace).stdout
        assert f"name: {remote}" in manifest
        adopted = custom.get_cluster_custom_object(GROUP, VERSION, "remoteclusters", remote)
        assert "helm.sh/hook" not in adopted["metadata"].get("annotations", {})
    finally:
        helm.run("uninstall", release, "-n", namespace)
    # Uninstalled with the release, unlike the CRDs.
    assert (
        status_of(custom.get_cluster_custom_object, GROUP, VERSION, "remoteclusters", remote) == 404
    )
    for name in CRD_NAMES:
        assert "deletionTimestamp" not in _crd(extensions, name)["metadata"]


def _owned_service(core: Any, owner: dict[str, Any]) -> None:
    """The Service the operator would make for ``owner``, made here by hand."""
    name, namespace = owner["metadata"]["name"], owner["metadata"]["namespace"]
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {
                "name": name,
                "labels": {
                    "app.kubernetes.io/managed-by": "shared-services-operator",
                    f"{GROUP}/import": name,
                },
                "ownerReferences": [
                    {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": "SharedServiceImport",
                        "name": name,
                        "uid": owner["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {"ports": [{"name": "postgres", "port": 5432, "protocol": "TCP"}]},
        },
    )


def test_uninstall_leaves_the_crds_the_imports_and_their_services(
    own_cluster: Workload, extensions: Any, helm: Helm
) -> None:
    release, namespace = _release()
    _install(helm, release, namespace)
    eventually(lambda: all(_served(extensions, n) for n in CRD_NAMES), timeout=30)
    core: Any = k8s.CoreV1Api(own_cluster.api)
    custom = _custom(own_cluster)
    apps = f"{release}-apps"
    core.create_namespace({"metadata": {"name": apps}})
    owners: dict[str, dict[str, Any]] = {}
    for name in ("kept", "gone", "probe"):
        body = _import(name)

        def create(body: dict[str, Any] = body) -> dict[str, Any]:
            created: dict[str, Any] = custom.create_namespaced_custom_object(
                GROUP, VERSION, apps, "sharedserviceimports", body
            )
            return created

        owners[name] = eventually(create, retry_on=(k8s.ApiException,))
        _owned_service(core, owners[name])

    def collected(name: str) -> bool:
        return bool(status_of(core.read_namespaced_service, name, apps) == 404)

    # The garbage collector runs here: the Service of an import that goes goes with it.
    custom.delete_namespaced_custom_object(GROUP, VERSION, apps, "sharedserviceimports", "gone")
    eventually(lambda: collected("gone"), timeout=60)

    result = helm.run("uninstall", release, "-n", namespace)
    assert "kept due to the resource policy" in result.stdout
    for name in CRD_NAMES:
        assert "deletionTimestamp" not in _crd(extensions, name)["metadata"]
    # Still collecting after the uninstall, so what it leaves is left for good.
    custom.delete_namespaced_custom_object(GROUP, VERSION, apps, "sharedserviceimports", "probe")
    eventually(lambda: collected("probe"), timeout=60)
    kept = custom.get_namespaced_custom_object(GROUP, VERSION, apps, "sharedserviceimports", "kept")
    assert kept["metadata"]["uid"] == owners["kept"]["metadata"]["uid"]
    service = core.read_namespaced_service("kept", apps)
    assert service.metadata.owner_references[0].uid == kept["metadata"]["uid"]
    # Installed again under its name, the release takes the very same CRDs back.
    uids = {name: _crd(extensions, name)["metadata"]["uid"] for name in CRD_NAMES}
    _install(helm, release, namespace)
    try:
        assert {name: _crd(extensions, name)["metadata"]["uid"] for name in CRD_NAMES} == uids
        manifest = helm.run("get", "manifest", release, "-n", namespace).stdout
        assert manifest.count("kind: CustomResourceDefinition") == len(CRD_NAMES)
    finally:
        helm.run("uninstall", release, "-n", namespace)


def test_without_crds_the_release_makes_none(
    own_cluster: Workload, extensions: Any, helm: Helm
) -> None:
    release, namespace = _release()
    _install(helm, release, namespace, "--set", "crds.enabled=false")
    try:
        manifest = helm.run("get", "manifest", release, "-n", namespace).stdout
        assert "kind: CustomResourceDefinition" not in manifest
        for name in CRD_NAMES:
            assert status_of(extensions.read_custom_resource_definition, name) == 404
    finally:
        helm.run("uninstall", release, "-n", namespace)


def _former_chart(directory: Path, minor: int) -> Path:
    """The chart as it was before its CRDs became templates: a crds/ folder, no crds values."""
    chart = directory / "former"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "crds.yaml").unlink()
    (chart / "crds").mkdir()
    for path in crdgen.variant_dir(minor, root=chart / "files" / "crds").glob("*.yaml"):
        shutil.copy(path, chart / "crds" / path.name)
    shutil.rmtree(chart / "files")
    values = yaml.safe_load((chart / "values.yaml").read_text())
    del values["crds"]
    (chart / "values.yaml").write_text(yaml.safe_dump(values))
    return chart


def test_crds_of_the_former_crds_folder_are_taken_over_as_the_readme_says(
    own_cluster: Workload, extensions: Any, helm: Helm, tmp_path: Path
) -> None:
    release, namespace = _release()
    former = _former_chart(tmp_path, own_cluster.minor)
    _install(helm, release, namespace, chart=former)
    manifest = helm.run("get", "manifest", release, "-n", namespace).stdout
    assert "kind: CustomResourceDefinition" not in manifest
    uids = {name: _crd(extensions, name)["metadata"]["uid"] for name in CRD_NAMES}
    try:
        # Helm created them from crds/, without its ownership metadata, and will not take
        # them into the release on its own. --reuse-values: as the README's upgrades do, with
        # values that have no crds.* at all.
        upgrade = ("upgrade", release, str(CHART), "-n", namespace, "--reuse-values")
        refused = helm.run(*upgrade, check=False)
        assert refused.returncode != 0
        assert "invalid ownership metadata" in refused.stderr, refused.stderr
        # The chart's README, "Taking over the CRDs of an earlier install".
        crds = [f"crd/{name}" for name in CRD_NAMES]
        kubectl(
            own_cluster.kubeconfig,
            "label",
            *crds,
            "app.kubernetes.io/managed-by=Helm",
            "--overwrite",
        )
        kubectl(
            own_cluster.kubeconfig,
            "annotate",
            *crds,
            f"meta.helm.sh/release-name={release}",
            f"meta.helm.sh/release-namespace={namespace}",
            "--overwrite",
        )
        helm.run(*upgrade)
        for name in CRD_NAMES:
            stored = _crd(extensions, name)
            assert stored["metadata"]["uid"] == uids[name]  # the same objects, not new ones
            assert KEEP.items() <= stored["metadata"]["annotations"].items()
            assert stored["metadata"]["labels"]["app.kubernetes.io/instance"] == release
        manifest = helm.run("get", "manifest", release, "-n", namespace).stdout
        assert manifest.count("kind: CustomResourceDefinition") == len(CRD_NAMES)
    finally:
        helm.run("uninstall", release, "-n", namespace)
    assert {name: _crd(extensions, name)["metadata"]["uid"] for name in CRD_NAMES} == uids
