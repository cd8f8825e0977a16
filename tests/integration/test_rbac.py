"""The chart's RBAC is enough and no more: the operator, run under the chart's ServiceAccount
token, carries an import through its whole life, and that identity is refused everything
else (Secrets other than the kubeconfigs it names, other kinds, unmanaged Services, the
imports' spec). Its admission policy holds that identity to what the operator writes: a
selectorless ClusterIP Service, endpoints within the address policy, each owned by a
SharedServiceImport, nowhere in kube-system or the operator's namespace; whoever steals
the token can write nothing else. Tenants bound to the stock view, edit and admin roles
read, or also change, the imports of their namespace, never their status.

The chart is really installed into the workload cluster. The session's operator (an
administrator) is stopped meanwhile, so that every write seen here is the chart identity's.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from deploykit import (
    CHART,
    Helm,
    SupervisorAccess,
    forbidden_requests,
    grant_reader,
    operator_as,
    service_account_token,
    status_of,
    supervisor_access,
    token_client,
    wait_allowed,
    write_values,
)
from harness.cluster import Cluster
from harness.helm import ensure_helm
from harness.operator import OperatorProcess
from kit import (
    GROUP,
    SERVICE_CIDRS_SERVED_FROM,
    VERSION,
    Kit,
    server_minor,
    wait_no_namespace_terminating,
)
from shared_services import builders
from shared_services.api import ResolvedPort
from support import eventually

# The release's address policy, which its admission policy holds the operator's identity to
# as well; the operator runs with the same flags as the chart's Deployment would give it.
# Every address the tests below have the operator write lies within it.
ALLOWED_CIDRS = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/25", "2001:db8:1::/48"]
DENIED_CIDRS = ["198.51.100.128/25"]
POLICY_ARGS = [
    f"--allowed-cidrs={','.join(ALLOWED_CIDRS)}",
    f"--denied-cidrs={','.join(DENIED_CIDRS)}",
]
# The first release whose stored CEL expressions may call the IP library: before it, the
# admission policy leaves the allowed and denied ranges to the operator.
IP_LIBRARY_FROM = 31


@dataclass
class Installation:
    """One release of the chart, and the operator running under its ServiceAccount.

    Not frozen: a test that changes the release replaces the operator with one started for
    the new values, and the fixture stops whichever runs at the end.
    """

    helm: Helm
    release: str
    namespace: str
    service_account: str
    remote_cluster: str
    access: SupervisorAccess
    token: str
    directory: Path
    operator: OperatorProcess


@pytest.fixture(scope="module")
def installed(
    operator: OperatorProcess,
    crds: None,
    supervisor: Cluster,
    workload: Cluster,
    workload_api: k8s.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Installation]:
    """The chart installed cluster-wide, its operator running as its ServiceAccount."""
    directory = tmp_path_factory.mktemp("rbac")
    suffix = secrets.token_hex(3)
    release, namespace, remote = f"rbac-{suffix}", f"sso-rbac-{suffix}", f"sup-rbac-{suffix}"
    access = supervisor_access(supervisor, directory)
    helm = Helm(
        ensure_helm(),
        home=directory / "helm",
        kubeconfig=workload.write_kubeconfig(directory / "workload-admin.kubeconfig"),
    )
    values = write_values(
        directory / "values.yaml",
        {
            "remoteClusters": [{"name": remote, "kubeconfig": access.kubeconfig_text}],
            "addressPolicy": {"allowedCIDRs": ALLOWED_CIDRS, "deniedCIDRs": DENIED_CIDRS},
        },
    )
    # The release leaves the session's CRDs alone (an upgrade's --reuse-values keeps it so).
    helm.install_beside_crds(release, namespace=namespace, values=values)
    service_account = f"{release}-shared-services-operator"
    token = service_account_token(workload_api, namespace=namespace, name=service_account)
    wait_allowed(
        workload,
        token,
        ("v1", "services", None),
        ("v1", "secrets", namespace, f"{remote}-kubeconfig"),
        (f"{GROUP}/{VERSION}", "remoteclusters", None),
    )
    installation = Installation(
        helm=helm,
        release=release,
        namespace=namespace,
        service_account=service_account,
        remote_cluster=remote,
        access=access,
        token=token,
        directory=directory,
        operator=operator_as(
            workload,
            token=token,
            operator_namespace=namespace,
            directory=directory,
            name="chart",
            # As the chart's Deployment says (INSTANCE): the release that writes the status
            # of the RemoteClusters it creates.
            extra_args=[*POLICY_ARGS, f"--instance={service_account}"],
        ),
    )
    operator.stop()  # the session's operator, an administrator, must not do the work
    # What earlier tests left in namespaces still going away would be refused (403) there.
    wait_no_namespace_terminating(k8s.CoreV1Api(workload_api))
    try:
        installation.operator.start()
        yield installation
    finally:
        installation.operator.stop()
        helm.run("uninstall", release, "-n", namespace, check=False)
        k8s.CoreV1Api(workload_api).delete_namespace(namespace)
        operator.start()


@pytest.fixture
def chart_kit(
    installed: Installation,
    namespace: str,
    supervisor: Cluster,
    supervisor_api: k8s.ApiClient,
    workload_api: k8s.ApiClient,
) -> Kit:
    """Shortcuts for this test's namespace, with the chart identity's operator running."""
    grant_reader(supervisor, installed.access, namespace)
    kit = Kit(
        namespace=namespace,
        supervisor=supervisor,
        supervisor_api=supervisor_api,
        workload_api=workload_api,
        operator=installed.operator,
    )
    kit.cluster_name = installed.remote_cluster
    return kit


def _connected(kit: Kit, name: str) -> bool:
    status = (
        kit.custom.get_cluster_custom_object(GROUP, VERSION, "remoteclusters", name).get("status")
        or {}
    )
    return any(
        c["type"] == "Connected" and c["status"] == "True" for c in status.get("conditions", [])
    )


@pytest.mark.releases
def test_whole_lifecycle_under_the_chart_identity(installed: Installation, chart_kit: Kit) -> None:
    kit = chart_kit
    # The RemoteCluster and its Secret came from the chart's values.
    eventually(lambda: _connected(kit, installed.remote_cluster), timeout=20)

    vip = kit.load_balancer("db")
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": [vip]})
    kit.wait_condition("db", "Ready", "True", "Synced")

    kit.set_ingress("db", [{"ip": "198.51.100.31"}])
    kit.wait_addresses("db", {"IPv4": ["198.51.100.31"]})
    eventually(lambda: [e for e in kit.events("db") if e.reason == "AddressesChanged"])
    # Back and forth again: the repeated move raises the count of its Event (patch).
    # The status (and the Event) follow the slice a moment after a move: wait for each,
    # or the next move would come before the status said the last one.
    for address in (vip, "198.51.100.31"):
        kit.set_ingress("db", [{"ip": address}])
        kit.wait_addresses("db", {"IPv4": [address]})
        eventually(lambda a=address: kit.get_import("db")["status"]["addresses"] == [a])
    eventually(
        lambda: (
            [
                e.count
                for e in kit.events("db")
                if e.reason == "AddressesChanged" and e.message == f"{vip} -> 198.51.100.31"
            ]
            == [2]
        )
    )

    # A hand edit is undone, through patch.
    kit.core.patch_namespaced_service("db", kit.namespace, {"spec": {"selector": {"app": "x"}}})
    eventually(lambda: kit.core.read_namespaced_service("db", kit.namespace).spec.selector is None)

    # A Service of somebody else's: reported, with an Event, and left alone (get, create).
    kit.core.create_namespaced_service(
        kit.namespace, {"metadata": {"name": "taken"}, "spec": {"ports": [{"port": 80}]}}
    )
    kit.create_import(
        "other",
        {
            "source": {"addresses": ["203.0.113.40"]},
            "ports": [{"port": 80}],
            "serviceName": "taken",
        },
    )
    kit.wait_condition("other", "Ready", "False", "Conflict")
    eventually(lambda: [e for e in kit.events("other") if e.reason == "Conflict"])
    assert kit.core.read_namespaced_service("taken", kit.namespace).metadata.labels is None

    # A renamed Service: the new one is written, the old one deleted.
    kit.patch_import("db", {"spec": {"serviceName": "db-v2"}})
    kit.wait_addresses("db-v2", {"IPv4": ["198.51.100.31"]})
    eventually(lambda: status_of(kit.core.read_namespaced_service, "db", kit.namespace) == 404)

    kit.delete_import("db")
    eventually(lambda: kit.slice_addresses("db-v2") == {})

    # A catalog: its import made (create), its status written, and the import removed when
    # the catalog lets the Service go (delete), all past the admission policy.
    catalogs = (GROUP, VERSION, kit.namespace, "sharedservicecatalogs")
    kit.custom.create_namespaced_custom_object(
        *catalogs,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SharedServiceCatalog",
            "metadata": {"name": "shop"},
            "spec": {"cluster": kit.cluster_name, "namespace": kit.namespace, "namePrefix": "c-"},
        },
    )
    eventually(lambda: status_of(kit.get_import, "c-db") == 200, timeout=60)
    kit.wait_condition("c-db", "Ready", "True", "Synced", timeout=60)
    eventually(
        lambda: (
            (kit.custom.get_namespaced_custom_object(*catalogs, "shop").get("status") or {}).get(
                "imported"
            )
            == 1
        )
    )
    kit.custom.patch_namespaced_custom_object(
        *catalogs, "shop", {"spec": {"selector": {"matchLabels": {"none": "x"}}}}
    )
    eventually(lambda: status_of(kit.get_import, "c-db") == 404, timeout=60)

    log = installed.operator.log_path.read_text()
    assert forbidden_requests(log) == [], "\n".join(forbidden_requests(log))
    assert installed.token not in log
    assert installed.access.token not in log


@pytest.mark.releases
def test_the_chart_identity_is_refused_everything_else(
    installed: Installation, chart_kit: Kit, workload: Cluster
) -> None:
    kit = chart_kit
    kit.core.create_namespaced_secret(
        kit.namespace, {"metadata": {"name": "app-password"}, "stringData": {"password": "x"}}
    )
    kit.core.create_namespaced_service(
        kit.namespace, {"metadata": {"name": "payments"}, "spec": {"ports": [{"port": 443}]}}
    )
    kit.create_import("mine", {"source": {"addresses": ["203.0.113.41"]}, "ports": [{"port": 80}]})
    kit.wait_condition("mine", "Ready", "True")

    api = token_client(workload, installed.token)
    core, custom = k8s.CoreV1Api(api), k8s.CustomObjectsApi(api)
    rogue = {"metadata": {"name": "rogue"}, "spec": {"ports": [{"port": 80}]}}
    # The admission policy is enforced once the API server has loaded it.
    eventually(
        lambda: (
            status_of(core.create_namespaced_service, kit.namespace, rogue, dry_run="All") == 403
        )
    )
    try:
        # Secrets: the kubeconfigs that the chart's RemoteClusters name, listed and watched
        # one by one as the operator does; no other Secret, not even of its own namespace.
        kubeconfig = f"metadata.name={installed.remote_cluster}-kubeconfig"
        assert (
            status_of(core.list_namespaced_secret, installed.namespace, field_selector=kubeconfig)
            == 200
        )
        assert status_of(core.list_namespaced_secret, installed.namespace) == 403
        assert (
            status_of(
                core.list_namespaced_secret,
                installed.namespace,
                field_selector=f"metadata.name=sh.helm.release.v1.{installed.release}.v1",
            )
            == 403
        )
        assert (
            status_of(
                core.read_namespaced_secret,
                f"{installed.remote_cluster}-kubeconfig",
                installed.namespace,
            )
            == 403
        )
        assert status_of(core.list_namespaced_secret, kit.namespace) == 403
        assert status_of(core.read_namespaced_secret, "app-password", kit.namespace) == 403
        assert status_of(core.list_secret_for_all_namespaces) == 403
        # The address policy's reads of the cluster itself: list and watch, nothing else.
        networking = k8s.NetworkingV1Api(api)
        assert status_of(core.list_node) == 200
        assert status_of(core.create_node, {"metadata": {"name": "rogue"}}) == 403
        # Pods: listed and watched for their addresses, never read one by one nor changed.
        assert status_of(core.list_pod_for_all_namespaces) == 200
        assert status_of(core.read_namespaced_pod, "any", kit.namespace) == 403
        assert status_of(core.delete_namespaced_pod, "any", kit.namespace) == 403
        if server_minor(api) >= SERVICE_CIDRS_SERVED_FROM:
            assert status_of(networking.list_service_cidr) == 200
            assert status_of(networking.read_service_cidr, "kubernetes") == 403
            assert status_of(networking.delete_service_cidr, "kubernetes") == 403
        else:  # not served before 1.33, and never asked for (see test_releases.py)
            assert status_of(networking.list_service_cidr) == 404
        # Nothing of other kinds.
        assert status_of(core.list_namespaced_config_map, kit.namespace) == 403
        assert status_of(core.list_namespace) == 403
        assert (
            status_of(core.create_namespaced_config_map, kit.namespace, {"metadata": {"name": "x"}})
            == 403
        )
        # Imports: read, and their status written; their spec written and the import
        # deleted only for those a catalog holds, so never a tenant's own.
        assert (
            status_of(
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                kit.namespace,
                "sharedserviceimports",
            )
            == 200
        )
        assert (
            status_of(
                custom.patch_namespaced_custom_object,
                GROUP,
                VERSION,
                kit.namespace,
                "sharedserviceimports",
                "mine",
                {"spec": {"serviceName": "hijack"}},
            )
            == 403
        )
        assert (
            status_of(
                custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                kit.namespace,
                "sharedserviceimports",
                "mine",
            )
            == 403
        )
        assert (
            status_of(
                custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                kit.namespace,
                "sharedserviceimports",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "SharedServiceImport",
                    "metadata": {"name": "rogue", "labels": {"sharedservices.io/catalog": "x"}},
                    "spec": {"source": {"addresses": ["203.0.113.42"]}, "ports": [{"port": 80}]},
                },
            )
            == 403
        )
        assert (
            status_of(
                custom.create_cluster_custom_object,
                GROUP,
                VERSION,
                "remoteclusters",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "RemoteCluster",
                    "metadata": {"name": "x"},
                    "spec": {"kubeconfigSecretRef": {"name": "x"}},
                },
            )
            == 403
        )
        # Services: no update at all; patch and delete only of those it manages.
        payments = core.read_namespaced_service("payments", kit.namespace)
        assert (
            status_of(core.replace_namespaced_service, "payments", kit.namespace, payments) == 403
        )
        assert (
            status_of(
                core.patch_namespaced_service,
                "payments",
                kit.namespace,
                {"spec": {"selector": {"a": "b"}}},
            )
            == 403
        )
        assert (
            status_of(
                core.patch_namespaced_service,
                "payments",
                kit.namespace,
                {
                    "metadata": {
                        "labels": {"app.kubernetes.io/managed-by": "shared-services-operator"}
                    }
                },
            )
            == 403
        )
        assert status_of(core.delete_namespaced_service, "payments", kit.namespace) == 403
        assert status_of(core.create_namespaced_service, kit.namespace, rogue) == 403
        assert (
            status_of(
                core.patch_namespaced_service,
                "mine",
                kit.namespace,
                {"metadata": {"labels": {"app.kubernetes.io/managed-by": "me"}}},
            )
            == 403
        )
        assert (
            status_of(
                core.patch_namespaced_service,
                "mine",
                kit.namespace,
                {"metadata": {"labels": {"x": "y"}}},
            )
            == 200
        )
    finally:
        api.close()
    # Nothing of somebody else's was changed.
    payments = kit.core.read_namespaced_service("payments", kit.namespace)
    assert payments.metadata.labels is None
    assert payments.spec.selector is None


def _written_for(kit: Kit, service_name: str) -> builders.Desired:
    """What the operator would write for import "mine" under ``service_name``: the shapes
    that the admission policy must let through, and each refusal below changes one thing of.
    """
    mine = kit.get_import("mine")
    owner = builders.Owner(namespace=kit.namespace, name="mine", uid=mine["metadata"]["uid"])
    port = ResolvedPort(port=80, target_port=80, protocol="TCP")
    return builders.build(
        owner=owner,
        service_name=service_name,
        ports=[port],
        addresses=["203.0.113.44", "2001:db8:1::44"],
        families={"IPv4"},
    )


def _dry_run(call: Callable[..., Any], *args: Any) -> tuple[int, str]:
    """The status of a write that the API server admits but does not store, and its message."""
    try:
        call(*args, dry_run="All")
    except k8s.ApiException as error:
        try:
            message = str(json.loads(error.body or "{}").get("message", ""))
        except ValueError:
            message = str(error.body)
        return int(error.status), message
    return 200, ""


def _changed(obj: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    changed = copy.deepcopy(obj)
    change(changed)
    return changed


@pytest.mark.releases
def test_the_chart_identity_writes_only_what_the_operator_writes(
    installed: Installation, chart_kit: Kit, workload: Cluster
) -> None:
    kit = chart_kit
    kit.create_import("mine", {"source": {"addresses": ["203.0.113.41"]}, "ports": [{"port": 80}]})
    kit.wait_condition("mine", "Ready", "True")
    written = _written_for(kit, "forged")
    service, endpoints = written.service, written.endpoints
    ipv4_slice, ipv6_slice = written.endpoint_slices
    api = token_client(workload, installed.token)
    core, discovery = k8s.CoreV1Api(api), k8s.DiscoveryV1Api(api)
    ranges_held = server_minor(api) >= IP_LIBRARY_FROM
    try:
        create_service = core.create_namespaced_service
        create_slice = discovery.create_namespaced_endpoint_slice
        create_endpoints = core.create_namespaced_endpoints
        # The admission policy is enforced once the API server has loaded it.
        unlabelled = {"metadata": {"name": "rogue"}, "spec": {"ports": [{"port": 80}]}}
        eventually(lambda: _dry_run(create_service, kit.namespace, unlabelled)[0] == 403)
        # What the operator writes is admitted.
        for call, body in (
            (create_service, service),
            (create_slice, ipv4_slice),
            (create_slice, ipv6_slice),
            (create_endpoints, endpoints),
        ):
            assert _dry_run(call, kit.namespace, body) == (200, ""), body

        def label(key: str, value: str | None) -> Callable[[dict[str, Any]], object]:
            def change(obj: dict[str, Any]) -> object:
                labels = obj["metadata"]["labels"]
                return labels.pop(key) if value is None else labels.update({key: value})

            return change

        def owner(**fields: str) -> Callable[[dict[str, Any]], object]:
            return lambda obj: obj["metadata"]["ownerReferences"][0].update(fields)

        def addresses(*ips: str) -> Callable[[dict[str, Any]], object]:
            def change(obj: dict[str, Any]) -> object:
                if obj["kind"] == "EndpointSlice":
                    obj["endpoints"] = [{"addresses": [ip]} for ip in ips]
                else:
                    obj["subsets"][0]["addresses"] = [{"ip": ip} for ip in ips]
                return None

            return change

        def in_namespace(namespace: str) -> Callable[[dict[str, Any]], object]:
            return lambda obj: obj["metadata"].update({"namespace": namespace})

        spec = service["spec"]
        slice_label = builders.SLICE_MANAGED_BY_LABEL
        forged = {
            # Services: selectorless ClusterIP, nothing that opens them to the outside.
            "a LoadBalancer": {**service, "spec": {**spec, "type": "LoadBalancer"}},
            "a NodePort": {**service, "spec": {**spec, "type": "NodePort"}},
            "external IPs": {**service, "spec": {**spec, "externalIPs": ["192.0.2.60"]}},
            "a selector": {**service, "spec": {**spec, "selector": {"app": "payments"}}},
            "a headless Service": {**service, "spec": {**spec, "clusterIP": "None"}},
            # Owned by an import, and labelled with its name.
            "no owner": _changed(service, lambda o: o["metadata"].pop("ownerReferences")),
            "another owner": _changed(service, owner(apiVersion="v1", kind="ConfigMap")),
            "an owner not its import": _changed(service, owner(name="payments")),
            "no import label": _changed(service, label(builders.IMPORT_LABEL, None)),
            # Endpoints of its own, which no controller of the cluster takes for its own.
            "a slice of the EndpointSlice controller's": _changed(
                ipv4_slice, label(slice_label, "endpointslice-controller.k8s.io")
            ),
            "a slice of names": {
                **ipv4_slice,
                "addressType": "FQDN",
                "endpoints": [{"addresses": ["db.example.com"]}],
            },
            "mirrored Endpoints": _changed(endpoints, label(builders.SKIP_MIRROR_LABEL, None)),
            # Never a multicast address, on any release.
            "an IPv4 multicast slice": _changed(ipv4_slice, addresses("233.252.0.1")),
            "an IPv6 multicast slice": _changed(ipv6_slice, addresses("ff0e::db8:0:1")),
            "IPv4 multicast Endpoints": _changed(endpoints, addresses("233.252.0.1")),
            "IPv6 multicast Endpoints": _changed(endpoints, addresses("ff0e::db8:0:1")),
        }
        # Within the allowed ranges, outside the denied ones: from the release whose CEL
        # has the IP library; on 1.30 the operator alone holds them.
        out_of_range = {
            "a slice outside the allowed ranges": _changed(ipv4_slice, addresses("203.0.113.200")),
            "a slice in a denied range": _changed(ipv4_slice, addresses("198.51.100.200")),
            "an IPv6 slice outside the allowed ranges": _changed(
                ipv6_slice, addresses("2001:db8:2::1")
            ),
            "Endpoints partly outside the allowed ranges": _changed(
                endpoints, addresses("203.0.113.44", "203.0.113.200")
            ),
            "Endpoints in a denied range": _changed(endpoints, addresses("198.51.100.200")),
            "IPv6 Endpoints outside the allowed ranges": _changed(
                endpoints, addresses("2001:db8:2::1")
            ),
        }
        create = {
            "Service": create_service,
            "EndpointSlice": create_slice,
            "Endpoints": create_endpoints,
        }
        for what, body in (forged | out_of_range).items():
            status, message = _dry_run(create[body["kind"]], kit.namespace, body)
            if what in forged or ranges_held:
                assert status == 403, f"{what}: {status} {message}"
                assert "ValidatingAdmissionPolicy" in message, f"{what}: {message}"
            else:
                assert status == 200, f"{what}: {status} {message}"
        # Nowhere in kube-system or the operator's own namespace, which the chart does not
        # let imports have (imports.allowSystemNamespaces); RBAC alone would let it there.
        for namespace in ("kube-system", installed.namespace):
            status, message = _dry_run(
                create_service, namespace, _changed(service, in_namespace(namespace))
            )
            assert status == 403, f"{namespace}: {status} {message}"
            assert "ValidatingAdmissionPolicy" in message, message

        # Changes of what the operator wrote are held to the same shapes.
        patch_service = core.patch_namespaced_service
        patch_slice = discovery.patch_namespaced_endpoint_slice
        for call, name, body in (
            (patch_service, "mine", {"spec": {"externalIPs": ["192.0.2.61"]}}),
            (patch_service, "mine", {"spec": {"type": "NodePort"}}),
            (patch_service, "mine", {"spec": {"selector": {"app": "payments"}}}),
            (patch_service, "mine", {"metadata": {"ownerReferences": None}}),
            (patch_slice, "mine-ipv4", {"endpoints": [{"addresses": ["233.252.0.1"]}]}),
        ):
            status, message = _dry_run(call, name, kit.namespace, body)
            assert status == 403, f"{name} {body}: {status} {message}"
            assert "ValidatingAdmissionPolicy" in message, message
        assert _dry_run(
            patch_service, "mine", kit.namespace, {"metadata": {"labels": {"x": "y"}}}
        ) == (200, "")
    finally:
        api.close()
    # The operator's own writes went through all along.
    assert kit.slice_addresses("mine") == {"IPv4": ["203.0.113.41"]}
    log = installed.operator.log_path.read_text()
    assert forbidden_requests(log) == [], "\n".join(forbidden_requests(log))


STOCK_ROLES = ("view", "edit", "admin")


def _bind(rbac: Any, namespace: str, role: str, user: str) -> None:
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": f"{user}-{role}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
        },
    )


def _may(
    api: k8s.ApiClient, verb: str, resource: str, namespace: str | None, subresource: str = ""
) -> bool:
    """Whether the user of ``api`` may do ``verb``, as the authorizer answers that user."""
    attributes = {"group": GROUP, "resource": resource, "verb": verb}
    if namespace:
        attributes["namespace"] = namespace
    if subresource:
        attributes["subresource"] = subresource
    review = k8s.AuthorizationV1Api(api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": attributes}}
    )
    return bool(review.status.allowed)


@pytest.mark.releases
@pytest.mark.parametrize("role", STOCK_ROLES)
def test_tenants_with_the_stock_roles(
    installed: Installation,
    chart_kit: Kit,
    workload: Cluster,
    workload_api: k8s.ApiClient,
    role: str,
) -> None:
    kit = chart_kit
    alice = workload.users["alice"]
    _bind(k8s.RbacAuthorizationV1Api(workload_api), kit.namespace, role, alice.name)
    kit.create_import("db", {"source": {"addresses": ["203.0.113.45"]}, "ports": [{"port": 5432}]})
    kit.wait_condition("db", "Ready", "True")
    api = workload.api_client(alice)
    custom = k8s.CustomObjectsApi(api)
    imports = (GROUP, VERSION, kit.namespace, "sharedserviceimports")
    changes = role in ("edit", "admin")
    try:
        # The clusterrole-aggregation controller adds the chart's rules to the stock roles.
        eventually(
            lambda: status_of(custom.list_namespaced_custom_object, *imports) == 200, timeout=30
        )
        assert status_of(custom.get_namespaced_custom_object, *imports, "db") == 200
        assert _may(api, "watch", "sharedserviceimports", kit.namespace)
        for verb in ("update", "deletecollection"):
            assert _may(api, verb, "sharedserviceimports", kit.namespace) is changes, verb
        # The status is the operator's to write, whatever the role.
        for verb in ("update", "patch"):
            assert not _may(api, verb, "sharedserviceimports", kit.namespace, "status"), verb
        assert (
            status_of(
                custom.patch_namespaced_custom_object_status,
                *imports,
                "db",
                {"status": {"addresses": ["192.0.2.99"]}},
            )
            == 403
        )
        # RemoteClusters are the platform team's: a tenant's role shows none of them.
        assert not _may(api, "list", "remoteclusters", None)

        app = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SharedServiceImport",
            "metadata": {"name": "app"},
            "spec": {"source": {"addresses": ["203.0.113.46"]}, "ports": [{"port": 80}]},
        }
        expected = 200 if changes else 403
        assert status_of(custom.create_namespaced_custom_object, *imports, app) == expected
        patch = {"spec": {"ports": [{"port": 5433}]}}
        assert status_of(custom.patch_namespaced_custom_object, *imports, "db", patch) == expected
        assert status_of(custom.delete_namespaced_custom_object, *imports, "db") == expected
    finally:
        api.close()
    if changes:
        kit.wait_condition("app", "Ready", "True")
        eventually(lambda: status_of(kit.core.read_namespaced_service, "db", kit.namespace) == 404)
    else:
        assert kit.get_import("db")["spec"]["ports"][0]["port"] == 5432
        assert status_of(kit.core.read_namespaced_service, "app", kit.namespace) == 404


@pytest.mark.releases
def test_cluster_wide_viewers_read_imports_but_no_remote_cluster(
    installed: Installation, workload_api: k8s.ApiClient
) -> None:
    group = f"viewers-{secrets.token_hex(3)}"
    rbac = k8s.RbacAuthorizationV1Api(workload_api)
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": group},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "view",
            },
            "subjects": [{"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}],
        }
    )

    def allowed(verb: str, resource: str) -> bool:
        review = k8s.AuthorizationV1Api(workload_api).create_subject_access_review(
            {
                "spec": {
                    "user": "carol",
                    "groups": [group],
                    "resourceAttributes": {"group": GROUP, "resource": resource, "verb": verb},
                }
            }
        )
        return bool(review.status.allowed)

    try:
        # Bound to view across the cluster: the imports of every namespace...
        eventually(lambda: allowed("list", "sharedserviceimports"), timeout=30)
        assert allowed("watch", "sharedserviceimports")
        assert not allowed("create", "sharedserviceimports")
        # ... but not the RemoteClusters: which central namespaces may be imported, through
        # which Secret, from which server release, is the platform team's to know.
        for verb in ("get", "list", "watch"):
            assert not allowed(verb, "remoteclusters"), verb
    finally:
        rbac.delete_cluster_role_binding(group)


def test_listed_namespaces_with_roles_and_leader_election(
    installed: Installation, chart_kit: Kit, workload: Cluster, workload_api: k8s.ApiClient
) -> None:
    kit = chart_kit
    other = f"t-{secrets.token_hex(3)}"
    k8s.CoreV1Api(workload_api).create_namespace({"metadata": {"name": other}})
    try:
        installed.helm.run(
            "upgrade",
            installed.release,
            str(CHART),
            "-n",
            installed.namespace,
            "--reuse-values",
            "--set",
            f"watchNamespaces={{{kit.namespace}}}",
            "--set",
            "leaderElection.enabled=true",
            "--set",
            "replicaCount=2",
        )
        wait_allowed(
            workload,
            installed.token,
            ("v1", "services", kit.namespace),
            (f"{GROUP}/{VERSION}", "sharedserviceimports", kit.namespace),
        )
        installed.operator.stop()
        scoped = operator_as(
            workload,
            token=installed.token,
            operator_namespace=installed.namespace,
            directory=installed.directory,
            name="scoped",
            extra_args=[
                f"--namespace={kit.namespace}",
                "--leader-elect",
                f"--lease-name={installed.release}-shared-services-operator",
                f"--instance={installed.release}-shared-services-operator",
                *POLICY_ARGS,
            ],
        )
        installed.operator = scoped.start()
        kit.operator = scoped

        kit.create_import(
            "db", {"source": {"addresses": ["203.0.113.42"]}, "ports": [{"port": 5432}]}
        )
        kit.wait_condition("db", "Ready", "True", timeout=30)
        lease = k8s.CoordinationV1Api(workload_api).read_namespaced_lease(
            f"{installed.release}-shared-services-operator", installed.namespace
        )
        assert lease.spec.holder_identity

        # An import elsewhere is none of this release's business, nor may it be.
        kit.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            other,
            "sharedserviceimports",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "SharedServiceImport",
                "metadata": {"name": "db"},
                "spec": {"source": {"addresses": ["203.0.113.43"]}, "ports": [{"port": 80}]},
            },
        )
        api = token_client(workload, installed.token)
        try:
            assert status_of(k8s.CoreV1Api(api).list_namespaced_service, kit.namespace) == 200
            assert status_of(k8s.CoreV1Api(api).list_namespaced_service, other) == 403
            assert status_of(k8s.CoreV1Api(api).list_service_for_all_namespaces) == 403
        finally:
            api.close()
        kit.settled(lambda: kit.operator.metric("shared_services_syncs_total", result="ok"))
        assert status_of(kit.core.read_namespaced_service, "db", other) == 404
        found = kit.custom.get_namespaced_custom_object(
            GROUP, VERSION, other, "sharedserviceimports", "db"
        )
        assert "status" not in found

        log = scoped.log_path.read_text()
        assert forbidden_requests(log) == [], "\n".join(forbidden_requests(log))
        assert "Not enough permissions" not in log
    finally:
        k8s.CoreV1Api(workload_api).delete_namespace(other)
