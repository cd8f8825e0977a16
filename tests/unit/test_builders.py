"""Pins the shapes of the objects the operator writes and the decision whether to write.

* ``build`` gives the documented Service, EndpointSlices and Endpoints for IPv4, IPv6,
  dual-stack and empty address sets, and the same bytes for the same input however the
  addresses are spelled or ordered; more than 1,000 addresses, both families together
  (what the status can list), are refused as ``TooManyAddresses``.
* ``patch_for`` says "nothing to do" for what a kube-apiserver returns after creating our
  objects (defaults filled in, subsets repacked, foreign labels added), and returns a merge
  patch for every kind of drift in a field we own; applying that patch converges, and
  never touches what others own. A changed addressType asks for a recreate.
* ``ports_from_service`` and ``ingress_addresses`` read a remote Service, and never raise on
  garbage in its spec or status.
"""

import copy
from typing import Any

import pytest

from shared_services import builders
from shared_services.builders import (
    Change,
    Desired,
    IngressInfo,
    Owner,
    Rejected,
    ResolvedPort,
    build,
    ingress_addresses,
    patch_for,
    ports_from_service,
)

OWNER = Owner(namespace="web", name="db", uid="6f1c5a2e-3b7d-4c1e-9a52-0d8e4f7b9c31")
POSTGRES = ResolvedPort(name="postgres", port=5432, target_port=5432, protocol="TCP")
METRICS = ResolvedPort(name="metrics", port=9187, target_port=19187, protocol="TCP")

OUR_REFERENCE = {
    "apiVersion": "sharedservices.io/v1alpha1",
    "kind": "SharedServiceImport",
    "name": "db",
    "uid": "6f1c5a2e-3b7d-4c1e-9a52-0d8e4f7b9c31",
    "controller": True,
    "blockOwnerDeletion": False,
}
OUR_LABELS = {
    "app.kubernetes.io/managed-by": "shared-services-operator",
    "sharedservices.io/import": "db",
}


def desired(addresses: tuple[str, ...] = ("192.0.2.10", "192.0.2.11")) -> Desired:
    return build(
        owner=OWNER, service_name="db", ports=[POSTGRES, METRICS], addresses=list(addresses)
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch, as the API server does for merge-patch+json."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def managed_fields(api_version: str, fields: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "manager": "shared-services-operator",
            "operation": "Update",
            "apiVersion": api_version,
            "time": "2026-03-02T10:15:04Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        }
    ]


# What a kube-apiserver 1.37 returns after creating each object of desired(): server
# metadata, Service defaults, the Endpoints repacked, plus a label and an annotation that
# another tool added afterwards.


def server_service() -> dict[str, Any]:
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {
            "name": "db",
            "namespace": "web",
            "uid": "0b6a3f0e-8c1d-4b7a-a0f1-53d0c6e2a9d4",
            "resourceVersion": "48213",
            "creationTimestamp": "2026-03-02T10:15:04Z",
            "labels": {
                "app.kubernetes.io/managed-by": "shared-services-operator",
                "sharedservices.io/import": "db",
                "team": "payments",
            },
            "annotations": {"argocd.argoproj.io/tracking-id": "web:/Service:web/db"},
            "ownerReferences": [dict(OUR_REFERENCE)],
            "managedFields": managed_fields(
                "v1",
                {
                    "f:metadata": {
                        "f:labels": {
                            ".": {},
                            "f:app.kubernetes.io/managed-by": {},
                            "f:sharedservices.io/import": {},
                        },
                        "f:ownerReferences": {
                            ".": {},
                            'k:{"uid":"6f1c5a2e-3b7d-4c1e-9a52-0d8e4f7b9c31"}': {},
                        },
                    },
                    "f:spec": {
                        "f:internalTrafficPolicy": {},
                        "f:ports": {
                            ".": {},
                            'k:{"port":5432,"protocol":"TCP"}': {
                                ".": {},
                                "f:name": {},
                                "f:port": {},
                                "f:protocol": {},
                                "f:targetPort": {},
                            },
                            'k:{"port":9187,"protocol":"TCP"}': {
                                ".": {},
                                "f:name": {},
                                "f:port": {},
                                "f:protocol": {},
                                "f:targetPort": {},
                            },
                        },
                        "f:sessionAffinity": {},
                        "f:type": {},
                    },
                },
            ),
        },
        "spec": {
            "ports": [
                {"name": "postgres", "protocol": "TCP", "port": 5432, "targetPort": 5432},
                {"name": "metrics", "protocol": "TCP", "port": 9187, "targetPort": 19187},
            ],
            "clusterIP": "10.96.142.17",
            "clusterIPs": ["10.96.142.17"],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        },
        "status": {"loadBalancer": {}},
    }


