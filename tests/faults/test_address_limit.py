"""An import serves at most 1,000 addresses, both families together, and says so otherwise.

Each EndpointSlice holds 1,000 addresses of its family, while the import's status lists
them all in one list of at most 1,000. A name that answers 600 A and 600 AAAA records
would fit the slices and then fail the status on every sync, saying nothing. Instead the
import says ``Ready=False``, ``TooManyAddresses``, with the count, and writes nothing;
once the answer shrinks to 1,000 the whole of it is served.
"""

from __future__ import annotations

from faults.toolkit import FaultEnv
from kit import Kit
from suite import Row

PORTS = [{"port": 5432}]
_IPV4 = [
    f"{net}.{host}" for net in ("192.0.2", "198.51.100", "203.0.113") for host in range(1, 255)
]


def _answer(v4: int, v6: int) -> list[str]:
    """``v4`` A and ``v6`` AAAA records, from the documentation ranges."""
    return _IPV4[:v4] + [f"2001:db8::{n:x}" for n in range(1, v6 + 1)]


def test_too_many_addresses_in_both_families(kit: Kit, row: Row, fault_env: FaultEnv) -> None:
    row.injected = "a hostname answering 600 A and 600 AAAA records, then 500 of each"
    host = f"{kit.namespace}.many.test"
    fault_env.dns.set(host, _answer(600, 600), ttl=2)
    kit.create_import("many", {"source": {"hostname": host}, "ports": PORTS})

    ready = kit.wait_condition("many", "Ready", "False", "TooManyAddresses", timeout=60)
    assert "1200 addresses" in ready["message"], ready["message"]
    assert "1000" in ready["message"], ready["message"]
    assert kit.slice_addresses("many") == {}, "addresses beyond the limit were written"
    assert kit.get_import("many")["status"]["addresses"] == []

    fault_env.dns.set(host, _answer(500, 500), ttl=2)
    kit.wait_condition("many", "Ready", "True", "Synced", timeout=60)
    served = kit.slice_addresses("many")
    assert (len(served.get("IPv4", [])), len(served.get("IPv6", []))) == (500, 500)
    assert len(kit.get_import("many")["status"]["addresses"]) == 1000
    row.figure("refused", "1200 addresses (600 + 600)")
    row.figure("served", "1000 addresses (500 + 500)")
    row.happened = f"TooManyAddresses, nothing written: {ready['message'][:80]}...; 1,000 served"
