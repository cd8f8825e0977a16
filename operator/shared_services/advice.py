"""What a person should do next, by the reason of a condition that is not well.

``kubectl describe`` shows each condition's message. The message says what is wrong (which
RemoteCluster, which address, which rule); the step added here says what to change, and
where, so that someone who has never read this project's documentation can act on it. The
steps depend on the reason alone, so a message stays the same from one sync to the next
and adding the step costs no status write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# An import's Ready condition. Reasons that only wait for a first answer (Connecting,
# Resolving) have no step: there is nothing to do but wait a moment.
IMPORT_STEPS: Final[Mapping[str, str]] = {
    "RemoteClusterNotFound": (
        "Create that RemoteCluster or correct spec.source.remoteService.cluster; "
        "`kubectl get remoteclusters` lists those that exist."
    ),
    "InvalidRemoteCluster": (
        "Fix the RemoteCluster: `kubectl describe remotecluster` shows what its spec is missing."
    ),
    "RemoteUnavailable": (
        "`kubectl get remoteclusters` shows why the central cluster cannot be read "
        "(credentials, TLS or network); the import keeps its addresses meanwhile."
    ),
    "NamespaceDenied": (
        "Ask the RemoteCluster's owner to add this namespace to its spec.allowedNamespaces, "
        "or use a RemoteCluster that allows it."
    ),
    "RemoteNamespaceDenied": (
        "Ask the RemoteCluster's owner to add that remote namespace to its "
        "spec.allowedRemoteNamespaces."
    ),
    "RemoteServiceNotFound": (
        "Check spec.source.remoteService.namespace and name against the Services of the "
        "central cluster."
    ),
    "TooManyRemoteNamespaces": (
        "Import from a remote namespace that other imports of this RemoteCluster read already, "
        "or ask the platform team to raise the limit (env MAX_REMOTE_NAMESPACES, flag "
        "--max-remote-namespaces); the import is served once a namespace is freed."
    ),
    "NotLoadBalancer": (
        "Import a Service of type LoadBalancer, or give its addresses in spec.source.addresses."
    ),
    "NoIngress": (
        "Wait for the central cluster's load balancer to give the Service an address; until "
        "then its EXTERNAL-IP is <pending>."
    ),
    "IngressInvalid": (
        "The central Service's status.loadBalancer.ingress holds no usable address: ask its "
        "owner to look at the load balancer."
    ),
    "HostnameUnresolved": (
        "Check that the name resolves from the operator's Pod, or correct "
        "spec.source.hostname; it is tried again with backoff."
    ),
    "NoAddresses": "Give the source at least one address.",
    "NoPorts": "List the ports in spec.ports, or give the source Service ports.",
    "Conflict": (
        "An object of that name that this import does not own is in the way: delete or "
        "rename it, or set spec.serviceName to another name."
    ),
    "AddressNotAllowed": (
        "The operator's address policy refuses it: point the source elsewhere, or ask the "
        "platform team to allow the range (the chart's addressPolicy)."
    ),
    "SourceNotAllowed": (
        "Use spec.source.remoteService, or ask the platform team to list this namespace in "
        "the chart's addressPolicy.staticSourceNamespaces."
    ),
    "NamespaceNotAllowed": (
        "Create the import in the namespace of the application that uses it, or ask the "
        "platform team to allow it (the chart's imports.allowSystemNamespaces, env "
        "ALLOW_SYSTEM_NAMESPACES)."
    ),
    "InvalidSpec": "Correct the field named and apply the import again.",
    "TooManyAddresses": "Point the import at a source with fewer addresses.",
    "TooManyPorts": "List fewer ports in spec.ports, or import a Service with fewer ports.",
    "WriteRejected": (
        "Look at what refused it in this namespace: a ResourceQuota, a LimitRange, or an "
        "admission policy or webhook."
    ),
    "LastKnownAddresses": (
        "The SourceResolved condition says why the source cannot be read; a move of the "
        "shared service's address is not followed until it can."
    ),
}

# A RemoteCluster's Connected condition.
CLUSTER_STEPS: Final[Mapping[str, str]] = {
    "SecretNotFound": (
        "Create the Secret named in spec.kubeconfigSecretRef in the operator's namespace "
        "(`make supervisor-kubeconfig` prints one)."
    ),
    "SecretKeyMissing": "Put the kubeconfig under the key that spec.kubeconfigSecretRef.key names.",
    "KubeconfigInvalid": "Fix the kubeconfig in the Secret at the place named.",
    "InsecureKubeconfig": (
        "Remove the field named from the kubeconfig: use a token or a client certificate, "
        "with the server's CA, and no exec, auth-provider, proxy or file paths."
    ),
    "InvalidSpec": "Correct the field named and apply the RemoteCluster again.",
    "Unauthorized": "Give the Secret a token or certificate that the central cluster accepts.",
    "Forbidden": (
        "Grant the central cluster's identity list and watch on Services in the allowed "
        "remote namespaces (deploy/supervisor/ has a Role for it)."
    ),
    "TLSUntrusted": (
        "Put the CA that signed the central API server's certificate in the kubeconfig's "
        "certificate-authority-data."
    ),
    "Unreachable": (
        "Check the kubeconfig's server address and that the operator's Pod can reach it; it "
        "is tried again with backoff."
    ),
    "InvalidResponse": (
        "Something other than a Kubernetes API server answered at the kubeconfig's server "
        "address (a proxy, a load balancer or a sign-in page): point it at the API server; "
        "it is tried again with backoff."
    ),
    "InternalError": (
        "The operator's log says what failed; it is tried again with backoff, and a restart "
        "of the operator's Pod starts afresh."
    ),
    "ServerNotAllowed": (
        "Point the kubeconfig's server at the central cluster's API server, or ask the "
        "platform team to list its range in the chart's addressPolicy.remoteServerCIDRs."
    ),
    # spec.vsphereSignIn
    "SignInRejected": (
        "The password is not sent again until the Secret changes, so that vCenter does not "
        "lock the user out: fix the user in vCenter SSO or the Secret, then update the Secret."
    ),
    "SignInCredentialsInvalid": (
        "`kubectl create secret generic NAME --type=kubernetes.io/basic-auth "
        "--from-literal=username=USER --from-literal=password=...` in the operator's "
        "namespace makes one."
    ),
    "SignInUnreachable": (
        "Check that the operator's Pod can reach the Supervisor's address on port 443 (the "
        "sign-in endpoint); imports keep their addresses meanwhile."
    ),
    "SignInFailed": (
        "Check spec.vsphereSignIn.url, if set, and that the address answers as a Supervisor "
        "does at /wcp/login; imports keep their addresses meanwhile."
    ),
}

# A SharedServiceCatalog's Ready condition.
CATALOG_STEPS: Final[Mapping[str, str]] = {
    "Conflict": (
        "Delete or rename what holds the name, or give the Service another local name "
        "with spec.names or spec.namePrefix; the catalog never takes over what it did not make."
    ),
    "Pending": (
        "`kubectl get ssi -l sharedservices.io/catalog=NAME` in this namespace shows why each "
        "import is not ready yet."
    ),
    "RemoteClusterNotFound": IMPORT_STEPS["RemoteClusterNotFound"].replace(
        "spec.source.remoteService.cluster", "spec.cluster"
    ),
    "InvalidRemoteCluster": IMPORT_STEPS["InvalidRemoteCluster"],
    "RemoteUnavailable": (
        "`kubectl get remoteclusters` shows why the central cluster cannot be read; the "
        "catalog's imports stay as they are meanwhile."
    ),
    "NamespaceDenied": IMPORT_STEPS["NamespaceDenied"],
    "RemoteNamespaceDenied": IMPORT_STEPS["RemoteNamespaceDenied"],
    "TooManyRemoteNamespaces": IMPORT_STEPS["TooManyRemoteNamespaces"],
    "InvalidSpec": "Correct the field named and apply the catalog again.",
}


def advised(message: str, reason: str, steps: Mapping[str, str]) -> str:
    """``message`` with the next step for ``reason`` added, if there is one."""
    step = steps.get(reason)
    if step is None:
        return message
    said = message.rstrip().rstrip(".")
    return f"{said}. {step}" if said else step