def server_slice(address_type: str = "IPv4") -> dict[str, Any]:
    addresses = (
        ["192.0.2.10", "192.0.2.11"] if address_type == "IPv4" else ["2001:db8::10", "2001:db8::a"]
    )
    return {
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "metadata": {
            "name": f"db-{address_type.lower()}",
            "namespace": "web",
            "uid": "c1f0e2d9-7a44-4f8e-b2c5-1e9a7d3b6f20",
            "resourceVersion": "48215",
            "generation": 1,
            "creationTimestamp": "2026-03-02T10:15:04Z",
            "labels": {
                "app.kubernetes.io/managed-by": "shared-services-operator",
                "endpointslice.kubernetes.io/managed-by": (
                    "shared-services-operator.sharedservices.io"
                ),
                "kubernetes.io/service-name": "db",
                "sharedservices.io/import": "db",
            },
            "ownerReferences": [dict(OUR_REFERENCE)],
            "managedFields": managed_fields(
                "discovery.k8s.io/v1",
                {
                    "f:addressType": {},
                    "f:endpoints": {},
                    "f:metadata": {"f:labels": {}, "f:ownerReferences": {}},
                    "f:ports": {},
                },
            ),
        },
        "addressType": address_type,
        # Conditions as a tool that fills in the derived ones would leave them.
        "endpoints": [
            {
                "addresses": [address],
                "conditions": {"ready": True, "serving": True, "terminating": False},
            }
            for address in addresses
        ],
        "ports": [
            {"name": "postgres", "protocol": "TCP", "port": 5432},
            {"name": "metrics", "protocol": "TCP", "port": 19187},
        ],
    }


def server_endpoints() -> dict[str, Any]:
    return {
        "kind": "Endpoints",
        "apiVersion": "v1",
        "metadata": {
            "name": "db",
            "namespace": "web",
            "uid": "8e2d4c6a-1f3b-4a5d-9c7e-2b4f6a8d0c13",
            "resourceVersion": "48216",
            "creationTimestamp": "2026-03-02T10:15:04Z",
            "labels": {
                "app.kubernetes.io/managed-by": "shared-services-operator",
                "endpointslice.kubernetes.io/skip-mirror": "true",
                "sharedservices.io/import": "db",
            },
            "annotations": {
                "endpoints.kubernetes.io/last-change-trigger-time": "2026-03-02T10:15:04Z"
            },
            "ownerReferences": [dict(OUR_REFERENCE)],
            "managedFields": managed_fields(
                "v1", {"f:metadata": {"f:labels": {}, "f:ownerReferences": {}}, "f:subsets": {}}
            ),
        },
        # Repacked by the server: addresses sorted as strings, ports in hash order.
        "subsets": [
            {
                "addresses": [{"ip": "192.0.2.10"}, {"ip": "192.0.2.11"}],
                "ports": [
                    {"name": "metrics", "port": 19187, "protocol": "TCP"},
                    {"name": "postgres", "port": 5432, "protocol": "TCP"},
                ],
            }
        ],
    }


# --- build ----------------------------------------------------------------------------------


def test_service_shape() -> None:
    assert desired().service == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "db",
            "namespace": "web",
            "labels": OUR_LABELS,
            "ownerReferences": [OUR_REFERENCE],
        },
        "spec": {
            "type": "ClusterIP",
            "ports": [
                {"name": "postgres", "port": 5432, "targetPort": 5432, "protocol": "TCP"},
                {"name": "metrics", "port": 9187, "targetPort": 19187, "protocol": "TCP"},
            ],
            "ipFamilyPolicy": "SingleStack",
            "ipFamilies": ["IPv4"],
        },
    }


def test_ipv4_only() -> None:
    built = desired(("192.0.2.10", "192.0.2.11"))
    assert built.endpoint_slices == (
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "db-ipv4",
                "namespace": "web",
                "labels": {
                    **OUR_LABELS,
                    "kubernetes.io/service-name": "db",
                    "endpointslice.kubernetes.io/managed-by": (
                        "shared-services-operator.sharedservices.io"
                    ),
                },
                "ownerReferences": [OUR_REFERENCE],
            },
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["192.0.2.10"], "conditions": {"ready": True}},
                {"addresses": ["192.0.2.11"], "conditions": {"ready": True}},
            ],
            "ports": [
                {"name": "postgres", "port": 5432, "protocol": "TCP"},
                {"name": "metrics", "port": 19187, "protocol": "TCP"},
            ],
        },
    )
    assert built.endpoints == {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "db",
            "namespace": "web",
            "labels": {**OUR_LABELS, "endpointslice.kubernetes.io/skip-mirror": "true"},
            "ownerReferences": [OUR_REFERENCE],
        },
        "subsets": [
            {
                "addresses": [{"ip": "192.0.2.10"}, {"ip": "192.0.2.11"}],
                "ports": [
                    {"name": "postgres", "port": 5432, "protocol": "TCP"},
                    {"name": "metrics", "port": 19187, "protocol": "TCP"},
                ],
            }
        ],
    }


