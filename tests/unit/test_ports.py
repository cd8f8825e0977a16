"""The harness's loopback ports come from where no outgoing connection can take them."""

from __future__ import annotations

from harness import cluster


def test_ports_are_outside_the_ephemeral_range_and_never_given_twice() -> None:
    low, high = cluster._ephemeral_range()
    ports = [cluster.free_port() for _ in range(50)]
    assert all(not low <= port <= high for port in ports), ports
    assert len(set(ports)) == len(ports)
