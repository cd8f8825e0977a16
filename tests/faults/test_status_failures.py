"""Status writes that fail are retried, and what is serving survives a status that lagged.

- A RemoteCluster whose status writes are refused (a ValidatingAdmissionPolicy stands in
  for a webhook that is down, or a quota of requests): each failure is logged, and once
  the refusal ends the status is written, without anything else changing.
- An import whose status was never written (refused the same way) while its EndpointSlice
  was: the operator restarts while the supervisor is frozen, so the remote Service cannot
  be known. The slice that is serving counts as the last known state: it is never emptied,
  and the import says ``LastKnownAddresses`` with those addresses.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from faults.toolkit import FaultEnv, Sampler, load_balancer, remote_condition, wait_for
from kit import GROUP, VERSION, Kit
from suite import Row
from support import eventually


class StatusRefusal:
    """A ValidatingAdmissionPolicy that refuses status writes of the objects it matches."""

    def __init__(self, api: k8s.ApiClient, *, name: str, resource: str, match: str) -> None:
        self.api = k8s.AdmissionregistrationV1Api(api)
        self.name = name
        self.resource = resource
        self.match = match

    def start(self) -> None:
        """Create the policy and its binding."""
        self.api.create_validating_admission_policy(
            {
                "metadata": {"name": self.name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "resourceRules": [
                            {
                                "apiGroups": [GROUP],
                                "apiVersions": ["*"],
                                "operations": ["UPDATE"],
                                "resources": [f"{self.resource}/status"],
                            }
                        ]
                    },
                    "matchConditions": [{"name": "this-test", "expression": self.match}],
                    "validations": [
                        {"expression": "false", "message": "status writes refused by the test"}
                    ],
                },
            }
        )
        self.bind()

    def bind(self) -> None:
        """Start refusing."""
        self.api.create_validating_admission_policy_binding(
            {
                "metadata": {"name": self.name},
                "spec": {"policyName": self.name, "validationActions": ["Deny"]},
            }
        )

    def unbind(self) -> None:
        """Stop refusing."""
        self.api.delete_validating_admission_policy_binding(self.name)

    def stop(self) -> None:
        """Remove the policy (and its binding, if still there)."""
        for delete in (
            self.api.delete_validating_admission_policy_binding,
            self.api.delete_validating_admission_policy,
        ):
            try:
                delete(self.name)
            except k8s.ApiException as error:
                if error.status != 404:
                    raise


def _refused(
    custom: k8s.CustomObjectsApi, *, plural: str, name: str, namespace: str | None
) -> bool:
    """Whether a (dry-run) status write of the object is refused right now."""
    body = {"status": {}}
    try:
        if namespace is None:
            custom.patch_cluster_custom_object_status(
                GROUP, VERSION, plural, name, body, dry_run="All"
            )
        else:
            custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, body, dry_run="All"
            )
    except k8s.ApiException as error:
        if "status writes refused by the test" in str(error.body):
            return True
        raise
    return False


@pytest.fixture
def refusals(fault_env: FaultEnv) -> Iterator[list[StatusRefusal]]:
    """Policies a test creates; all removed at the end."""
    made: list[StatusRefusal] = []
    yield made
    for refusal in made:
        refusal.stop()


def test_refused_remote_cluster_status_is_retried(
    kit: Kit, row: Row, fault_env: FaultEnv, refusals: list[StatusRefusal]
) -> None:
    row.injected = (
        "a RemoteCluster's status writes refused by an admission policy, then allowed again"
    )
    name = f"{kit.cluster_name}-refused"
    refusal = StatusRefusal(
        fault_env.workload_api,
        name=f"refuse-{kit.namespace}",
        resource="remoteclusters",
        match=f"object.metadata.name.startsWith('{name}')",
    )
    refusals.append(refusal)
    refusal.start()
    # The policy takes effect a moment after it is made: wait on an object of its own.
    kit.remote_cluster(name=f"{name}-probe")
    eventually(
        lambda: _refused(kit.custom, plural="remoteclusters", name=f"{name}-probe", namespace=None),
        timeout=30,
    )
    kit.custom.delete_cluster_custom_object(GROUP, VERSION, "remoteclusters", f"{name}-probe")
    log_start = kit.operator.log_path.stat().st_size
    kit.remote_cluster(name=name)

    def logged() -> bool:
        with kit.operator.log_path.open(errors="replace") as log:
            log.seek(log_start)
            return f"status of RemoteCluster {name} not written" in log.read()

    wait_for(logged, timeout=30, what="the refused status write to be logged")
    assert remote_condition(kit, name) == {}, "a status was written despite the refusal"
    refusal.unbind()
    unbound = time.monotonic()
    took = wait_for(
        lambda: remote_condition(kit, name).get("status") == "True",
        timeout=60,
        what="the status to be written once allowed",
        log=kit.operator.log_tail(),
    )
    row.figure("status written after the refusal ended", took, "s")
    row.happened = (
        "each refusal logged; Connected=True written "
        f"{time.monotonic() - unbound:.1f} s after the policy's binding was removed"
    )


def _empty(state: dict[str, Any]) -> bool:
    return not state.get("IPv4")


def test_serving_slice_is_last_known_when_status_lagged(
    kit: Kit, row: Row, fault_env: FaultEnv, refusals: list[StatusRefusal]
) -> None:
    row.injected = (
        "an import's status writes refused while its slice was written; operator restarted "
        "with the supervisor frozen and the refusal lifted"
    )
    refusal = StatusRefusal(
        fault_env.workload_api,
        name=f"refuse-{kit.namespace}",
        resource="sharedserviceimports",
        match=f"object.metadata.namespace == '{kit.namespace}'",
    )
    refusals.append(refusal)
    refusal.start()
    kit.create_import("probe", {"source": {"addresses": ["203.0.113.70"]}, "ports": [{"port": 80}]})
    eventually(
        lambda: _refused(
            kit.custom, plural="sharedserviceimports", name="probe", namespace=kit.namespace
        ),
        timeout=30,
    )
    kit.delete_import("probe")
    kit.remote_cluster()
    load_balancer(kit, "db", ["192.0.2.70"])
    kit.import_remote("db", "db", ports=[{"name": "tcp", "port": 5432}])
    kit.wait_addresses("db", {"IPv4": ["192.0.2.70"]})
    assert not kit.get_import("db").get("status"), "the refused status was written"
    supervisor = fault_env.supervisor
    kit.operator.stop()
    supervisor.signal_apiserver(signal.SIGSTOP)
    try:
        refusal.unbind()
        eventually(
            lambda: (
                not _refused(
                    kit.custom, plural="sharedserviceimports", name="db", namespace=kit.namespace
                )
            ),
            timeout=30,
        )
        with Sampler(lambda: kit.slice_addresses("db"), interval=0.1) as sampler:
            kit.operator.start()
            ready = kit.wait_condition("db", "Ready", "True", "LastKnownAddresses", timeout=30)
            time.sleep(2.0)  # and it stays so
        status = kit.get_import("db")["status"]
    finally:
        supervisor.signal_apiserver(signal.SIGCONT)
    empty = sum(1 for _, state in sampler.samples if _empty(state))
    row.figure("samples with no endpoints", f"{empty}/{len(sampler.samples)}")
    assert sampler.samples, "nothing was sampled"
    assert empty == 0, f"{empty} of {len(sampler.samples)} samples had no endpoints"
    assert status["addresses"] == ["192.0.2.70"]
    assert "192.0.2.70" in kit.slice_addresses("db")["IPv4"]
    assert "last known" in ready["message"]
    kit.wait_condition("db", "Ready", "True", "Synced", timeout=60)
    row.happened = "the serving slice was kept and reported as the last known addresses"