def test_ipv6_only() -> None:
    built = desired(("2001:db8::a", "2001:db8::10"))
    [only] = built.endpoint_slices
    assert only["metadata"]["name"] == "db-ipv6"
    assert only["addressType"] == "IPv6"
    assert [e["addresses"] for e in only["endpoints"]] == [["2001:db8::a"], ["2001:db8::10"]]
    assert built.endpoints["subsets"][0]["addresses"] == [
        {"ip": "2001:db8::a"},
        {"ip": "2001:db8::10"},
    ]


def test_dual_stack() -> None:
    built = desired(("2001:db8::1", "198.51.100.7", "192.0.2.10"))
    assert [(s["metadata"]["name"], s["addressType"]) for s in built.endpoint_slices] == [
        ("db-ipv4", "IPv4"),
        ("db-ipv6", "IPv6"),
    ]
    assert [e["addresses"] for e in built.endpoint_slices[0]["endpoints"]] == [
        ["192.0.2.10"],
        ["198.51.100.7"],
    ]
    assert [e["addresses"] for e in built.endpoint_slices[1]["endpoints"]] == [["2001:db8::1"]]
    # Endpoints has no address type: one subset holds both families.
    assert built.endpoints["subsets"][0]["addresses"] == [
        {"ip": "192.0.2.10"},
        {"ip": "198.51.100.7"},
        {"ip": "2001:db8::1"},
    ]
    assert built.objects() == (built.service, *built.endpoint_slices, built.endpoints)


