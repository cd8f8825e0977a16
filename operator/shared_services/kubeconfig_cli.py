"""``python -m shared_services.kubeconfig_cli``: a read-only identity as a kubeconfig.

The identity lives on the central cluster; the kubeconfig is for the operator on a workload
cluster. Handing every workload cluster an administrator's kubeconfig of the central cluster
would let each of them do anything there, and a vSphere SSO token expires after hours anyway.
Instead, ``deploy/supervisor/`` creates a ServiceAccount that may only list and watch Services
in the shared namespaces, and a long-lived token for it. This command, run once by someone who
may read that token, turns it into what the operator needs: a self-contained kubeconfig
(server, CA and token inline, no file paths), printed as is or wrapped in the Secret that a
RemoteCluster names. The result is checked with the same rules the operator applies to it.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from shared_services import kubeconfig
from shared_services.kube import Kube, KubeError
from shared_services.settings import DEFAULT_NAMESPACE

DEFAULT_ACCESS_NAMESPACE = "shared-services-access"
# Names of Secrets, not secrets.
DEFAULT_TOKEN_SECRET = "workload-clusters-token"  # noqa: S105
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"  # noqa: S105


class IdentityError(Exception):
    """The token Secret cannot be turned into a kubeconfig; the message says why."""


@dataclass(frozen=True)
class Identity:
    """What a token Secret holds once the token controller has filled it in."""

    service_account: str
    namespace: str
    token: str
    ca_pem: bytes


def identity_from_secret(secret: Mapping[str, Any]) -> Identity:
    """Read the token, CA and owner from a ``kubernetes.io/service-account-token`` Secret.

    Raises :class:`IdentityError` when the Secret is of another type or not filled in yet
    (the token controller writes the token moments after the Secret is created).
    """
    metadata = secret.get("metadata") or {}
    name = f"{metadata.get('namespace')}/{metadata.get('name')}"
    if secret.get("type") != TOKEN_SECRET_TYPE:
        msg = f"Secret {name} is of type {secret.get('type')!r}, not {TOKEN_SECRET_TYPE}"
        raise IdentityError(msg)
    account = (metadata.get("annotations") or {}).get("kubernetes.io/service-account.name")
    data = secret.get("data") or {}
    if not account or not data.get("token") or not data.get("ca.crt"):
        msg = f"Secret {name} has no token yet; is the ServiceAccount {account!r} there?"
        raise IdentityError(msg)
    return Identity(
        service_account=str(account),
        namespace=str(metadata.get("namespace")),
        token=base64.b64decode(data["token"]).decode(),
        ca_pem=base64.b64decode(data["ca.crt"]),
    )


def build_kubeconfig(
    *, server: str, ca_pem: bytes, token: str, cluster_name: str, user_name: str
) -> dict[str, Any]:
    """A kubeconfig with everything inline, as the operator accepts it from a Secret."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user_name, "user": {"token": token}}],
        "contexts": [
            {"name": cluster_name, "context": {"cluster": cluster_name, "user": user_name}}
        ],
        "current-context": cluster_name,
    }


def kubeconfig_secret(
    *, kubeconfig_text: str, name: str, namespace: str, key: str = "kubeconfig"
) -> dict[str, Any]:
    """The Secret, in the operator's namespace, that a RemoteCluster's kubeconfigSecretRef names."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "shared-services-operator"},
        },
        "type": "Opaque",
        "data": {key: base64.b64encode(kubeconfig_text.encode()).decode()},
    }


def check_kubeconfig(kubeconfig_text: str) -> None:
    """Apply the operator's own rules (inline CA and token, TLS verified) to the result."""
    try:
        kubeconfig.parse(kubeconfig_text)
    except kubeconfig.CredentialsError as error:
        raise IdentityError(f"the operator would refuse this kubeconfig: {error}") from error


def read_identity(kube: Kube, *, namespace: str, secret: str, timeout: float) -> Identity:
    """Read the token Secret, waiting up to ``timeout`` seconds for it to be filled in."""
    deadline = time.monotonic() + timeout
    path = f"/api/v1/namespaces/{namespace}/secrets/{secret}"
    while True:
        found = kube.get(path)
        try:
            return identity_from_secret(found or {})
        except IdentityError as error:
            if time.monotonic() > deadline:
                if found is None:
                    msg = f"Secret {namespace}/{secret} not found; apply deploy/supervisor/ first"
                    raise IdentityError(msg) from error
                raise
        time.sleep(0.5)


