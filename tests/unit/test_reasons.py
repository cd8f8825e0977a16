"""Condition reasons are one vocabulary: the enumeration, its steps, the code and the README.

* Every reason the operator writes is a member of :class:`advice.Reason`: no module spells
  one as a bare string (a misspelt reason would be a new, undocumented one).
* Each member decides its next step on each kind of object, beside it.
* The README's Status section names every member, and names no reason that is none.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from shared_services import advice
from shared_services.advice import Reason

PACKAGE = Path(advice.__file__).parent
README = Path(__file__).resolve().parents[2] / "README.md"
# Texts that equal a reason but are something else: connection states, condition types,
# a catalog entry's state, and the CRDs' column names.
NOT_REASONS = {
    ("remote.py", "Pending"),
    ("remote.py", "Connected"),
    ("clusters.py", "Pending"),
    ("clusters.py", "Connected"),
    ("status.py", "Connected"),
    ("api.py", "Pending"),
    ("api.py", "Conflict"),
    ("crdgen.py", "Connected"),
    ("crdgen.py", "Pending"),
    ("crdgen.py", "Conflicts"),
}


def test_no_module_spells_a_reason_as_a_bare_string() -> None:
    texts = {r.value for r in Reason}
    bare = [
        f"{path.name}:{node.lineno}: {node.value!r}"
        for path in sorted(PACKAGE.glob("*.py"))
        if path.name != "advice.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant)
        and node.value in texts
        and (path.name, node.value) not in NOT_REASONS
    ]
    assert not bare, "use advice.Reason:\n" + "\n".join(bare)


def test_a_member_is_its_text_and_carries_its_steps() -> None:
    assert Reason.REMOTE_CLUSTER_NOT_FOUND == "RemoteClusterNotFound"
    assert Reason("InvalidSpec") is Reason.INVALID_SPEC
    assert Reason.INVALID_SPEC.steps.imports != Reason.INVALID_SPEC.steps.clusters
    assert Reason.CONNECTING.steps == advice.Steps()  # it only waits
    assert advice.IMPORT_STEPS["NotExported"] == Reason.NOT_EXPORTED.steps.imports


def _status_section() -> str:
    text = README.read_text()
    return text[text.index("### Status") : text.index("## Running it")]


def test_the_readme_names_every_reason_and_no_other() -> None:
    status = _status_section()
    named = set(re.findall(r"`([A-Z][A-Za-z]+)`", status))
    # The condition types and the Event's reason, which are not condition reasons.
    others = {"Ready", "SourceResolved", "AddressesChanged"}
    assert {r.value for r in Reason} - named == set(), "members the README does not name"
    assert named - {r.value for r in Reason} - others == set(), "README names unknown reasons"