def test_no_addresses() -> None:
    built = desired(())
    assert built.endpoint_slices == ()
    assert "subsets" not in built.endpoints
    assert (
        built.endpoints["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] == "true"
    )
    assert built.service["spec"]["ports"][0]["port"] == 5432


def test_addresses_are_canonical_unique_and_sorted() -> None:
    messy = desired(
        (
            "192.0.2.9",
            "2001:DB8:0:0::1",
            "192.0.2.10",
            "::ffff:192.0.2.9",
            "2001:db8::1",
            "192.0.2.10",
        )
    )
    tidy = desired(("192.0.2.9", "192.0.2.10", "2001:db8::1"))
    assert messy == tidy
    # Numeric order, not string order: .9 comes before .10.
    assert [e["addresses"][0] for e in tidy.endpoint_slices[0]["endpoints"]] == [
        "192.0.2.9",
        "192.0.2.10",
    ]


def test_ports_keep_their_order_and_unnamed_ports_have_no_name() -> None:
    unnamed = ResolvedPort(name=None, port=53, target_port=5353, protocol="UDP")
    built = build(owner=OWNER, service_name="dns", ports=[unnamed], addresses=["192.0.2.53"])
    assert built.service["spec"]["ports"] == [{"port": 53, "targetPort": 5353, "protocol": "UDP"}]
    assert built.endpoint_slices[0]["ports"] == [{"port": 5353, "protocol": "UDP"}]
    reordered = build(
        owner=OWNER, service_name="db", ports=[METRICS, POSTGRES], addresses=["192.0.2.10"]
    )
    assert [p["name"] for p in reordered.service["spec"]["ports"]] == ["metrics", "postgres"]


def test_objects_share_no_mutable_parts() -> None:
    built = desired()
    built.service["metadata"]["labels"]["mutated"] = "yes"
    built.service["metadata"]["ownerReferences"][0]["uid"] = "other"
    for obj in (*built.endpoint_slices, built.endpoints):
        assert "mutated" not in obj["metadata"]["labels"]
        assert obj["metadata"]["ownerReferences"] == [OUR_REFERENCE]
    assert desired().service["metadata"]["labels"] == OUR_LABELS


@pytest.mark.parametrize(
    ("ports", "addresses", "message"),
    [
        ([], ["192.0.2.1"], "at least one port"),
        ([POSTGRES], ["127.0.0.1"], "loopback"),
        ([POSTGRES], ["169.254.0.5"], "link-local"),
        ([POSTGRES], ["db.example.com"], "not an IP address"),
        ([POSTGRES], ["0.0.0.0"], "unspecified"),
    ],
)
def test_build_refuses_what_the_api_server_would(
    ports: list[ResolvedPort], addresses: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build(owner=OWNER, service_name="db", ports=ports, addresses=addresses)


def _addresses(v4: int, v6: int) -> list[str]:
    """``v4`` IPv4 and ``v6`` IPv6 addresses from the documentation ranges."""
    ipv4 = [
        f"{net}.{host}" for net in ("192.0.2", "198.51.100", "203.0.113") for host in range(1, 255)
    ]
    return ipv4[:v4] + [f"2001:db8::{n:x}" for n in range(1, v6 + 1)]


@pytest.mark.parametrize(
    ("v4", "v6"), [(0, 1001), (600, 600), (762, 300)], ids=["ipv6", "even", "mostly-ipv4"]
)
def test_more_addresses_than_an_import_serves_are_refused_as_too_many(v4: int, v6: int) -> None:
    """One limit for both families together: what the slices hold, the status lists too.

    Each slice holds 1,000 addresses and the status 1,000 in all, so 600 of each family
    would write the slices and then fail the status on every sync.
    """
    with pytest.raises(builders.LimitExceeded, match=f"{v4 + v6} addresses") as refused:
        build(owner=OWNER, service_name="db", ports=[POSTGRES], addresses=_addresses(v4, v6))
    assert refused.value.reason == "TooManyAddresses"
    assert "1000" in str(refused.value)


def test_as_many_addresses_as_an_import_serves_are_built() -> None:
    addresses = _addresses(500, 500)
    built = build(owner=OWNER, service_name="db", ports=[POSTGRES], addresses=addresses)
    assert sum(len(s["endpoints"]) for s in built.endpoint_slices) == 1000


def test_build_refuses_an_import_name_too_long_for_a_label() -> None:
    owner = Owner(namespace="web", name="x" * 64, uid="u")
    with pytest.raises(ValueError, match="63"):
        build(owner=owner, service_name="db", ports=[POSTGRES], addresses=[])


# --- ownership ------------------------------------------------------------------------------


def test_selectors() -> None:
    # Together they select every object once: a name is in exactly one of two watches.
    assert builders.managed_selector() == "app.kubernetes.io/managed-by=shared-services-operator"
    assert builders.others_selector() == "app.kubernetes.io/managed-by!=shared-services-operator"


def test_is_managed_and_owned_by() -> None:
    ours = server_service()
    assert builders.is_managed(ours)
    assert builders.owned_by(ours, ("web", "db"))
    assert not builders.owned_by(ours, ("web", "cache"))
    assert not builders.owned_by(ours, ("other", "db"))
    foreign = server_service()
    del foreign["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    assert not builders.is_managed(foreign)
    assert not builders.owned_by(foreign, ("web", "db"))
    for garbage in ({}, {"metadata": None}, {"metadata": {"labels": ["x"]}}):
        assert not builders.is_managed(garbage)
        assert not builders.owned_by(garbage, ("web", "db"))


# --- patch_for: nothing to do ----------------------------------------------------------------


def test_built_objects_match_themselves() -> None:
    built = desired(("192.0.2.10", "2001:db8::1"))
    for obj in built.objects():
        assert patch_for(desired=obj, actual=copy.deepcopy(obj)) is None


def test_no_patch_against_server_copies() -> None:
    built = desired(("192.0.2.10", "192.0.2.11", "2001:db8::a", "2001:db8::10"))
    # A single-stack cluster keeps the policy asked for and gives the one family it has.
    service = server_service()
    service["spec"]["ipFamilyPolicy"] = "PreferDualStack"
    assert patch_for(desired=built.service, actual=service) is None
    assert patch_for(desired=desired().service, actual=server_service()) is None
    assert patch_for(desired=built.endpoint_slices[0], actual=server_slice("IPv4")) is None
    assert patch_for(desired=built.endpoint_slices[1], actual=server_slice("IPv6")) is None
    endpoints = server_endpoints()
    endpoints["subsets"][0]["addresses"] += [{"ip": "2001:db8::10"}, {"ip": "2001:db8::a"}]
    assert patch_for(desired=built.endpoints, actual=endpoints) is None


def test_no_patch_when_the_server_splits_subsets_or_defaults_protocols() -> None:
    actual = server_endpoints()
    actual["subsets"] = [
        {
            "addresses": [{"ip": "192.0.2.11", "nodeName": None}],
            "ports": [{"name": "postgres", "port": 5432}, {"name": "metrics", "port": 19187}],
        },
        {
            "addresses": [{"ip": "192.0.2.10"}],
            "ports": [
                {"name": "metrics", "port": 19187, "protocol": "TCP"},
                {"name": "postgres", "port": 5432, "protocol": "TCP"},
            ],
        },
    ]
    assert patch_for(desired=desired().endpoints, actual=actual) is None


def test_no_patch_for_reordered_slice_endpoints_or_an_absent_target_port() -> None:
    actual_slice = server_slice()
    actual_slice["endpoints"].reverse()
    assert patch_for(desired=desired().endpoint_slices[0], actual=actual_slice) is None
    single = build(owner=OWNER, service_name="db", ports=[POSTGRES], addresses=[])
    service = server_service()
    service["spec"]["ports"] = [{"name": "postgres", "protocol": "TCP", "port": 5432}]
    assert patch_for(desired=single.service, actual=service) is None


def test_no_patch_for_empty_endpoints_in_either_spelling() -> None:
    empty = desired(()).endpoints
    nothing: tuple[list[Any] | None, ...] = (None, [])
    for subsets in nothing:
        actual = server_endpoints()
        actual["subsets"] = subsets
        assert patch_for(desired=empty, actual=actual) is None
    actual = server_endpoints()
    del actual["subsets"]
    assert patch_for(desired=empty, actual=actual) is None


def test_foreign_owner_references_count_for_nothing() -> None:
    actual = server_service()
    actual["metadata"]["ownerReferences"].append(
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "name": "web", "uid": "a"}
    )
    assert patch_for(desired=desired().service, actual=actual) is None


# --- patch_for: drift -----------------------------------------------------------------------


def assert_converges(want: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    """Check that the patch is a patch, keeps others' metadata, and leaves nothing to do."""
    change = patch_for(desired=want, actual=actual)
    assert change is not None
    assert change.kind == "patch"
    patched = merge_patch(actual, change.body)
    assert patch_for(desired=want, actual=patched) is None
    assert patched["metadata"].get("annotations") == actual["metadata"].get("annotations")
    for key, value in actual["metadata"]["labels"].items():
        if key not in want["metadata"]["labels"]:
            assert patched["metadata"]["labels"][key] == value
    return change.body


def test_changed_address() -> None:
    actual_slice = server_slice()
    actual_slice["endpoints"][0]["addresses"] = ["192.0.2.99"]
    body = assert_converges(desired().endpoint_slices[0], actual_slice)
    assert body == {"endpoints": desired().endpoint_slices[0]["endpoints"]}

    actual_endpoints = server_endpoints()
    actual_endpoints["subsets"][0]["addresses"][0]["ip"] = "192.0.2.99"
    body = assert_converges(desired().endpoints, actual_endpoints)
    assert body == {"subsets": desired().endpoints["subsets"]}


def test_extra_address() -> None:
    actual_slice = server_slice()
    actual_slice["endpoints"].append({"addresses": ["192.0.2.12"], "conditions": {"ready": True}})
    assert set(assert_converges(desired().endpoint_slices[0], actual_slice)) == {"endpoints"}

    actual_endpoints = server_endpoints()
    actual_endpoints["subsets"].append(
        {"addresses": [{"ip": "192.0.2.12"}], "ports": [{"port": 1, "protocol": "TCP"}]}
    )
    assert set(assert_converges(desired().endpoints, actual_endpoints)) == {"subsets"}


def test_addresses_gone_remove_the_subsets() -> None:
    change = patch_for(desired=desired(()).endpoints, actual=server_endpoints())
    assert change == Change(kind="patch", body={"subsets": None})


def test_not_ready_or_terminating_endpoint_is_drift() -> None:
    actual_endpoints = server_endpoints()
    subset = actual_endpoints["subsets"][0]
    subset["notReadyAddresses"] = [subset["addresses"].pop()]
    assert set(assert_converges(desired().endpoints, actual_endpoints)) == {"subsets"}

    for conditions in ({"ready": False}, {"ready": True, "terminating": True}, {}):
        actual_slice = server_slice()
        actual_slice["endpoints"][1]["conditions"] = conditions
        assert set(assert_converges(desired().endpoint_slices[0], actual_slice)) == {"endpoints"}


def test_removed_port() -> None:
    service = server_service()
    del service["spec"]["ports"][1]
    body = assert_converges(desired().service, service)
    assert body == {"spec": {"ports": desired().service["spec"]["ports"]}}

    actual_slice = server_slice()
    del actual_slice["ports"][0]
    assert set(assert_converges(desired().endpoint_slices[0], actual_slice)) == {"ports"}

    actual_endpoints = server_endpoints()
    del actual_endpoints["subsets"][0]["ports"][0]
    assert set(assert_converges(desired().endpoints, actual_endpoints)) == {"subsets"}


def test_changed_protocol_or_target_port() -> None:
    service = server_service()
    service["spec"]["ports"][0]["protocol"] = "UDP"
    assert set(assert_converges(desired().service, service)["spec"]) == {"ports"}

    service = server_service()
    service["spec"]["ports"][1]["targetPort"] = "metrics"
    assert set(assert_converges(desired().service, service)["spec"]) == {"ports"}

    actual_slice = server_slice()
    actual_slice["ports"][1]["protocol"] = "SCTP"
    assert set(assert_converges(desired().endpoint_slices[0], actual_slice)) == {"ports"}

    actual_endpoints = server_endpoints()
    actual_endpoints["subsets"][0]["ports"][1]["protocol"] = "UDP"
    assert set(assert_converges(desired().endpoints, actual_endpoints)) == {"subsets"}


def test_hand_added_selector_is_removed() -> None:
    service = server_service()
    service["spec"]["selector"] = {"app": "db"}
    change = patch_for(desired=desired().service, actual=service)
    assert change == Change(kind="patch", body={"spec": {"selector": None}})
    assert "selector" not in merge_patch(service, change.body)["spec"]
    assert_converges(desired().service, service)


def test_changed_type_is_undone_with_the_ports() -> None:
    service = server_service()
    service["spec"]["type"] = "NodePort"
    service["spec"]["externalTrafficPolicy"] = "Cluster"
    for port, node_port in zip(service["spec"]["ports"], (30432, 30187), strict=True):
        port["nodePort"] = node_port
    body = assert_converges(desired().service, service)
    assert body == {
        "spec": {"type": "ClusterIP", "ports": desired().service["spec"]["ports"]},
    }
    assert all("nodePort" not in p for p in body["spec"]["ports"])


def test_removed_label_is_restored_and_foreign_labels_stay_out_of_the_patch() -> None:
    for obj, want in (
        (server_service(), desired().service),
        (server_slice(), desired().endpoint_slices[0]),
        (server_endpoints(), desired().endpoints),
    ):
        obj["metadata"]["labels"]["owner-team"] = "payments"
        del obj["metadata"]["labels"]["sharedservices.io/import"]
        body = assert_converges(want, obj)
        assert body == {"metadata": {"labels": want["metadata"]["labels"]}}
        assert "owner-team" not in body["metadata"]["labels"]


def test_changed_slice_labels_are_drift() -> None:
    actual_slice = server_slice()
    actual_slice["metadata"]["labels"]["kubernetes.io/service-name"] = "other"
    actual_slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] = (
        "endpointslice-controller.k8s.io"
    )
    body = assert_converges(desired().endpoint_slices[0], actual_slice)
    assert body["metadata"]["labels"]["kubernetes.io/service-name"] == "db"


def test_owner_reference_is_restored_and_foreign_ones_kept() -> None:
    foreign = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "name": "w", "uid": "a"}
    stale = {**OUR_REFERENCE, "uid": "0000-stale"}
    service = server_service()
    service["metadata"]["ownerReferences"] = [foreign, stale]
    body = assert_converges(desired().service, service)
    assert body == {"metadata": {"ownerReferences": [foreign, OUR_REFERENCE]}}

    service = server_service()
    del service["metadata"]["ownerReferences"]
    assert assert_converges(desired().service, service) == {
        "metadata": {"ownerReferences": [OUR_REFERENCE]}
    }


def test_patch_body_is_independent_of_desired() -> None:
    want = desired().service
    service = server_service()
    del service["spec"]["ports"][0]
    change = patch_for(desired=want, actual=service)
    assert change is not None
    change.body["spec"]["ports"][0]["port"] = 1
    assert want["spec"]["ports"][0]["port"] == 5432


def test_changed_address_type_asks_for_a_recreate() -> None:
    actual_slice = server_slice()
    actual_slice["addressType"] = "FQDN"
    want = desired().endpoint_slices[0]
    change = patch_for(desired=want, actual=actual_slice)
    assert change == Change(kind="recreate", body=want)
    assert change.body is not want


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="ConfigMap"):
        patch_for(desired={"kind": "ConfigMap"}, actual={})


