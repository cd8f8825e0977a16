"""The import store keeps each import's view, whoever puts it there.

The status writer stores the answer to its write by assignment; that answer is the whole
import (annotations, managed fields and all), and must not be what stays in memory.
"""

from __future__ import annotations

from typing import cast

from shared_services.api import JSON, ImportKey
from shared_services.imports import Imports, ImportStore
from shared_services.kube import Kube


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


def _import(version: str, generation: int, ready: str) -> JSON:
    return {
        "metadata": {
            "namespace": "apps",
            "name": "db",
            "uid": "u1",
            "generation": generation,
            "resourceVersion": version,
        },
        "spec": {"source": {"addresses": ["192.0.2.10"]}, "ports": [{"port": 5432}]},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def test_the_echo_of_a_status_write_leaves_the_store_as_the_writer_put_it() -> None:
    changed: list[ImportKey] = []
    store = ImportStore(cast(Kube, None), namespaces=(), on_change=changed.append)
    store.active = True  # leading: changes worth a sync are passed on
    store.event("ADDED", _import("1", 1, "Unknown"))
    assert changed == [("apps", "db")]
    written = _import("2", 1, "True")
    store.objects[("apps", "db")] = written  # the status writer puts its answer in
    kept = store.objects[("apps", "db")]
    store.event("MODIFIED", _import("2", 1, "True"))  # kopf delivers its echo
    assert store.objects[("apps", "db")] is kept  # not viewed and stored again
    assert changed == [("apps", "db")]  # and not worth a sync
    # A later change by someone else is stored; a new generation is worth a sync.
    store.event("MODIFIED", _import("3", 2, "True"))
    assert store.objects[("apps", "db")]["metadata"]["resourceVersion"] == "3"
    assert changed == [("apps", "db"), ("apps", "db")]
