"""`make release` packages what a platform team pins: the chart and the plain manifests.

Run with the project's helm into a directory of the test's own: the chart's .tgz carries
the version, the manifests hold the namespace, the CRDs and the operator, the sums match,
and the commands to publish are printed. A version the files do not say is refused.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml

from deploykit import REPO
from harness.helm import ensure_helm

SCRIPT = REPO / "deploy" / "release.sh"


def _release(version: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), version, str(ensure_helm()), str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_a_release_is_packaged_and_told_how_to_publish(tmp_path: Path) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    result = _release(version, tmp_path)
    assert result.returncode == 0, result.stderr
    package = tmp_path / f"shared-services-operator-{version}.tgz"
    with tarfile.open(package) as archive:
        member = archive.extractfile("shared-services-operator/Chart.yaml")
        assert member is not None
        chart = yaml.safe_load(member.read())
    assert (chart["version"], chart["appVersion"]) == (version, version)
    manifests = tmp_path / f"shared-services-operator-{version}.yaml"
    kinds = [d["kind"] for d in yaml.safe_load_all(manifests.read_text()) if d]
    assert kinds[0] == "Namespace"
    assert kinds.count("CustomResourceDefinition") == 3  # imports, RemoteClusters, catalogs
    assert "Deployment" in kinds
    sums = (tmp_path / f"shared-services-operator-{version}.sha256").read_text().splitlines()
    for line in sums:
        digest, name = line.split()
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest
    assert f"git tag -a v{version}" in result.stdout
    assert "oci://<registry>/charts" in result.stdout
    assert f"<registry>/shared-services-operator:{version}" in result.stdout


def test_a_version_the_files_do_not_say_is_refused(tmp_path: Path) -> None:
    result = _release("99.0.0", tmp_path)
    assert result.returncode == 1
    assert "pyproject.toml says version" in result.stderr
    assert "CHANGELOG.md has no section '## [99.0.0]'" in result.stderr
    assert not list(tmp_path.iterdir())
    assert _release("latest", tmp_path).returncode == 2


def test_make_release_packages_the_version_the_files_say(tmp_path: Path) -> None:
    # The target a release manager types: VERSION and DIST reach the script, a wrong
    # VERSION fails make, and nothing of it lands outside DIST.
    if os.environ.get("SSO_HELM"):
        pytest.skip("make release builds its own helm; SSO_HELM names another")
    ensure_helm()
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]

    def make(wanted: str, out: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "-s", "-C", str(REPO), "release", f"VERSION={wanted}", f"DIST={out}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    result = make(version, tmp_path / "ok")
    assert result.returncode == 0, result.stderr
    with tarfile.open(tmp_path / "ok" / f"shared-services-operator-{version}.tgz") as archive:
        member = archive.extractfile("shared-services-operator/Chart.yaml")
        assert member is not None
        assert yaml.safe_load(member.read())["version"] == version
    refused = make("99.0.0", tmp_path / "refused")
    assert refused.returncode != 0
    assert f"Chart.yaml says version {version}, not 99.0.0" in refused.stderr
    assert not (tmp_path / "refused").exists()