def test_garbage_in_the_actual_object_gives_a_patch_not_an_error() -> None:
    want = desired()
    garbage: dict[str, Any] = {
        "metadata": {"labels": "x", "ownerReferences": [None, 3]},
        "spec": {"ports": [None, "x", {"port": [1]}], "selector": "x"},
        "addressType": "IPv4",
        "endpoints": [None, {"addresses": "x", "conditions": []}],
        "ports": "x",
        "subsets": [None, {"addresses": [None, "x"], "ports": [{"port": {"a": 1}}]}],
    }
    for obj in want.objects():
        change = patch_for(desired=obj, actual=garbage)
        assert change is not None
        assert change.kind == "patch"


# --- ports_from_service ---------------------------------------------------------------------


def test_ports_from_service() -> None:
    remote = {
        "spec": {
            "type": "LoadBalancer",
            "ports": [
                {
                    "name": "postgres",
                    "protocol": "TCP",
                    "port": 5432,
                    "targetPort": "pg",
                    "nodePort": 31432,
                },
                {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 5353},
                {"port": 8080},
            ],
        }
    }
    assert ports_from_service(remote) == (
        ResolvedPort(name="postgres", port=5432, target_port=5432, protocol="TCP"),
        ResolvedPort(name="dns", port=53, target_port=53, protocol="UDP"),
        ResolvedPort(name=None, port=8080, target_port=8080, protocol="TCP"),
    )


