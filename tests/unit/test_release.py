"""One version, said the same everywhere a release carries it, and files that point only at
what exists.

A platform team pins a release by its version: the chart's, the image's, the package's.
If one of them said another number, a cluster would run something other than what was
pinned. `make release` refuses to package unless they agree; this holds them together
between releases too.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pydantic
import pytest
import yaml

import shared_services.api

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "shared-services-operator"


def _version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def test_every_place_says_the_same_version() -> None:
    version = _version()
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == version
    assert chart["appVersion"] == version
    # The chart's image tag defaults to appVersion; nothing pins another.
    assert yaml.safe_load((CHART / "values.yaml").read_text())["image"]["tag"] == ""
    (image,) = yaml.safe_load(chart["annotations"]["artifacthub.io/images"])
    assert image["image"] == f"shared-services-operator:{version}"
    manifests = (REPO / "deploy" / "manifests" / "operator.yaml").read_text()
    assert re.findall(r"image: (\S+)", manifests) == [f"shared-services-operator:{version}"]
    assert f'app.kubernetes.io/version: "{version}"' in manifests
    lock = (REPO / "uv.lock").read_text()
    assert f'name = "shared-services-operator"\nversion = "{version}"' in lock
    assert f"## [{version}]" in (REPO / "CHANGELOG.md").read_text()


def test_the_install_instructions_name_the_current_version() -> None:
    # Instructions are copied as they stand; one naming an older version installs that.
    version = _version()
    said = {
        "the chart's README": (CHART / "README.md").read_text(),
        "the Dockerfile": (REPO / "Dockerfile").read_text(),
    }
    patterns = (
        r"shared-services-operator[:-](\d+\.\d+\.\d+)\b",
        r"--version (\d+\.\d+\.\d+)\b",
        r"`v(\d+\.\d+\.\d+)`",
    )
    found = {
        where: {v for p in patterns for v in re.findall(p, text)} for where, text in said.items()
    }
    assert found["the Dockerfile"], "the Dockerfile's build example names no version"
    assert found["the chart's README"], "the chart's README names no version to install"
    stale = {
        where: versions - {version} for where, versions in found.items() if versions - {version}
    }
    assert not stale, f"these name versions other than {version}: {stale}"


def test_a_license_is_shipped_as_declared() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
    assert declared == "Apache-2.0"
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["annotations"]["artifacthub.io/license"] == declared


def test_the_chart_says_where_it_comes_from() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["home"].startswith("https://")
    assert chart["sources"]
    assert chart["maintainers"][0]["name"]
    changes = yaml.safe_load(chart["annotations"]["artifacthub.io/changes"])
    assert changes
    assert {c["kind"] for c in changes} <= {
        "added",
        "changed",
        "deprecated",
        "removed",
        "fixed",
        "security",
    }
    crds = yaml.safe_load(chart["annotations"]["artifacthub.io/crds"])
    assert {c["kind"] for c in crds} == {"SharedServiceImport", "RemoteCluster"}


def test_the_chart_shows_examples_the_api_accepts() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    examples = yaml.safe_load(chart["annotations"]["artifacthub.io/crdsExamples"])
    models: dict[str, type[pydantic.BaseModel]] = {
        "SharedServiceImport": shared_services.api.ImportSpec,
        "RemoteCluster": shared_services.api.RemoteClusterSpec,
    }
    assert sorted(e["kind"] for e in examples) == sorted(models)
    for example in examples:
        assert example["apiVersion"] == "sharedservices.io/v1alpha1"
        models[example["kind"]].model_validate(example["spec"])


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
    )


def _exists(revision: str) -> bool:
    refs = (f"refs/heads/{revision}", f"refs/tags/{revision}", f"refs/remotes/origin/{revision}")
    return any(_git("rev-parse", "--verify", "--quiet", ref).returncode == 0 for ref in refs)


def test_argo_cd_files_name_only_revisions_that_exist() -> None:
    revisions = {
        m
        for path in (REPO / "deploy" / "argocd").glob("*.yaml")
        for m in re.findall(r"targetRevision: (\S+)", path.read_text())
    }
    # One revision for all of them: the operator and the imports from the same commit.
    assert len(revisions) == 1, f"the Argo CD files name several revisions: {revisions}"
    if _git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout: no branches or tags to look in")
    missing = [r for r in revisions if not _exists(r)]
    if missing and _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        # A CI checkout of one commit holds no branches; it cannot tell what is missing.
        pytest.skip(f"a shallow checkout holds no ref {missing} to look for")
    assert not missing, f"no branch or tag of this repository is called {missing}"
