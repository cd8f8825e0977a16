"""A stand-in for the NSX load balancer: gives LoadBalancer Services an ingress address.

On vSphere with Tanzu, NSX allocates a VIP for each ``type: LoadBalancer`` Service and a
cloud controller writes it to ``status.loadBalancer.ingress``. Here a thread does the same
on the supervisor cluster, through the status subresource, from a pool of documentation
addresses. It never touches a Service whose ingress is already set, so a test moves a VIP
(or sets an IPv6 or hostname ingress) by patching the status itself, as a re-provisioned
load balancer would.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Iterator
from typing import Any

from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from urllib3.exceptions import HTTPError

log = logging.getLogger(__name__)

DEFAULT_POOL = "192.0.2.0/24"


class AddressPool:
    """Hands out addresses round-robin, skipping those in use.

    Round-robin rather than lowest-free, so a Service deleted and created again gets a new
    VIP, which is what makes the operator's job necessary in the first place.
    """

    def __init__(self, cidr: str = DEFAULT_POOL) -> None:
        self._hosts = [str(h) for h in ipaddress.ip_network(cidr).hosts()][9:]  # .10 upwards
        self._next = 0
        self.in_use: set[str] = set()

    def take(self) -> str:
        """The next free address; raises when the pool is exhausted."""
        for _ in range(len(self._hosts)):
            candidate = self._hosts[self._next]
            self._next = (self._next + 1) % len(self._hosts)
            if candidate not in self.in_use:
                self.in_use.add(candidate)
                return candidate
        msg = "load-balancer address pool exhausted"
        raise RuntimeError(msg)


def _ingress_ips(service: Any) -> list[str]:
    ingress = (service.status.load_balancer.ingress if service.status.load_balancer else None) or []
    return [i.ip for i in ingress if i.ip]


class LoadBalancerAllocator:
    """Watches Services on one cluster and fills in missing load-balancer ingress."""

    def __init__(self, api_client: k8s.ApiClient, *, cidr: str = DEFAULT_POOL) -> None:
        self._api = k8s.CoreV1Api(api_client)
        self._pool = AddressPool(cidr)
        self._stop = threading.Event()
        self._watch: k8s_watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, name="lb-allocator", daemon=True)
        self.allocations = 0

    def start(self) -> LoadBalancerAllocator:
        """Start allocating in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the watch and wait for the thread."""
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for _ in self._events():
                    if self._stop.is_set():
                        return
            except (k8s.ApiException, HTTPError, OSError) as error:
                # The API server may be restarted by a test; list again once it is back.
                log.debug("allocator watch ended: %s", error)
                self._stop.wait(0.5)

    def _events(self) -> Iterator[None]:
        services = self._api.list_service_for_all_namespaces()
        for service in services.items:
            self._pool.in_use.update(_ingress_ips(service))
        for service in services.items:
            self._consider(service)
        version = services.metadata.resource_version if services.metadata else None
        # Short watch windows resumed from the last version seen: no relisting, and a stop
        # takes effect within a window instead of waiting for the next event.
        while not self._stop.is_set():
            self._watch = k8s_watch.Watch()
            for event in self._watch.stream(
                self._api.list_service_for_all_namespaces,
                resource_version=version,
                timeout_seconds=2,
            ):
                service = event["object"]
                version = service.metadata.resource_version
                if event["type"] == "DELETED":
                    self._pool.in_use.difference_update(_ingress_ips(service))
                else:
                    self._pool.in_use.update(_ingress_ips(service))
                    self._consider(service)
                yield None

    def _consider(self, service: Any) -> None:
        if service.spec.type != "LoadBalancer":
            return
        ingress = service.status.load_balancer.ingress if service.status.load_balancer else None
        if ingress:
            return
        address = self._pool.take()
        body = {
            # The resourceVersion makes this a compare-and-swap: if a test set an ingress in
            # the meantime, the write fails with 409 and the test's value stands.
            "metadata": {"resourceVersion": service.metadata.resource_version},
            "status": {"loadBalancer": {"ingress": [{"ip": address, "ipMode": "VIP"}]}},
        }
        try:
            self._api.patch_namespaced_service_status(
                service.metadata.name, service.metadata.namespace, body
            )
        except k8s.ApiException as error:
            self._pool.in_use.discard(address)
            if error.status not in (404, 409):
                raise
            return
        self.allocations += 1
        log.info(
            "allocated %s to %s/%s", address, service.metadata.namespace, service.metadata.name
        )
