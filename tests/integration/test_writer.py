"""The writer never changes an object it did not write, even when its cache says otherwise.

Between the moment the operator's cache saw its own Service, EndpointSlice or Endpoints and
the moment it writes, somebody may delete the object and create their own under the same
name. Here the cache is made stale on purpose, and deterministically: a writer's informers
are stopped once they hold the operator's objects, the objects are replaced by foreign ones,
and the writer is asked to move the endpoints. The foreign objects must come out exactly as
they went in (same resourceVersion, none of the operator's labels or owners), and the
outcome must report the conflict. The session's operator is stopped meanwhile, so that the
only writer is the one under test.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harness.cluster import Cluster
from kit import Kit
from shared_services import builders, views
from shared_services.informer import Informer, InformerGroup
from shared_services.kube import AsyncKube, Kube
from shared_services.writer import (
    ENDPOINT_SLICE,
    ENDPOINTS,
    MANAGED_KINDS,
    SERVICE,
    Kind,
    Outcome,
    Writer,
)

PORTS = [{"port": 80}]


def _foreign(kind: Kind, name: str) -> dict[str, Any]:
    """A same-named object of somebody else's: no managed-by label, no owner."""
    metadata = {"name": name, "labels": {"owner": "somebody-else"}}
    if kind is SERVICE:
        return {"metadata": metadata, "spec": {"ports": [{"port": 80}]}}
    if kind is ENDPOINT_SLICE:
        return {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": metadata,
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["198.51.100.66"]}],
            "ports": [{"port": 80, "protocol": "TCP"}],
        }
    return {
        "metadata": {
            **metadata,
            "labels": {**metadata["labels"], builders.SKIP_MIRROR_LABEL: "true"},
        },
        "subsets": [{"addresses": [{"ip": "198.51.100.66"}], "ports": [{"port": 80}]}],
    }


def _stale_writer(kube: Kube, namespace: str) -> Writer:
    """A writer whose caches hold the operator's objects of ``namespace``, then freeze."""
    informers: dict[Kind, Informer] = {
        kind: Informer(
            kube,
            kind.collection(namespace),
            name=f"test {kind.plural}",
            params={"labelSelector": builders.managed_selector()},
            index_label=builders.IMPORT_LABEL,
            transform=views.managed(kind.kind),  # as the operator's caches keep them
        ).start()
        for kind in MANAGED_KINDS
    }
    for informer in informers.values():
        assert informer.synced.wait(30), f"{informer.name} did not list"
    for informer in informers.values():
        informer.stop()
        informer.join()
    groups = {kind: InformerGroup({namespace: i}) for kind, i in informers.items()}
    return Writer(AsyncKube(kube), groups)


async def _apply(writer: Writer, **options: Any) -> Outcome:
    """One apply of the writer, its connections closed after it."""
    try:
        return await writer.apply(**options)
    finally:
        await writer.kube.close()


@pytest.mark.parametrize(
    "replaced", [(SERVICE, ENDPOINT_SLICE, ENDPOINTS), (ENDPOINT_SLICE, ENDPOINTS)]
)
def test_a_replaced_object_is_not_taken_over(
    kit: Kit, workload: Cluster, replaced: tuple[Kind, ...]
) -> None:
    created = kit.create_import("db", {"source": {"addresses": ["203.0.113.10"]}, "ports": PORTS})
    kit.wait_condition("db", "Ready", "True", "Synced")
    kit.wait_addresses("db", {"IPv4": ["203.0.113.10"]})
    kit.operator.stop()
    kube = Kube(workload.api_client())
    try:
        writer = _stale_writer(kube, kit.namespace)
        names = {SERVICE: "db", ENDPOINT_SLICE: "db-ipv4", ENDPOINTS: "db"}
        versions: dict[str, str] = {}
        for kind in replaced:
            kube.delete(kind.path(kit.namespace, names[kind]))
            body = {
                "apiVersion": f"{kind.group + '/' if kind.group else ''}{kind.version}",
                "kind": kind.kind,
            }
            foreign = kube.create(
                kind.collection(kit.namespace), {**body, **_foreign(kind, names[kind])}
            )
            versions[kind.kind] = foreign["metadata"]["resourceVersion"]

        owner = builders.Owner(kit.namespace, "db", created["metadata"]["uid"])
        desired = builders.build(
            owner=owner,
            service_name="db",
            ports=[builders.ResolvedPort(name=None, port=80, target_port=80, protocol="TCP")],
            addresses=["203.0.113.20"],
        )
        outcome = asyncio.run(_apply(writer, owner=owner, desired=desired))

        for kind in replaced:
            now = kube.get(kind.path(kit.namespace, names[kind]))
            assert now is not None
            labels = now["metadata"].get("labels") or {}
            assert now["metadata"]["resourceVersion"] == versions[kind.kind], (
                f"the foreign {kind.kind} was changed: {now['metadata']}"
            )
            assert builders.MANAGED_BY_LABEL not in labels
            assert not now["metadata"].get("ownerReferences")
        assert outcome.conflicts, "the conflict was not reported"
        assert outcome.writes == []
    finally:
        kube.api_client.close()
        kit.operator.start()


def test_free_names_are_known_without_asking(kit: Kit) -> None:
    """A new import's names are checked against the watch of every object's name.

    Each of them (its Service, Endpoints and EndpointSlice) must be free before anything is
    created, and was asked of the API server one by one: three requests per new import, a
    third of all that 10,000 new imports cost. Names that nothing holds now take none; a
    name that something holds is still asked, which ``test_names_taken`` shows.
    """
    imports = 10

    def gets() -> float:
        return kit.operator.metric_sum(
            "shared_services_api_requests_total", target="local", verb="GET"
        )

    before = gets()
    for i in range(imports):
        kit.create_import(
            f"db-{i}", {"source": {"addresses": [f"203.0.113.{i + 1}"]}, "ports": PORTS}
        )
    for i in range(imports):
        kit.wait_condition(f"db-{i}", "Ready", "True", "Synced")
        kit.wait_addresses(f"db-{i}", {"IPv4": [f"203.0.113.{i + 1}"]})
    # Another test's namespace going away, or a resync, may read something meanwhile; a
    # name check per object would be 30.
    asked = gets() - before
    assert asked < imports, f"{asked:.0f} GETs for {imports} new imports with free names"
