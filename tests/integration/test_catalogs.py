"""A SharedServiceCatalog imports what the central side exported, and nothing else.

Against real API servers, with the session's operator. The central namespace holds
LoadBalancer Services, some exported; the RemoteCluster requires exports. Then:

- add: the catalog makes one import per exported Service, owned by it and labelled with
  its name, each imported and ready; its status counts them, and kubectl shows the counts;
- export and withdraw: a newly exported Service gets an import, and a withdrawn one's
  import is removed (and its local Service with it);
- rename: the rename map gives a Service another local name; the old import goes;
- clash: an import and a Service made by hand hold two names the catalog wants; the
  catalog makes nothing under them, counts two conflicts and says which, and the hand-made
  objects are left exactly as they were, with no word from the operator on them;
- delete: deleting the catalog deletes its imports, through their owner reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.cluster import Cluster
from harness.kubectl import kubectl_get
from kit import GROUP, VERSION, Kit
from support import eventually

EXPORTED = {"sharedservices.io/export": "true"}
PLURAL = "sharedservicecatalogs"


def _exported(kit: Kit, name: str) -> str:
    vip = kit.load_balancer(name)
    kit.remote.patch_namespaced_service(name, kit.namespace, {"metadata": {"labels": EXPORTED}})
    return vip


def _catalog(kit: Kit, name: str, cluster: str, **spec: Any) -> None:
    kit.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        kit.namespace,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SharedServiceCatalog",
            "metadata": {"name": name},
            "spec": {"cluster": cluster, "namespace": kit.namespace, **spec},
        },
    )


def _get(kit: Kit, name: str) -> dict[str, Any]:
    found: dict[str, Any] = kit.custom.get_namespaced_custom_object(
        GROUP, VERSION, kit.namespace, PLURAL, name
    )
    return found


def _counts(kit: Kit, name: str) -> tuple[int, int, int, str] | None:
    status = _get(kit, name).get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
    if ready is None:
        return None
    return (status["imported"], status["pending"], status["conflicts"], ready["reason"])


def _imports(kit: Kit) -> dict[str, dict[str, Any]]:
    listing = kit.custom.list_namespaced_custom_object(
        GROUP, VERSION, kit.namespace, "sharedserviceimports"
    )
    return {item["metadata"]["name"]: item for item in listing["items"]}


def _wait_counts(kit: Kit, name: str, expected: tuple[int, int, int, str]) -> None:
    try:
        eventually(lambda: _counts(kit, name) == expected, timeout=60)
    except AssertionError as error:
        raise AssertionError(
            f"{_counts(kit, name)} != {expected}\n{_get(kit, name).get('status')}\n"
            f"{kit.operator.log_tail()}"
        ) from error


def test_a_catalog_follows_what_is_exported(kit: Kit, workload: Cluster, tmp_path: Path) -> None:
    cluster = kit.remote_cluster(requireExport=True)
    vips = {name: _exported(kit, name) for name in ("users-mongo", "cart-redis", "orders")}
    kit.load_balancer("private")  # not exported: never imported
    _catalog(kit, "shop", cluster, namePrefix="acme-", names={"orders": "order-db"})

    # Add: one import per exported Service, each owned by the catalog and ready.
    _wait_counts(kit, "shop", (3, 0, 0, "Synced"))
    made = _imports(kit)
    assert set(made) == {"acme-users-mongo", "acme-cart-redis", "order-db"}
    uid = _get(kit, "shop")["metadata"]["uid"]
    for body in made.values():
        assert body["metadata"]["labels"]["sharedservices.io/catalog"] == "shop"
        (owner,) = body["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "SharedServiceCatalog",
            uid,
            True,
        )
    kit.wait_addresses("order-db", {"IPv4": [vips["orders"]]}, timeout=30)
    table = kubectl_get(
        workload.write_kubeconfig(tmp_path / "workload.kubeconfig"), "sscat", "-n", kit.namespace
    )
    assert table.headers == ["NAME", "SOURCE", "IMPORTED", "PENDING", "CONFLICTS", "READY", "AGE"]
    row = table.rows["shop"]
    assert (row["SOURCE"], row["IMPORTED"], row["PENDING"], row["CONFLICTS"], row["READY"]) == (
        f"{cluster}/{kit.namespace}",
        "3",
        "0",
        "0",
        "True",
    )

    # Export one more, withdraw one: an import is made, another removed with its Service.
    _exported(kit, "payments")
    kit.remote.patch_namespaced_service(
        "cart-redis", kit.namespace, {"metadata": {"labels": {"sharedservices.io/export": None}}}
    )
    eventually(
        lambda: set(_imports(kit)) == {"acme-users-mongo", "acme-payments", "order-db"},
        timeout=60,
    )
    _wait_counts(kit, "shop", (3, 0, 0, "Synced"))
    eventually(
        lambda: (
            "acme-cart-redis"
            not in {s.metadata.name for s in kit.core.list_namespaced_service(kit.namespace).items}
        ),
        timeout=30,
    )

    # Rename: the import goes under its new name, the old one is removed.
    kit.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        kit.namespace,
        PLURAL,
        "shop",
        {"spec": {"names": {"orders": "orders-db"}}},
    )
    eventually(
        lambda: set(_imports(kit)) == {"acme-users-mongo", "acme-payments", "orders-db"}, timeout=60
    )
    _wait_counts(kit, "shop", (3, 0, 0, "Synced"))

    # Delete: its imports go with it.
    kit.custom.delete_namespaced_custom_object(GROUP, VERSION, kit.namespace, PLURAL, "shop")
    eventually(lambda: not _imports(kit), timeout=60)


def test_a_catalog_never_takes_over_what_it_did_not_make(kit: Kit) -> None:
    cluster = kit.remote_cluster()
    for name in ("cart", "users", "orders"):
        kit.load_balancer(name)
    # By hand, before the catalog: an import named "cart" (of something else) and a Service
    # named "users".
    kit.create_import("cart", {"source": {"addresses": ["192.0.2.55"]}, "ports": [{"port": 80}]})
    kit.core.create_namespaced_service(
        kit.namespace,
        {"metadata": {"name": "users"}, "spec": {"ports": [{"port": 80}]}},
    )
    kit.wait_condition("cart", "Ready", "True")
    hand_import = kit.get_import("cart")
    hand_service = kit.core.read_namespaced_service("users", kit.namespace)

    _catalog(kit, "shop", cluster)
    _wait_counts(kit, "shop", (1, 0, 2, "Conflict"))
    ready = next(c for c in _get(kit, "shop")["status"]["conditions"] if c["type"] == "Ready")
    assert "cart as cart" in ready["message"]
    assert "users as users" in ready["message"]
    assert set(_imports(kit)) == {"cart", "orders"}

    # The hand-made objects are as they were: not owned, not changed, not spoken of.
    now = kit.get_import("cart")
    assert now["spec"] == hand_import["spec"]
    assert now["metadata"].get("ownerReferences") is None
    assert now["metadata"]["generation"] == hand_import["metadata"]["generation"]
    service = kit.core.read_namespaced_service("users", kit.namespace)
    assert service.metadata.resource_version == hand_service.metadata.resource_version
    assert not [e for e in kit.events("cart") if "catalog" in (e.message or "").lower()]

    # Once the hand-made Service goes, the catalog imports under its name.
    kit.core.delete_namespaced_service("users", kit.namespace)
    _wait_counts(kit, "shop", (2, 0, 1, "Conflict"))
    assert "users" in _imports(kit)
