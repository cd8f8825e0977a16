"""Who the operator is, as it tells every API server it talks to.

Every request names the operator and its version in its User-Agent, the operator's own
client's and kopf's alike, so that an API server's audit log and its metrics say who sent
it; every write names the operator as its field manager too, so that ``managedFields`` say
who set each field. Both are fixed strings: a field manager that changed with the version
would make each upgrade look like another writer of every object the operator made.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path
from typing import Final

NAME: Final = "shared-services-operator"
# Where the package sits in a checkout of the repository (operator/shared_services/).
_PYPROJECT: Final = Path(__file__).resolve().parents[2] / "pyproject.toml"


def package_version() -> str:
    """The installed package's version; from a checkout's pyproject.toml when not installed.

    "unknown" when neither says it: a User-Agent without a version still names the operator.
    """
    try:
        return metadata.version(NAME)
    except metadata.PackageNotFoundError:
        pass
    try:
        project = tomllib.loads(_PYPROJECT.read_text())["project"]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return "unknown"
    if not isinstance(project, dict) or project.get("name") != NAME:
        return "unknown"  # some other project's file
    return str(project.get("version") or "unknown")


VERSION: Final = package_version()
# The User-Agent of every request, in the "product/version (comment)" form of RFC 9110. An
# API server that is not told a field manager takes the part before the first "/" as one.
USER_AGENT: Final = f"{NAME}/{VERSION} (python kopf)"
# The fieldManager of every write (POST, PUT and PATCH), status writes included.
FIELD_MANAGER: Final = NAME