@pytest.mark.parametrize(
    "service",
    [
        None,
        "x",
        {},
        {"spec": None},
        {"spec": {"ports": "5432"}},
        {"spec": {"ports": {"port": 5432}}},
        {"spec": {"ports": [None, 5432, "5432", []]}},
        {"spec": {"ports": [{"port": "5432"}, {"port": True}, {"port": 0}, {"port": 65536}]}},
        {"spec": {"ports": [{"port": 5432, "protocol": "HTTP"}, {"port": 1, "protocol": ["TCP"]}]}},
    ],
)
def test_ports_from_garbage_service(service: Any) -> None:
    assert ports_from_service(service) == ()


def test_ports_from_service_keeps_good_entries_among_garbage() -> None:
    remote = {"spec": {"ports": [None, {"port": 5432, "name": 7}, {"port": -1}]}}
    assert ports_from_service(remote) == (
        ResolvedPort(name=None, port=5432, target_port=5432, protocol="TCP"),
    )


# --- ingress_addresses ----------------------------------------------------------------------


def with_ingress(ingress: Any) -> dict[str, Any]:
    return {"status": {"loadBalancer": {"ingress": ingress}}}


def test_ingress_ips_and_hostnames() -> None:
    info = ingress_addresses(
        with_ingress(
            [
                {"ip": "198.51.100.20", "ipMode": "VIP"},
                {"ip": "2001:DB8::20"},
                {"ip": "192.0.2.5", "ports": [{"port": 5432, "protocol": "TCP"}]},
                {"ip": "198.51.100.20"},
                {"hostname": "LB-1.Example.Internal."},
                {"hostname": "lb-0.example.internal"},
                # An ip wins over the hostname next to it.
                {"ip": "192.0.2.6", "hostname": "ignored.example.internal"},
                # An address written where a hostname belongs is taken as an address.
                {"hostname": "192.0.2.7"},
            ]
        )
    )
    assert info == IngressInfo(
        ips=("192.0.2.5", "192.0.2.6", "192.0.2.7", "198.51.100.20", "2001:db8::20"),
        hostnames=("lb-0.example.internal", "lb-1.example.internal"),
        rejected=(),
    )


