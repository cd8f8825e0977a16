"""A write's own echo reaches no callback, even when it outruns the write's answer.

The writer caches each answer it gets, so that the watch event of the same resourceVersion
is known news. But the API server can deliver that event before the writer has the answer
in hand; then there is nothing to match yet, and the echo would cost a sync that finds
nothing to do (at start-up, one for about every import). Here that order is forced: each
write waits, before caching its answer, until the watch has delivered the echo. The
informer must report none of those echoes, and must still report somebody else's change
that came while a write was in flight.

The informer's own tests write ConfigMaps, which the session's operator does not watch; the
writer's test writes an import's managed objects with that operator stopped.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.cluster import Cluster
from kit import Kit
from shared_services import builders
from shared_services.api import JSON
from shared_services.informer import Informer, InformerGroup, object_key
from shared_services.kube import AsyncKube, Kube
from shared_services.writer import MANAGED_KINDS, Kind, Outcome, Writer

PORTS = [{"port": 80}]


class Recorded:
    """The callbacks informers made, from their threads or a writer's.

    With ``name``, only those about that object: a new namespace also gets the cluster's
    root CA as a ConfigMap.
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self.events: list[tuple[str, str]] = []
        self._changed = threading.Condition()

    def __call__(self, kind: str, obj: JSON) -> None:
        if self.name is not None and obj["metadata"]["name"] != self.name:
            return
        with self._changed:
            self.events.append((kind, obj["metadata"]["resourceVersion"]))
            self._changed.notify_all()

    def wait_for(self, version: str, timeout: float = 30) -> None:
        """Until a callback reported ``version``."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: any(v == version for _, v in self.events), timeout
            ):
                pytest.fail(f"no callback reported resourceVersion {version}: {self.events}")


@pytest.fixture
def watched(workload: Cluster, namespace: str) -> Iterator[tuple[Kube, Informer, Recorded]]:
    kube = Kube(workload.api_client())
    recorded = Recorded("echo")
    informer = Informer(
        kube, f"/api/v1/namespaces/{namespace}/configmaps", name="test", on_event=recorded
    ).start()
    try:
        assert informer.synced.wait(30), "the informer did not list"
        yield kube, informer, recorded
    finally:
        informer.stop()
        informer.join()
        kube.api_client.close()


def _until_cached(informer: Informer, key: str, version: str) -> None:
    """Until the watch has delivered ``version`` of ``key`` to the cache."""
    deadline = time.monotonic() + 30
    while (informer.get(key) or {}).get("metadata", {}).get("resourceVersion") != version:
        assert time.monotonic() < deadline, f"the watch did not deliver {version}"
        time.sleep(0.01)


def _cached_after_echo(informer: Informer, key: str, answer: JSON) -> None:
    """Cache a write's answer only once the watch has delivered its event."""
    _until_cached(informer, key, answer["metadata"]["resourceVersion"])
    informer.put(answer)


def test_an_echo_that_outruns_the_answer_is_not_reported(
    watched: tuple[Kube, Informer, Recorded], namespace: str
) -> None:
    kube, informer, recorded = watched
    collection = f"/api/v1/namespaces/{namespace}/configmaps"
    key = f"{namespace}/echo"
    with informer.writing(key):
        answer = kube.create(collection, {"metadata": {"name": "echo"}, "data": {"n": "0"}})
        _cached_after_echo(informer, key, answer)
    for n in range(1, 6):
        with informer.writing(key):
            answer = kube.patch(f"{collection}/echo", {"data": {"n": str(n)}})
            _cached_after_echo(informer, key, answer)

    # Somebody else's change, after all of ours in the watch's order.
    foreign = kube.patch(f"{collection}/echo", {"data": {"by": "somebody-else"}})
    recorded.wait_for(foreign["metadata"]["resourceVersion"])
    assert recorded.events == [("MODIFIED", foreign["metadata"]["resourceVersion"])]


def test_a_change_made_during_a_write_is_still_reported(
    watched: tuple[Kube, Informer, Recorded], namespace: str
) -> None:
    kube, informer, recorded = watched
    collection = f"/api/v1/namespaces/{namespace}/configmaps"
    key = f"{namespace}/echo"
    created = kube.create(collection, {"metadata": {"name": "echo"}, "data": {"n": "0"}})
    recorded.wait_for(created["metadata"]["resourceVersion"])
    with informer.writing(key):
        foreign = kube.patch(f"{collection}/echo", {"data": {"by": "somebody-else"}})
        _until_cached(informer, key, foreign["metadata"]["resourceVersion"])  # held
        answer = kube.patch(f"{collection}/echo", {"data": {"n": "1"}})
        _cached_after_echo(informer, key, answer)
    assert recorded.events == [
        ("ADDED", created["metadata"]["resourceVersion"]),
        ("MODIFIED", foreign["metadata"]["resourceVersion"]),
    ]


class EchoFirst(AsyncKube):
    """A client that hands each write's answer back only once the watch delivered its echo."""

    informers: dict[str, Informer]

    async def request(self, method: Any, path: str, **options: Any) -> JSON:
        answer = await super().request(method, path, **options)
        if method in ("POST", "PATCH"):
            informer = self.informers[answer["kind"]]
            version = answer["metadata"]["resourceVersion"]
            await asyncio.to_thread(_until_cached, informer, object_key(answer), version)
        return answer


async def _apply(writer: Writer, **options: Any) -> Outcome:
    """One apply of the writer, its connections closed after it."""
    try:
        return await writer.apply(**options)
    finally:
        await writer.kube.close()


def test_the_writers_echoes_are_not_reported(kit: Kit, workload: Cluster) -> None:
    created = kit.create_import("db", {"source": {"addresses": ["203.0.113.10"]}, "ports": PORTS})
    kit.wait_condition("db", "Ready", "True", "Synced")
    kit.wait_addresses("db", {"IPv4": ["203.0.113.10"]})
    kit.operator.stop()  # the writer under test is the only one
    kube = Kube(workload.api_client())
    writes = EchoFirst(kube)
    recorded = Recorded()
    informers: dict[Kind, Informer] = {
        kind: Informer(
            kube,
            kind.collection(kit.namespace),
            name=f"test {kind.plural}",
            params={"labelSelector": builders.managed_selector()},
            on_event=recorded,
            index_label=builders.IMPORT_LABEL,
        ).start()
        for kind in MANAGED_KINDS
    }
    writes.informers = {kind.kind: informer for kind, informer in informers.items()}
    try:
        for informer in informers.values():
            assert informer.synced.wait(30), f"{informer.name} did not list"
        listed = list(recorded.events)
        writer = Writer(
            writes, {kind: InformerGroup({kit.namespace: i}) for kind, i in informers.items()}
        )
        owner = builders.Owner(kit.namespace, "db", created["metadata"]["uid"])
        desired = builders.build(
            owner=owner,
            service_name="db",
            ports=[builders.ResolvedPort(name=None, port=80, target_port=80, protocol="TCP")],
            addresses=["203.0.113.20"],
        )

        outcome = asyncio.run(_apply(writer, owner=owner, desired=desired))

        assert ("EndpointSlice", "patch") in outcome.writes, outcome
        foreign = kube.patch(
            f"/api/v1/namespaces/{kit.namespace}/endpoints/db",
            {"metadata": {"annotations": {"touched-by": "somebody-else"}}},
        )
        recorded.wait_for(foreign["metadata"]["resourceVersion"])
        assert recorded.events == [*listed, ("MODIFIED", foreign["metadata"]["resourceVersion"])]
    finally:
        for informer in informers.values():
            informer.stop()
            informer.join()
        kube.api_client.close()
        kit.operator.start()
