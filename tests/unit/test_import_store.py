"""The import store keeps each import's view, whoever puts it there.

The status writer stores the answer to its write by assignment; that answer is the whole
import (annotations, managed fields and all), and must not be what stays in memory.
"""

from __future__ import annotations

from shared_services.imports import Imports


def _body() -> dict[str, object]:
    return {
        "apiVersion": "sharedservices.io/v1alpha1",
        "kind": "SharedServiceImport",
        "metadata": {
            "name": "db",
            "namespace": "tenant",
            "uid": "u",
            "generation": 1,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "x" * 5000},
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"source": {"addresses": ["192.0.2.1"]}},
        "status": {"observedGeneration": 1},
    }


def test_an_assigned_import_is_kept_as_its_view() -> None:
    store = Imports()
    store[("tenant", "db")] = _body()
    kept = store[("tenant", "db")]
    assert "annotations" not in kept["metadata"]
    assert "managedFields" not in kept["metadata"]
    assert kept["spec"] == {"source": {"addresses": ["192.0.2.1"]}}
    assert kept["status"] == {"observedGeneration": 1}


def test_setdefault_keeps_the_view_and_the_first_body() -> None:
    store = Imports()
    first = store.setdefault(("tenant", "db"), _body())
    assert "annotations" not in first["metadata"]
    later = _body()
    later["status"] = {"observedGeneration": 2}
    assert store.setdefault(("tenant", "db"), later)["status"] == {"observedGeneration": 1}