def test_no_vip_yet_is_not_a_rejection() -> None:
    services: list[dict[str, Any]] = [
        {},
        {"status": {}},
        {"status": {"loadBalancer": {}}},
        with_ingress(None),
    ]
    for service in services:
        assert ingress_addresses(service) == IngressInfo()


def test_bad_ip_falls_back_to_the_hostname() -> None:
    info = ingress_addresses(with_ingress([{"ip": "127.0.0.1", "hostname": "lb.example.com"}]))
    assert info == IngressInfo(
        hostnames=("lb.example.com",), rejected=(Rejected("127.0.0.1", "loopback"),)
    )


HUGE = "1" * 10240


@pytest.mark.parametrize(
    ("service", "reasons"),
    [
        (None, []),
        ("status", []),
        ({"status": "x"}, []),
        ({"status": {"loadBalancer": ["x"]}}, []),
        (with_ingress("192.0.2.1"), ["ingress is not a list"]),
        (with_ingress({"ip": "192.0.2.1"}), ["ingress is not a list"]),
        (with_ingress([None, 42, "192.0.2.1", []]), ["ingress entry is not an object"] * 4),
        (with_ingress([{}, {"ipMode": "VIP"}, {"ip": None, "hostname": ""}]), ["neither"] * 3),
        (with_ingress([{"ip": 3221225985}]), ["not a string but int"]),
        (with_ingress([{"ip": ["192.0.2.1"]}]), ["not a string but list"]),
        (with_ingress([{"ip": {"nested": {"deeper": [1, 2, 3]}}}]), ["not a string but dict"]),
        (with_ingress([{"ip": HUGE}]), ["too long"]),
        (with_ingress([{"hostname": HUGE}]), ["characters long"]),
        (with_ingress([{"ip": "192.0.2.300"}, {"ip": "010.0.0.1"}]), ["not an IP"] * 2),
        (with_ingress([{"ip": " 192.0.2.1"}, {"ip": "192.0.2.1\n"}]), ["not an IP"] * 2),
        (
            with_ingress([{"ip": a} for a in ("127.0.0.1", "::1", "::ffff:127.0.0.1")]),
            ["loopback"] * 3,
        ),
        (with_ingress([{"ip": "169.254.10.1"}, {"ip": "fe80::1"}]), ["link-local"] * 2),
        (with_ingress([{"ip": "224.0.0.1"}, {"ip": "ff02::1"}]), ["multicast"] * 2),
        (with_ingress([{"ip": "0.0.0.0"}, {"ip": "::"}]), ["unspecified"] * 2),
        (with_ingress([{"ip": "255.255.255.255"}]), ["broadcast"]),
        (with_ingress([{"ip": "2001:db8::1%eth0"}]), ["zone index"]),
        (with_ingress([{"hostname": "127.0.0.1"}]), ["loopback"]),
        (
            with_ingress([{"hostname": h} for h in ("-lb.example", "lb_1.example", "a..b", ".")]),
            ["not a valid hostname"] * 4,
        ),
        (with_ingress([{"hostname": 5}, {"hostname": ["lb.example"]}]), ["not a string"] * 2),
    ],
)
def test_ingress_garbage_never_raises(service: Any, reasons: list[str]) -> None:
    info = ingress_addresses(service)
    assert info.ips == ()
    assert info.hostnames == ()
    assert len(info.rejected) == len(reasons)
    for rejected, reason in zip(info.rejected, reasons, strict=True):
        assert reason in rejected.reason
        # Bounded, so that it fits in a condition message or an Event.
        assert len(rejected.value) < 200
        assert rejected.value.isprintable()


