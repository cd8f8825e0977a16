"""The kubeconfig CLI's pure parts: it reads a filled-in ServiceAccount token Secret and
nothing else, and what it makes is a self-contained kubeconfig that the operator accepts.
"""

from __future__ import annotations

import base64

import pytest
import yaml

from shared_services import kubeconfig_cli as cli

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _token_secret(**overrides: object) -> dict[str, object]:
    secret: dict[str, object] = {
        "metadata": {
            "name": "workload-clusters-token",
            "namespace": "shared-services-access",
            "annotations": {"kubernetes.io/service-account.name": "workload-clusters"},
        },
        "type": "kubernetes.io/service-account-token",
        "data": {
            "token": base64.b64encode(b"header.payload.signature").decode(),
            "ca.crt": base64.b64encode(CA).decode(),
        },
    }
    secret.update(overrides)
    return secret


def test_identity_from_a_filled_in_token_secret() -> None:
    identity = cli.identity_from_secret(_token_secret())
    assert identity == cli.Identity(
        service_account="workload-clusters",
        namespace="shared-services-access",
        token="header.payload.signature",
        ca_pem=CA,
    )


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"type": "Opaque"}, "not kubernetes.io/service-account-token"),
        ({"data": {}}, "has no token yet"),
    ],
)
def test_other_secrets_are_refused(overrides: dict[str, object], complaint: str) -> None:
    with pytest.raises(cli.IdentityError, match=complaint):
        cli.identity_from_secret(_token_secret(**overrides))


def test_the_kubeconfig_is_self_contained_and_accepted() -> None:
    config = cli.build_kubeconfig(
        server="https://supervisor.example.internal:6443",
        ca_pem=CA,
        token="t0ken",
        cluster_name="supervisor",
        user_name="shared-services-access:workload-clusters",
    )
    text = yaml.safe_dump(config)
    cli.check_kubeconfig(text)
    cluster = config["clusters"][0]["cluster"]
    assert base64.b64decode(cluster["certificate-authority-data"]) == CA
    assert config["users"][0]["user"] == {"token": "t0ken"}
    assert config["current-context"] == "supervisor"

    insecure = dict(
        config,
        clusters=[{"name": "supervisor", "cluster": {**cluster, "insecure-skip-tls-verify": True}}],
    )
    with pytest.raises(cli.IdentityError, match="refuse"):
        cli.check_kubeconfig(yaml.safe_dump(insecure))


def test_the_secret_holds_the_kubeconfig_under_its_key() -> None:
    secret = cli.kubeconfig_secret(kubeconfig_text="apiVersion: v1\n", name="sup", namespace="ops")
    assert secret["metadata"]["name"] == "sup"
    assert secret["metadata"]["namespace"] == "ops"
    assert base64.b64decode(secret["data"]["kubeconfig"]) == b"apiVersion: v1\n"
