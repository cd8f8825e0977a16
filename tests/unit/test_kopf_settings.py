"""kopf is tuned for an operator of event handlers only: no diff is built on any event.

The empty diff base is safe only while no handler asks kopf what changed; the registry is
checked for that, so that adding a create/update/resume handler fails here first.
"""

from __future__ import annotations

import kopf

from shared_services import handlers
from shared_services.__main__ import NoDiffBase, kopf_settings


def test_no_diff_is_built_or_stored_for_an_event() -> None:
    storage = kopf_settings().persistence.diffbase_storage
    assert isinstance(storage, NoDiffBase)
    body = kopf.Body(
        {
            "metadata": {"name": "pg", "namespace": "app", "labels": {"a": "b"}},
            "spec": {"remoteService": {"namespace": "db", "name": "pg"}, "ports": [{"port": 1}]},
        }
    )
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence={})
    assert not patch


def test_the_operator_registers_no_handler_that_reads_a_diff() -> None:
    assert handlers.import_event is not None  # registered by importing the module
    registry = kopf.get_default_registry()
    assert not registry._changing.get_all_handlers()
    assert not registry._spawning.get_all_handlers()
    assert {h.id for h in registry._watching.get_all_handlers()} >= {
        "import_event",
        "cluster_event",
        "catalog_event",
    }
