"""A remote VIP that flaps: 50 changes in 5 seconds, some of them to another address family.

The final local state equals the final remote state, the endpoints never go empty on the
way (a family switch creates the new slice before deleting the old one), and the writes
stay bounded: at most one write per change and object, fewer when changes coalesce. The
Events do not flood ``kubectl describe``: repeats are counted, similar ones combined, and
the import's budget caps them, as client-go's recorder does.
"""

from __future__ import annotations

import time

from faults.toolkit import Sampler, alone, load_balancer, slice_state, writes
from kit import Kit
from shared_services import correlator
from suite import Row

CHANGES = 50
SECONDS = 5.0


def _vip(step: int) -> str:
    # Every fifth change moves to IPv6 and back: a slice is created and one deleted.
    return f"2001:db8::{step + 1:x}" if step % 5 == 4 else f"198.51.100.{step + 1}"


def test_vip_flapping(kit: Kit, row: Row) -> None:
    row.injected = (
        f"remote ingress changed {CHANGES} times in {SECONDS:.0f} s, every 5th to IPv6 and back"
    )
    load_balancer(kit, "db", ["192.0.2.60"])
    kit.remote_cluster()
    kit.import_remote("db", "db")
    kit.wait_addresses("db", {"IPv4": ["192.0.2.60"]})
    kit.wait_condition("db", "Ready", "True", "Synced")
    operator = kit.operator
    alone(kit)
    before = kit.settled(lambda: writes(operator), quiet=0.5)
    patches = {
        kind: operator.metric_sum("shared_services_writes_total", kind=kind)
        for kind in ("EndpointSlice", "Endpoints", "Service")
    }
    statuses = operator.metric_sum("shared_services_status_writes_total")
    changes = operator.metric("shared_services_address_changes_total")
    final = _vip(CHANGES - 1)
    family = "IPv6" if ":" in final else "IPv4"
    with Sampler(lambda: slice_state(kit).get("db", {}), interval=0.05) as sampler:
        started = time.monotonic()
        for step in range(CHANGES):
            kit.set_ingress("db", [{"ip": _vip(step)}])
            time.sleep(max(0.0, started + (step + 1) * SECONDS / CHANGES - time.monotonic()))
        flapped = time.monotonic() - started
        kit.wait_addresses("db", {family: [final]})
        settled_after = time.monotonic() - started - flapped
    total = kit.settled(lambda: writes(operator), quiet=1.0) - before
    kit.wait_condition("db", "Ready", "True", "Synced")
    assert kit.get_import("db")["status"]["addresses"] == [final]
    assert kit.vip("db") == final
    by_kind = {
        kind: operator.metric_sum("shared_services_writes_total", kind=kind) - count
        for kind, count in patches.items()
    }
    empty = [s for _, s in sampler.samples if not any(s.values())]
    seen = {a for _, s in sampler.samples for addresses in s.values() for a in addresses}
    allowed = {_vip(step) for step in range(CHANGES)} | {"192.0.2.60"}
    row.happened = f"local equals the final remote VIP {final}; endpoints never empty"
    row.figure("flap duration", flapped, "s")
    row.figure("local final after last change", settled_after, "s")
    row.figure("writes", total)
    row.figure("EndpointSlice writes", by_kind["EndpointSlice"])
    row.figure("Endpoints writes", by_kind["Endpoints"])
    row.figure(
        "status writes", operator.metric_sum("shared_services_status_writes_total") - statuses
    )
    row.figure(
        "address changes", operator.metric("shared_services_address_changes_total") - changes
    )
    moved = [e for e in kit.events("db") if e.reason == "AddressesChanged"]
    row.figure("AddressesChanged Events", len(moved))
    row.figure("their counts", sum(e.count or 1 for e in moved))
    row.figure("samples", len(sampler.samples))
    row.figure("empty samples", len(empty))
    assert not empty, "the endpoints were empty while the VIP flapped"
    assert seen <= allowed, f"addresses that never were the VIP: {seen - allowed}"
    assert by_kind["Service"] == 0
    # Each change costs at most: the slice (two when the family switches), the Endpoints,
    # the status.
    assert by_kind["EndpointSlice"] <= CHANGES * 1.4
    assert by_kind["Endpoints"] <= CHANGES
    assert total <= CHANGES * 3.4
    # At most the separate ones and one combined, and no more than the budget in all.
    assert len(moved) <= correlator.SIMILAR
    assert sum(e.count or 1 for e in moved) <= correlator.BURST
    if operator.metric("shared_services_address_changes_total") - changes > correlator.SIMILAR:
        assert any(e.message.startswith(correlator.COMBINED) for e in moved)