def _central_client(kubeconfig: str | None, context: str | None) -> tuple[Kube, str, bytes]:
    """A client of the central cluster as the person running this, with its URL and CA."""
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(
        config_file=kubeconfig, context=context, client_configuration=configuration
    )
    ca_pem = b""
    if configuration.ssl_ca_cert:
        # The client has already turned certificate-authority-data into a file of its own.
        ca_pem = Path(configuration.ssl_ca_cert).read_bytes()
    return Kube(k8s.ApiClient(configuration)), str(configuration.host), ca_pem


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shared_services.kubeconfig_cli",
        description="Print the kubeconfig (or its Secret) of the central cluster's read-only "
        "identity from deploy/supervisor/, for a workload cluster's operator.",
    )
    parser.add_argument(
        "--kubeconfig",
        help="a kubeconfig of the central cluster that may read the token Secret "
        "(default: $KUBECONFIG, else ~/.kube/config)",
    )
    parser.add_argument("--context", help="its context to use (default: the current one)")
    parser.add_argument(
        "--namespace",
        default=DEFAULT_ACCESS_NAMESPACE,
        help=f"namespace of the ServiceAccount and its token (default {DEFAULT_ACCESS_NAMESPACE})",
    )
    parser.add_argument(
        "--token-secret",
        default=DEFAULT_TOKEN_SECRET,
        help=f"the token Secret (default {DEFAULT_TOKEN_SECRET})",
    )
    parser.add_argument(
        "--server",
        help="the API server URL as workload clusters reach it (default: the one in --kubeconfig)",
    )
    parser.add_argument(
        "--ca-from",
        choices=["kubeconfig", "secret"],
        default="kubeconfig",
        help="trust the CA of --kubeconfig (default), or the cluster CA in the token Secret "
        "when the server's certificate is signed by it",
    )
    parser.add_argument(
        "--cluster-name", default="supervisor", help="name of the cluster in the kubeconfig"
    )
    parser.add_argument(
        "--format",
        choices=["secret", "kubeconfig"],
        default="secret",
        help="print a Secret manifest (default) or the bare kubeconfig, e.g. for "
        "helm --set-file remoteClusters[0].kubeconfig=...",
    )
    parser.add_argument(
        "--secret-name", default="supervisor-kubeconfig", help="name of the printed Secret"
    )
    parser.add_argument(
        "--secret-namespace",
        default=DEFAULT_NAMESPACE,
        help=f"the operator's namespace, where the Secret goes (default {DEFAULT_NAMESPACE})",
    )
    parser.add_argument(
        "--wait", type=float, default=30.0, help="seconds to wait for the token (default 30)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Read the identity, check the kubeconfig it makes, and print it."""
    args = _parser().parse_args(argv)
    try:
        kube, host, kubeconfig_ca = _central_client(args.kubeconfig, args.context)
        try:
            identity = read_identity(
                kube, namespace=args.namespace, secret=args.token_secret, timeout=args.wait
            )
        finally:
            kube.api_client.close()
        ca_pem = identity.ca_pem if args.ca_from == "secret" or not kubeconfig_ca else kubeconfig_ca
        kubeconfig = build_kubeconfig(
            server=args.server or host,
            ca_pem=ca_pem,
            token=identity.token,
            cluster_name=args.cluster_name,
            user_name=f"{identity.namespace}:{identity.service_account}",
        )
        text = yaml.safe_dump(kubeconfig, sort_keys=False)
        check_kubeconfig(text)
    except (IdentityError, KubeError, k8s_config.ConfigException) as error:
        print(f"kubeconfig_cli: {error}", file=sys.stderr)
        return 1
    if args.format == "kubeconfig":
        sys.stdout.write(text)
    else:
        secret = kubeconfig_secret(
            kubeconfig_text=text, name=args.secret_name, namespace=args.secret_namespace
        )
        sys.stdout.write(yaml.safe_dump(secret, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
