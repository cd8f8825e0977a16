"""Every reason of a condition the operator writes, and what a person should do next.

``kubectl describe`` shows each condition's message. The message says what is wrong (which
RemoteCluster, which address, which rule); the step added here says what to change, and
where, so that someone who has never read this project's documentation can act on it. The
steps depend on the reason alone, so a message stays the same from one sync to the next
and adding the step costs no status write.

The reasons are one enumeration, :class:`Reason`, each with its steps beside it: a reason
cannot be written without deciding what a person does about it (or that there is nothing
to do but wait), and the README's Status section is checked against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final, NamedTuple


class Steps(NamedTuple):
    """The next step for a reason on each kind of object; None where there is none to take.

    None also where the reason is not written on that kind, or means all is well, or only
    waits for a first answer (Connecting, Resolving): there is nothing to do but wait.
    """

    imports: str | None = None
    clusters: str | None = None
    catalogs: str | None = None


class Reason(StrEnum):
    """The reason of a condition the operator writes, and its next steps.

    The conditions are an import's Ready and SourceResolved, a RemoteCluster's Connected and
    a catalog's Ready. Each member equals its text, which is what is written.
    """

    steps: Steps

    def __new__(cls, value: str, steps: Steps) -> Reason:  # noqa: D102 (enum machinery)
        member = str.__new__(cls, value)
        member._value_ = value
        member.steps = steps
        return member

    REMOTE_CLUSTER_NOT_FOUND = (
        "RemoteClusterNotFound",
        Steps(
            imports=(
                "Create that RemoteCluster or correct spec.source.remoteService.cluster; `kubectl "
                "get remoteclusters` lists those that exist."
            ),
            catalogs=(
                "Create that RemoteCluster or correct spec.cluster; `kubectl get remoteclusters` "
                "lists those that exist."
            ),
        ),
    )
    INVALID_REMOTE_CLUSTER = (
        "InvalidRemoteCluster",
        Steps(
            imports=(
                "Fix the RemoteCluster: `kubectl describe remotecluster` shows what its spec is "
                "missing."
            ),
            catalogs=(
                "Fix the RemoteCluster: `kubectl describe remotecluster` shows what its spec is "
                "missing."
            ),
        ),
    )
    REMOTE_UNAVAILABLE = (
        "RemoteUnavailable",
        Steps(
            imports=(
                "`kubectl get remoteclusters` shows why the central cluster cannot be read "
                "(credentials, TLS or network); the import keeps its addresses meanwhile."
            ),
            catalogs=(
                "`kubectl get remoteclusters` shows why the central cluster cannot be read; the "
                "catalog's imports stay as they are meanwhile."
            ),
        ),
    )
    NAMESPACE_DENIED = (
        "NamespaceDenied",
        Steps(
            imports=(
                "Ask the RemoteCluster's owner to add this namespace to its "
                "spec.allowedNamespaces, or use a RemoteCluster that allows it."
            ),
            catalogs=(
                "Ask the RemoteCluster's owner to add this namespace to its "
                "spec.allowedNamespaces, or use a RemoteCluster that allows it."
            ),
        ),
    )
    REMOTE_NAMESPACE_DENIED = (
        "RemoteNamespaceDenied",
        Steps(
            imports=(
                "Ask the RemoteCluster's owner to add that remote namespace to its "
                "spec.allowedRemoteNamespaces."
            ),
            catalogs=(
                "Ask the RemoteCluster's owner to add that remote namespace to its "
                "spec.allowedRemoteNamespaces."
            ),
        ),
    )
    REMOTE_SERVICE_NOT_FOUND = (
        "RemoteServiceNotFound",
        Steps(
            imports=(
                "Check spec.source.remoteService.namespace and name against the Services of the "
                "central cluster."
            )
        ),
    )
    TOO_MANY_REMOTE_NAMESPACES = (
        "TooManyRemoteNamespaces",
        Steps(
            imports=(
                "Import from a remote namespace that other imports of this RemoteCluster read "
                "already, or ask the platform team to raise the limit (env MAX_REMOTE_NAMESPACES, "
                "flag --max-remote-namespaces); the import is served once a namespace is freed."
            ),
            catalogs=(
                "Import from a remote namespace that other imports of this RemoteCluster read "
                "already, or ask the platform team to raise the limit (env MAX_REMOTE_NAMESPACES, "
                "flag --max-remote-namespaces); the import is served once a namespace is freed."
            ),
        ),
    )
    NOT_LOAD_BALANCER = (
        "NotLoadBalancer",
        Steps(
            imports=(
                "Import a Service of type LoadBalancer, or give its addresses in "
                "spec.source.addresses."
            )
        ),
    )
    NO_INGRESS = (
        "NoIngress",
        Steps(
            imports=(
                "Wait for the central cluster's load balancer to give the Service an address; "
                "until then its EXTERNAL-IP is <pending>."
            )
        ),
    )
    INGRESS_INVALID = (
        "IngressInvalid",
        Steps(
            imports=(
                "The central Service's status.loadBalancer.ingress holds no usable address: ask "
                "its owner to look at the load balancer."
            )
        ),
    )
    HOSTNAME_UNRESOLVED = (
        "HostnameUnresolved",
        Steps(
            imports=(
                "Check that the name resolves from the operator's Pod, or correct "
                "spec.source.hostname; it is tried again with backoff."
            )
        ),
    )
    NO_ADDRESSES = "NoAddresses", Steps(imports="Give the source at least one address.")
    NO_PORTS = (
        "NoPorts",
        Steps(imports="List the ports in spec.ports, or give the source Service ports."),
    )
    CONFLICT = (
        "Conflict",
        Steps(
            imports=(
                "An object of that name that this import does not own is in the way: delete or "
                "rename it, or set spec.serviceName to another name."
            ),
            catalogs=(
                "Delete or rename what holds the name, or give the Service another local name with "
                "spec.names or spec.namePrefix; the catalog never takes over what it did not make."
            ),
        ),
    )
    ADDRESS_NOT_ALLOWED = (
        "AddressNotAllowed",
        Steps(
            imports=(
                "The operator's address policy refuses it: point the source elsewhere, or ask the "
                "platform team to allow the range (the chart's addressPolicy)."
            )
        ),
    )
    SOURCE_NOT_ALLOWED = (
        "SourceNotAllowed",
        Steps(
            imports=(
                "Use spec.source.remoteService, or ask the platform team to list this namespace in "
                "the chart's addressPolicy.staticSourceNamespaces."
            )
        ),
    )
    NAMESPACE_NOT_ALLOWED = (
        "NamespaceNotAllowed",
        Steps(
            imports=(
                "Create the import in the namespace of the application that uses it, or ask the "
                "platform team to allow it (the chart's imports.allowSystemNamespaces, env "
                "ALLOW_SYSTEM_NAMESPACES)."
            )
        ),
    )
    INVALID_SPEC = (
        "InvalidSpec",
        Steps(
            imports="Correct the field named and apply the import again.",
            clusters="Correct the field named and apply the RemoteCluster again.",
            catalogs="Correct the field named and apply the catalog again.",
        ),
    )
    TOO_MANY_ADDRESSES = (
        "TooManyAddresses",
        Steps(imports="Point the import at a source with fewer addresses."),
    )
    TOO_MANY_PORTS = (
        "TooManyPorts",
        Steps(imports="List fewer ports in spec.ports, or import a Service with fewer ports."),
    )
    WRITE_REJECTED = (
        "WriteRejected",
        Steps(
            imports=(
                "Look at what refused it in this namespace: a ResourceQuota, a LimitRange, or an "
                "admission policy or webhook."
            )
        ),
    )
    LAST_KNOWN_ADDRESSES = (
        "LastKnownAddresses",
        Steps(
            imports=(
                "The SourceResolved condition says why the source cannot be read; a move of the "
                "shared service's address is not followed until it can."
            )
        ),
    )
    SECRET_NOT_FOUND = (
        "SecretNotFound",
        Steps(
            clusters=(
                "Create the Secret named in spec.kubeconfigSecretRef in the operator's namespace "
                "(`make supervisor-kubeconfig` prints one)."
            )
        ),
    )
    SECRET_KEY_MISSING = (
        "SecretKeyMissing",
        Steps(clusters="Put the kubeconfig under the key that spec.kubeconfigSecretRef.key names."),
    )
    KUBECONFIG_INVALID = (
        "KubeconfigInvalid",
        Steps(clusters="Fix the kubeconfig in the Secret at the place named."),
    )
    INSECURE_KUBECONFIG = (
        "InsecureKubeconfig",
        Steps(
            clusters=(
                "Remove the field named from the kubeconfig: use a token or a client certificate, "
                "with the server's CA, and no exec, auth-provider, proxy or file paths."
            )
        ),
    )
    UNAUTHORIZED = (
        "Unauthorized",
        Steps(clusters="Give the Secret a token or certificate that the central cluster accepts."),
    )
    FORBIDDEN = (
        "Forbidden",
        Steps(
            clusters=(
                "Grant the central cluster's identity list and watch on Services in the allowed "
                "remote namespaces (deploy/supervisor/ has a Role for it)."
            )
        ),
    )
    TLS_UNTRUSTED = (
        "TLSUntrusted",
        Steps(
            clusters=(
                "Put the CA that signed the central API server's certificate in the kubeconfig's "
                "certificate-authority-data."
            )
        ),
    )
    UNREACHABLE = (
        "Unreachable",
        Steps(
            clusters=(
                "Check the kubeconfig's server address and that the operator's Pod can reach it; "
                "it is tried again with backoff."
            )
        ),
    )
    INVALID_RESPONSE = (
        "InvalidResponse",
        Steps(
            clusters=(
                "Something other than a Kubernetes API server answered at the kubeconfig's server "
                "address (a proxy, a load balancer or a sign-in page): point it at the API server; "
                "it is tried again with backoff."
            )
        ),
    )
    INTERNAL_ERROR = (
        "InternalError",
        Steps(
            clusters=(
                "The operator's log says what failed; it is tried again with backoff, and a "
                "restart of the operator's Pod starts afresh."
            )
        ),
    )
    SERVER_NOT_ALLOWED = (
        "ServerNotAllowed",
        Steps(
            clusters=(
                "Point the kubeconfig's server at the central cluster's API server, or ask the "
                "platform team to list its range in the chart's addressPolicy.remoteServerCIDRs."
            )
        ),
    )
    SIGN_IN_REJECTED = (
        "SignInRejected",
        Steps(
            clusters=(
                "The password is not sent again until the Secret changes, so that vCenter does not "
                "lock the user out: fix the user in vCenter SSO or the Secret, then update the "
                "Secret."
            )
        ),
    )
    SIGN_IN_CREDENTIALS_INVALID = (
        "SignInCredentialsInvalid",
        Steps(
            clusters=(
                "`kubectl create secret generic NAME --type=kubernetes.io/basic-auth "
                "--from-literal=username=USER --from-literal=password=...` in the operator's "
                "namespace makes one."
            )
        ),
    )
    SIGN_IN_UNREACHABLE = (
        "SignInUnreachable",
        Steps(
            clusters=(
                "Check that the operator's Pod can reach the Supervisor's address on port 443 (the "
                "sign-in endpoint); imports keep their addresses meanwhile."
            )
        ),
    )
    SIGN_IN_FAILED = (
        "SignInFailed",
        Steps(
            clusters=(
                "Check spec.vsphereSignIn.url, if set, and that the address answers as a "
                "Supervisor does at /wcp/login; imports keep their addresses meanwhile."
            )
        ),
    )
    PENDING = (
        "Pending",
        Steps(
            catalogs=(
                "`kubectl get ssi -l sharedservices.io/catalog=NAME` in this namespace shows why "
                "each import is not ready yet."
            )
        ),
    )
    SYNCED = "Synced", Steps()
    CONNECTING = "Connecting", Steps()
    RESOLVING = "Resolving", Steps()
    RESOLVED = "Resolved", Steps()
    NOT_EXPORTED = (
        "NotExported",
        Steps(
            imports=(
                "Ask the central Service's owners to export it (label it sharedservices.io/export: "
                '"true"), or import one they exported; `kubectl get sscat` in a namespace with a '
                "catalog shows what is exported."
            ),
            catalogs=(
                "Ask the central Service's owners to export it (label it sharedservices.io/export: "
                '"true"), or import one they exported; `kubectl get sscat` in a namespace with a '
                "catalog shows what is exported."
            ),
        ),
    )
    CONNECTED = "Connected", Steps()


# The steps by reason, for each kind of object, as the status builders look them up.
IMPORT_STEPS: Final[Mapping[str, str]] = {
    r.value: r.steps.imports for r in Reason if r.steps.imports is not None
}
CLUSTER_STEPS: Final[Mapping[str, str]] = {
    r.value: r.steps.clusters for r in Reason if r.steps.clusters is not None
}
CATALOG_STEPS: Final[Mapping[str, str]] = {
    r.value: r.steps.catalogs for r in Reason if r.steps.catalogs is not None
}


def advised(message: str, reason: str, steps: Mapping[str, str]) -> str:
    """``message`` with the next step for ``reason`` added, if there is one."""
    step = steps.get(reason)
    if step is None:
        return message
    said = message.rstrip().rstrip(".")
    return f"{said}. {step}" if said else step