def test_garbage_does_not_hide_good_entries() -> None:
    info = ingress_addresses(
        with_ingress([None, {"ip": HUGE}, {"ip": "192.0.2.8"}, {"hostname": "lb.example.com"}])
    )
    assert info.ips == ("192.0.2.8",)
    assert info.hostnames == ("lb.example.com",)
    assert [r.reason for r in info.rejected] == [
        "ingress entry is not an object",
        "too long to be an IP address",
    ]
    assert str(info.rejected[0]) == "None (ingress entry is not an object)"


def test_describe_bounds_what_it_shows() -> None:
    assert builders.describe("192.0.2.1") == "192.0.2.1"
    assert builders.describe(HUGE) == f"{'1' * 80}... (10240 chars)"
    assert builders.describe("a\nb") == "'a\\nb'"
    nested = builders.describe({"k": [HUGE] * 100})
    assert len(nested) <= 83
    assert nested.startswith("{'k': ['111")


# --- IP families ----------------------------------------------------------------------------


def _families(addresses: tuple[str, ...], cluster: tuple[str, ...] | None = None) -> Any:
    built = build(
        owner=OWNER,
        service_name="db",
        ports=[POSTGRES],
        addresses=list(addresses),
        families=cluster,
    )
    spec = built.service["spec"]
    return spec.get("ipFamilyPolicy"), spec.get("ipFamilies")


def test_the_service_takes_the_families_of_its_addresses() -> None:
    assert _families(("192.0.2.10",)) == ("SingleStack", ["IPv4"])
    assert _families(("2001:db8::10",)) == ("SingleStack", ["IPv6"])
    assert _families(("192.0.2.10", "2001:db8::10")) == ("PreferDualStack", ["IPv4", "IPv6"])
    # No addresses, or none the cluster has a Service range for: the families stay as are.
    assert _families(()) == (None, None)
    assert _families(("2001:db8::10",), ("IPv4",)) == (None, None)
    assert _families(("192.0.2.10", "2001:db8::10"), ("IPv4",)) == ("SingleStack", ["IPv4"])


def _service_with(policy: str, families: list[str]) -> dict[str, Any]:
    service = server_service()
    service["spec"]["ipFamilyPolicy"] = policy
    service["spec"]["ipFamilies"] = families
    return service


def test_a_second_family_is_added_and_removed_in_place() -> None:
    dual = desired(("192.0.2.10", "2001:db8::10")).service
    change = patch_for(desired=dual, actual=_service_with("SingleStack", ["IPv4"]))
    assert change == Change(
        kind="patch",
        body={"spec": {"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4", "IPv6"]}},
    )
    # An IPv6-first Service keeps its first family when it gains the second.
    change = patch_for(desired=dual, actual=_service_with("SingleStack", ["IPv6"]))
    assert change is not None
    assert change.body["spec"]["ipFamilies"] == ["IPv6", "IPv4"]
    back = patch_for(
        desired=desired(("192.0.2.10",)).service,
        actual=_service_with("PreferDualStack", ["IPv4", "IPv6"]),
    )
    assert back == Change(
        kind="patch", body={"spec": {"ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]}}
    )


def test_a_new_first_family_takes_a_new_service() -> None:
    six = desired(("2001:db8::10",)).service
    for actual in (
        _service_with("SingleStack", ["IPv4"]),
        _service_with("PreferDualStack", ["IPv4", "IPv6"]),
    ):
        change = patch_for(desired=six, actual=actual)
        assert change is not None
        assert change.kind == "recreate"
        assert change.body["spec"]["ipFamilies"] == ["IPv6"]
