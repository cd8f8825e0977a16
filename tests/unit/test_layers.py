"""kopf's handlers reach the operator through the manager alone.

The layers contract in pyproject.toml says what each module may import; this says the one
rule it cannot: the handlers, though above every layer, import only the manager, so that
kopf's part stays a thin adapter and every decision stays testable without kopf.
"""

from __future__ import annotations

import ast
from pathlib import Path

import shared_services

PACKAGE = Path(shared_services.__file__).parent


def _imported(module: Path) -> set[str]:
    """The package's modules that ``module`` imports, by their names in the package."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "shared_services":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "shared_services."
        ):
            found.add(str(node.module).split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {
                a.name.split(".")[1] for a in node.names if a.name.startswith("shared_services.")
            }
    return found


def test_the_handlers_import_only_the_manager() -> None:
    assert _imported(PACKAGE / "handlers.py") == {"manager"}


def test_the_check_sees_imports() -> None:
    assert {"handlers", "manager", "settings"} <= _imported(PACKAGE / "__main__.py")


def test_the_readme_code_map_names_every_module() -> None:
    readme = (PACKAGE.parents[1] / "README.md").read_text()
    missing = [
        p.name
        for p in sorted(PACKAGE.glob("*.py"))
        if p.name != "__init__.py"
        if f"`{p.name}`" not in readme
    ]
    assert not missing, f"not in the README's code map: {missing}"
