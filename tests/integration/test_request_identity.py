"""Every request says who sent it, as the API servers record it, not as the operator says.

The operator runs under a ServiceAccount of its own against a second API server of the
workload cluster that writes an audit log of that identity, and signs in to the supervisor
as an SSO user, whose requests the supervisor's audit log records. It syncs an import from
the supervisor and follows a VIP move, which makes it create, patch and update objects,
statuses, Events and its Lease. Then:

- every request of its identity on the workload cluster, kopf's watches of the imports and
  RemoteClusters among them, came with the operator's User-Agent, and every write (POST,
  PUT, PATCH) named the operator as its field manager;
- ``managedFields`` of what it wrote (the Service, its EndpointSlice and Endpoints, the
  Lease, the Events and the import's status) name the operator, and nothing else;
- every request of its SSO user on the supervisor, the remote watches among them, and every
  sign-in at ``/wcp/login``, came with the same User-Agent.

A watch is audited when it ends, so the logs are read once the operator has stopped.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from kubernetes import client as k8s

from faults.toolkit import SpareApiServer
from harness.cluster import AuditedRequest, AuditLog, Cluster
from harness.operator import OPERATOR_NAMESPACE, OperatorProcess
from harness.signin import SignInService, SsoUser
from kit import GROUP, VERSION, Kit
from shared_services.version import FIELD_MANAGER, USER_AGENT
from shared_services.version import VERSION as OPERATOR_VERSION
from support import eventually

WRITES = ("create", "update", "patch")


@dataclass
class Audited:
    """The operator under an identity of its own, against an API server that audits it."""

    operator: OperatorProcess
    log: AuditLog
    user: str
    lease: str


@pytest.fixture
def audited(
    crds: None,
    namespace: str,
    workload: Cluster,
    workload_api: k8s.ApiClient,
    operator: OperatorProcess,
    tmp_path: Path,
) -> Iterator[Audited]:
    """The operator as a ServiceAccount, talking only to an audited second API server.

    The identity may do anything: what is checked here is who the requests say sent them,
    not what the chart grants (test_rbac.py proves that). The session's operator is stopped
    meanwhile, so that no other writer touches this namespace.
    """
    # Any: bodies here are plain dicts, which the typed client's models do not describe.
    core: Any = k8s.CoreV1Api(workload_api)
    rbac: Any = k8s.RbacAuthorizationV1Api(workload_api)
    account = f"identity-{secrets.token_hex(3)}"
    core.create_namespaced_service_account(OPERATOR_NAMESPACE, {"metadata": {"name": account}})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": account},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": account, "namespace": OPERATOR_NAMESPACE}
            ],
        }
    )
    token = core.create_namespaced_service_account_token(
        account, OPERATOR_NAMESPACE, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    user = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{account}"
    log = AuditLog(path=tmp_path / "audit.log", users=(user,))
    server = SpareApiServer(
        dataclasses.replace(workload, audit=log), log_path=tmp_path / "kube-apiserver.log"
    ).start()
    config = workload.kubeconfig(token=str(token))
    config["clusters"][0]["cluster"]["server"] = server.url
    kubeconfig = tmp_path / "identity.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    kubeconfig.chmod(0o600)
    lease = f"identity-{namespace}"
    audited = Audited(
        operator=OperatorProcess(
            kubeconfig=kubeconfig,
            log_path=tmp_path / "operator.log",
            # The Lease makes it update an object (PUT) besides creating and patching.
            extra_args=[f"--namespace={namespace}", "--leader-elect", f"--lease-name={lease}"],
        ),
        log=log,
        user=user,
        lease=lease,
    )
    operator.stop()
    try:
        audited.operator.start()
        yield audited
    finally:
        audited.operator.stop()
        server.stop()
        rbac.delete_cluster_role_binding(account)
        core.delete_namespaced_service_account(account, OPERATOR_NAMESPACE)
        operator.start()


def _said(requests: list[AuditedRequest]) -> list[str]:
    return [f"{r.verb} {r.uri} as {r.user_agent!r}" for r in requests]


def _field_manager(request: AuditedRequest) -> list[str]:
    return parse_qs(urlsplit(request.uri).query).get("fieldManager", [])


def _watched(log: AuditLog, user: str, plurals: tuple[str, ...]) -> list[AuditedRequest]:
    """The requests of ``user``, once a watch of each of ``plurals`` is among them; else []."""
    found = [r for r in log.requests() if r.user == user]
    watches = [r.uri for r in found if r.verb == "watch"]
    if all(any(f"/{plural}?" in uri for uri in watches) for plural in plurals):
        return found
    return []


def _managers(obj: Any) -> list[tuple[str, str]]:
    """(manager, subresource) of each managedFields entry of a client model."""
    return [
        (str(entry.manager), str(entry.subresource or ""))
        for entry in obj.metadata.managed_fields or []
    ]


def test_every_request_names_the_operator_and_every_write_its_field_manager(
    audited: Audited,
    namespace: str,
    supervisor: Cluster,
    supervisor_api: k8s.ApiClient,
    workload_api: k8s.ApiClient,
    signin: SignInService,
    sso_user: SsoUser,
) -> None:
    assert OPERATOR_VERSION != "unknown"
    assert USER_AGENT.startswith(f"shared-services-operator/{OPERATOR_VERSION} ")
    kit = Kit(
        namespace=namespace,
        supervisor=supervisor,
        supervisor_api=supervisor_api,
        workload_api=workload_api,
        operator=audited.operator,
    )
    supervisor.bind_sso_user(sso_user.name, namespace)
    supervisor_audit = supervisor.audit
    assert supervisor_audit is not None
    try:
        cluster = kit.sso_remote_cluster(signin, sso_user)
        vip = kit.load_balancer("db")
        kit.create_import(
            "db",
            {
                "source": {
                    "remoteService": {"cluster": cluster, "namespace": namespace, "name": "db"}
                }
            },
        )
        kit.wait_addresses("db", {"IPv4": [vip]}, timeout=30)
        kit.wait_condition("db", "Ready", "True", "Synced")
        # A move: the slice and the Endpoints are patched, the status again, an Event made.
        kit.set_ingress("db", [{"ip": "198.51.100.77"}])
        kit.wait_addresses("db", {"IPv4": ["198.51.100.77"]})
        eventually(lambda: kit.get_import("db")["status"]["addresses"] == ["198.51.100.77"])
        eventually(lambda: [e for e in kit.events("db") if e.reason == "AddressesChanged"])
    finally:
        # Its watches end with it, and only then are they in the audit logs.
        audited.operator.stop()
        kit.cleanup()
        try:
            kit.core.delete_namespaced_secret(f"{namespace}-sso-sso", OPERATOR_NAMESPACE)
        except k8s.ApiException as error:
            if error.status != 404:
                raise

    # kopf's watches and the operator's own, each logged when it ended.
    local = eventually(
        lambda: _watched(
            audited.log, audited.user, ("sharedserviceimports", "remoteclusters", "endpointslices")
        ),
        timeout=30,
    )
    strangers = [r for r in local if r.user_agent != USER_AGENT]
    assert not strangers, "\n".join(_said(strangers))
    writes = [r for r in local if r.verb in WRITES]
    assert {r.verb for r in writes} == set(WRITES), _said(writes)
    unnamed = [r for r in writes if _field_manager(r) != [FIELD_MANAGER]]
    assert not unnamed, "\n".join(_said(unnamed))
    print(  # the figures of this run, shown with -s
        f"workload: {len(local)} requests of {audited.user}, {len(writes)} writes, "
        f"all as {USER_AGENT!r}"
    )

    # What it wrote names it, and only it, as the manager of every field.
    core, discovery = k8s.CoreV1Api(workload_api), k8s.DiscoveryV1Api(workload_api)
    slices = discovery.list_namespaced_endpoint_slice(
        namespace, label_selector="kubernetes.io/service-name=db"
    ).items
    assert slices
    written = [
        core.read_namespaced_service("db", namespace),
        core.read_namespaced_endpoints("db", namespace),
        *slices,
        k8s.CoordinationV1Api(workload_api).read_namespaced_lease(
            audited.lease, OPERATOR_NAMESPACE
        ),
        *[e for e in kit.events("db") if e.reason == "AddressesChanged"],
    ]
    for obj in written:
        what, managers = f"{type(obj).__name__} {obj.metadata.name}", _managers(obj)
        assert managers, f"{what} has no managedFields"
        assert {manager for manager, _ in managers} == {FIELD_MANAGER}, f"{what}: {managers}"
    imported = kit.custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "sharedserviceimports", "db"
    )
    k8s.CoordinationV1Api(workload_api).delete_namespaced_lease(audited.lease, OPERATOR_NAMESPACE)
    status = [
        entry["manager"]
        for entry in imported["metadata"]["managedFields"]
        if entry.get("subresource") == "status"
    ]
    assert status == [FIELD_MANAGER], imported["metadata"]["managedFields"]

    # The supervisor heard the same name from the remote watches and the heartbeats.
    seen = eventually(
        lambda: _watched(supervisor_audit, sso_user.username, ("services",)), timeout=30
    )
    strangers = [r for r in seen if r.user_agent != USER_AGENT]
    assert not strangers, "\n".join(_said(strangers))
    print(f"supervisor: {len(seen)} requests of {sso_user.username}, all as {USER_AGENT!r}")
    # And the sign-in endpoint, which is not an API server, from the requests it answered.
    sign_ins = [r for r in signin.requests() if r.user == sso_user.name]
    assert sign_ins, "no sign-in of the SSO user"
    assert {r.user_agent for r in sign_ins} == {USER_AGENT}, sign_ins
