"""Every condition that is not well tells a person what to do next, the same way each time."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_services import advice, kubeconfig, policy, signin, status
from shared_services.status import ClusterReport

# Every reason an import's Ready condition can give that needs a person (the waiting ones,
# Connecting and Resolving, need none).
IMPORT_REASONS = [
    "RemoteClusterNotFound",
    "InvalidRemoteCluster",
    "RemoteUnavailable",
    "NamespaceDenied",
    "RemoteNamespaceDenied",
    "RemoteServiceNotFound",
    "NotLoadBalancer",
    "NoIngress",
    "IngressInvalid",
    "HostnameUnresolved",
    "NoAddresses",
    "NoPorts",
    "Conflict",
    policy.ADDRESS_NOT_ALLOWED,
    policy.SOURCE_NOT_ALLOWED,
    "NamespaceNotAllowed",
    "InvalidSpec",
    "TooManyAddresses",
    "TooManyPorts",
    "WriteRejected",
    "LastKnownAddresses",
]
CLUSTER_REASONS = [
    "SecretNotFound",
    "SecretKeyMissing",
    kubeconfig.INVALID,
    kubeconfig.INSECURE,
    "InvalidSpec",
    "Unauthorized",
    "Forbidden",
    "TLSUntrusted",
    "Unreachable",
    "InvalidResponse",
    "InternalError",
    policy.SERVER_NOT_ALLOWED,
    *signin.REASONS,
]


@pytest.mark.parametrize("reason", IMPORT_REASONS)
def test_an_import_that_is_not_well_says_what_to_do(reason: str) -> None:
    new = status.import_status(
        {},
        generation=1,
        shown=None,
        ready=("False", reason, "what is wrong"),
        source=("False", reason, "what is wrong"),
        addresses=[],
        ports=[],
    )
    ready, source = new["conditions"]
    assert ready["message"] == f"what is wrong. {advice.IMPORT_STEPS[reason]}"
    # The source's own condition describes; the step is said once, on Ready.
    assert source["message"] == "what is wrong"


@pytest.mark.parametrize("reason", ["Synced", "Connecting", "Resolving"])
def test_a_well_or_waiting_import_says_only_what_is(reason: str) -> None:
    assert advice.advised("Service db points at 192.0.2.1", reason, advice.IMPORT_STEPS) == (
        "Service db points at 192.0.2.1"
    )


@pytest.mark.parametrize("reason", CLUSTER_REASONS)
def test_a_remote_cluster_that_is_not_connected_says_what_to_do(reason: str) -> None:
    new = status.cluster_status({}, ClusterReport(False, reason, "what is wrong"), generation=1)
    assert new["conditions"][0]["message"] == f"what is wrong. {advice.CLUSTER_STEPS[reason]}"


def test_a_connected_cluster_says_only_that_it_is() -> None:
    new = status.cluster_status({}, ClusterReport(True, "Connected", "v1.37.2"), generation=1)
    assert new["conditions"][0]["message"] == "v1.37.2"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("RemoteCluster 'x' does not exist.", "RemoteCluster 'x' does not exist. Step."),
        ("RemoteCluster 'x' does not exist", "RemoteCluster 'x' does not exist. Step."),
        ("", "Step."),
    ],
)
def test_the_step_follows_the_message_as_a_sentence(message: str, expected: str) -> None:
    assert advice.advised(message, "R", {"R": "Step."}) == expected


def test_the_same_state_gives_the_same_message() -> None:
    """A message that changed from one sync to the next would be a status write each time."""
    first = advice.advised("m", "Conflict", advice.IMPORT_STEPS)
    assert advice.advised("m", "Conflict", advice.IMPORT_STEPS) == first


def test_the_readme_names_every_reason_that_has_a_step() -> None:
    """The README's Status section is where a person looks a reason up: none is missing."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    status = readme[readme.index("### Status") : readme.index("## Running it")]
    missing = [
        reason
        for reason in (*advice.IMPORT_STEPS, *advice.CLUSTER_STEPS)
        if f"`{reason}`" not in status
    ]
    assert not missing, f"reasons the README's Status section does not name: {missing}"
