"""What a catalog holds: an import per selected Service, nothing taken over, nothing lost.

* Every LoadBalancer Service the selector picks gets an import named after it (the rename
  map first, else the prefix and its name); other types and unselected Services get none.
* A name held by an import or a Service the catalog did not make is a conflict: nothing is
  made under it, and only the catalog says so.
* An import the catalog made whose Service is gone or deselected is removed; one made by
  someone else never is. While the namespace cannot be read, nothing is removed.
* The status counts imported, pending and conflicting Services, and Ready says why not.
"""

from __future__ import annotations

from typing import Any

from shared_services import api, catalog
from shared_services.catalog import ImportView, Unknown

BODY: dict[str, Any] = {"metadata": {"name": "shop", "namespace": "acme", "generation": 3}}


def _spec(**fields: Any) -> api.CatalogSpec:
    return api.parse_catalog_spec({"cluster": "sup", "namespace": "acme-data", **fields})


def _service(name: str, kind: str = "LoadBalancer", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"type": kind}}


def _ours(name: str, remote: str | None = None, *, ready: bool = True) -> ImportView:
    return ImportView(name=name, ours=True, remote=remote or name, ready=ready)


def _ready(plan: catalog.CatalogPlan) -> tuple[str, str]:
    (ready,) = plan.status["conditions"]
    return ready["status"], ready["reason"]


def test_each_selected_load_balancer_gets_an_import_named_after_it() -> None:
    services = [
        _service("users-mongo", tier="data"),
        _service("cart-redis", tier="data"),
        _service("web", tier="front"),
        _service("internal", kind="ClusterIP", tier="data"),
    ]
    spec = _spec(selector={"matchLabels": {"tier": "data"}}, namePrefix="acme-")
    plan = catalog.plan(BODY, spec, services, {})
    assert plan.create == (("acme-cart-redis", "cart-redis"), ("acme-users-mongo", "users-mongo"))
    assert (plan.status["pending"], plan.status["imported"], plan.status["conflicts"]) == (2, 0, 0)
    assert _ready(plan) == ("False", "Pending")
    assert plan.status["source"] == "sup/acme-data"
    assert plan.status["observedGeneration"] == 3


def test_the_rename_map_wins_over_the_prefix() -> None:
    spec = _spec(namePrefix="acme-", names={"order-postgres": "orders"})
    plan = catalog.plan(BODY, spec, [_service("order-postgres"), _service("cart")], {})
    assert dict(plan.create) == {"orders": "order-postgres", "acme-cart": "cart"}


def test_a_name_held_by_what_the_catalog_did_not_make_is_a_conflict_and_nothing_is_made() -> None:
    theirs = ImportView(name="cart", ours=False, remote="cart", ready=True)
    services = [_service("cart"), _service("users"), _service("orders")]
    plan = catalog.plan(BODY, _spec(), services, {"cart": theirs}, taken=frozenset({"users"}))
    assert plan.create == (("orders", "orders"),)
    assert plan.delete == ()
    assert plan.status["conflicts"] == 2
    assert _ready(plan) == ("False", "Conflict")
    message = plan.status["conditions"][0]["message"]
    assert "cart as cart" in message
    assert "users as users" in message


def test_two_services_meant_for_one_name_make_one_import() -> None:
    # "one" is renamed onto the name the prefix gives "two".
    clash = _spec(namePrefix="x-", names={"one": "x-two"})
    plan = catalog.plan(BODY, clash, [_service("one"), _service("two")], {})
    assert [name for name, _ in plan.create] == ["x-two"]
    assert plan.status["conflicts"] == 1


def test_imports_of_withdrawn_or_deselected_services_are_removed_but_only_the_catalogs() -> None:
    imports = {
        "kept": _ours("kept"),
        "withdrawn": _ours("withdrawn"),
        "hand-made": ImportView(name="hand-made", ours=False, remote="hand-made", ready=True),
    }
    plan = catalog.plan(BODY, _spec(), [_service("kept"), _service("hand-made")], imports)
    assert plan.delete == ("withdrawn",)
    assert plan.create == ()
    assert plan.status["conflicts"] == 1  # hand-made holds the name of a selected Service


def test_an_outage_removes_nothing_and_says_why() -> None:
    imports = {"kept": _ours("kept", ready=True)}
    plan = catalog.plan(BODY, _spec(), Unknown("RemoteUnavailable", "unreachable"), imports)
    assert not plan.writes
    assert _ready(plan) == ("False", "RemoteUnavailable")
    assert plan.status["imported"] == 1


def test_a_denied_namespace_removes_the_catalogs_imports() -> None:
    imports = {"kept": _ours("kept")}
    denied = Unknown("NamespaceDenied", "not allowed", empty=True)
    plan = catalog.plan(BODY, _spec(), denied, imports)
    assert plan.delete == ("kept",)
    assert plan.status["imported"] == 0


def test_a_changed_source_is_updated_and_all_ready_is_synced() -> None:
    imports = {"db": _ours("db", remote="old-db")}
    spec = _spec(names={"new-db": "db"})
    plan = catalog.plan(BODY, spec, [_service("new-db")], imports)
    assert plan.update == (("db", "new-db"),)
    ready = catalog.plan(BODY, spec, [_service("new-db")], {"db": _ours("db", "new-db")})
    assert not ready.writes
    assert _ready(ready) == ("True", "Synced")
    assert ready.status["services"] == [{"name": "new-db", "importName": "db", "state": "Imported"}]


def test_selectors_match_as_kubernetes_does() -> None:
    selector = api.LabelSelector.model_validate(
        {
            "matchLabels": {"app.kubernetes.io/part-of": "acme"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["data", "cache"]},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector.matches({"app.kubernetes.io/part-of": "acme", "tier": "cache"})
    assert not selector.matches({"app.kubernetes.io/part-of": "acme", "tier": "web"})
    assert not selector.matches({"app.kubernetes.io/part-of": "acme", "tier": "data", "legacy": ""})
    assert not selector.matches({"tier": "data"})
    assert api.LabelSelector().matches({})
