"""A watch the server refuses backs off to minutes; one that broke comes back within seconds.

And an object that the cache's view refuses (one no import owns) is as good as absent.

A refused watch (401, 403) stays refused until someone changes a permission, and every try
is a request to the central cluster: a namespace that a tenant names and the credentials
may not read must not cost one every 30 s for ever. A broken watch, or a server that is
down, is retried within 30 s at most, so that imports follow moves soon after it is back.
"""

from __future__ import annotations

from typing import cast

import pytest

from shared_services import informer
from shared_services.api import JSON
from shared_services.informer import Informer, InformerGroup
from shared_services.kube import Kube, KubeError


def _delays(error: KubeError, tries: int) -> list[float]:
    delays, delay = [], informer.BACKOFF_START
    for _ in range(tries):
        delay = informer.next_backoff(delay, error)
        delays.append(delay)
    return delays


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_watch_backs_off_to_minutes(status: int) -> None:
    delays = _delays(KubeError(status, "Forbidden", "services is forbidden"), 20)
    assert max(delays) == informer.REFUSED_BACKOFF_MAX
    assert informer.REFUSED_BACKOFF_MAX >= 120
    assert delays == sorted(delays)


@pytest.mark.parametrize("status", [0, 404, 429, 500, 503])
def test_a_broken_watch_comes_back_within_seconds(status: int) -> None:
    assert max(_delays(KubeError(status, "Error", "broken"), 20)) <= 30


def _owned_only(obj: JSON) -> JSON | None:
    """A view that keeps only objects labelled ``owned``, as the managed caches do."""
    labels = obj.get("metadata", {}).get("labels") or {}
    return obj if labels.get("owned") == "yes" else None


def _object(version: str, owned: str) -> JSON:
    return {
        "metadata": {
            "namespace": "n",
            "name": "a",
            "resourceVersion": version,
            "labels": {"owned": owned},
        }
    }


def test_an_object_the_view_refuses_is_as_good_as_absent() -> None:
    informer = Informer(
        cast(Kube, None),
        "/api/v1/services",
        name="test",
        transform=_owned_only,
    )
    # Never owned: neither cached nor reported.
    assert informer._apply("ADDED", _object("1", "no")) is None
    assert informer.get("n/a") is None
    # Owned, then no longer: reported as gone, with the last view that was held.
    assert informer._apply("MODIFIED", _object("2", "yes")) == ("MODIFIED", _object("2", "yes"))
    assert informer._apply("MODIFIED", _object("3", "no")) == ("DELETED", _object("2", "yes"))
    assert informer.get("n/a") is None
    # The answer to a write of an object the view refuses is not cached either.
    informer.put(_object("4", "no"))
    assert informer.get("n/a") is None


def _labelled(name: str, value: str) -> JSON:
    return {"metadata": {"namespace": "n", "name": name, "labels": {"import": value}}}


def test_the_index_finds_one_object_or_many_and_forgets_them() -> None:
    informer = Informer(cast(Kube, None), "/api/v1/services", name="test", index_label="import")
    informer.put(_labelled("a", "db"))
    assert informer.indexed("n", "db") == [_labelled("a", "db")]
    informer.put(_labelled("a", "db"))  # again: still one
    assert informer.indexed("n", "db") == [_labelled("a", "db")]
    informer.put(_labelled("b", "db"))
    assert sorted(o["metadata"]["name"] for o in informer.indexed("n", "db")) == ["a", "b"]
    informer.drop("n/a")
    assert informer.indexed("n", "db") == [_labelled("b", "db")]
    informer.put(_labelled("b", "cache"))  # relabelled: leaves db's entry
    assert informer.indexed("n", "db") == []
    assert informer.indexed("n", "cache") == [_labelled("b", "cache")]
    informer.drop("n/b")
    assert informer.index == {}


def test_the_names_of_all_it_is_sent_are_kept_even_of_what_the_view_refuses() -> None:
    informer = Informer(
        cast(Kube, None), "/api/v1/services", name="test", transform=_owned_only, keep_names=True
    )
    group = InformerGroup({None: informer})
    # Before its list, it cannot tell: a name it has not been sent may be taken.
    assert group.named("n/a") is None
    informer.synced.set()
    assert group.named("n/a") is False
    informer._apply("ADDED", _object("1", "no"))
    assert informer.get("n/a") is None, "cached although the view refuses it"
    assert group.named("n/a") is True, "a name somebody else's object holds was forgotten"
    informer._apply("DELETED", _object("2", "no"))
    assert group.named("n/a") is False
    # A broken watch misses what is created meanwhile: it cannot tell until it lists again.
    informer._apply("ADDED", _object("3", "yes"))
    informer.error = "watch ended"
    assert group.named("n/a") is None
    # Without names kept, it never can.
    plain = Informer(cast(Kube, None), "/api/v1/services", name="plain")
    plain.synced.set()
    assert InformerGroup({None: plain}).named("n/a") is None


def test_the_echo_of_a_write_is_known_without_making_its_view() -> None:
    viewed: list[str] = []

    def view(obj: JSON) -> JSON | None:
        viewed.append(obj["metadata"]["resourceVersion"])
        return _owned_only(obj)

    informer = Informer(cast(Kube, None), "/api/v1/services", name="test", transform=view)
    informer.put(_object("5", "yes"))  # the answer to the operator's write
    assert informer._apply("MODIFIED", _object("5", "yes")) is None  # its echo
    assert viewed == ["5"]  # the echo's view was never made
    # Somebody else's change, with another version, is viewed, cached and reported.
    assert informer._apply("MODIFIED", _object("6", "yes")) == ("MODIFIED", _object("6", "yes"))
    assert viewed == ["5", "6"]
    assert informer.get("n/a") == _object("6", "yes")
    # A deletion is never taken for an echo, whatever its version.
    assert informer._apply("DELETED", _object("6", "yes")) == ("DELETED", _object("6", "yes"))
    assert informer.get("n/a") is None
