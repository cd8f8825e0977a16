"""One record per import, and who reads what, derived from the records alone.

* A record holds what its import's sync read; the readers of a remote Service, a remote
  namespace, a RemoteCluster and a hostname are found from it, without a scan.
* A change of what an import reads says which sources nobody reads any more (their watches
  and DNS tasks may go), and never one that another import still reads.
* Dropping a record releases all it read; resetting one keeps what outlives its source.
"""

from __future__ import annotations

from shared_services.correlator import Budget
from shared_services.decide import Serving
from shared_services.records import NOTHING_READ, ImportRecord, Records, Released
from shared_services.resolve import Dependencies

A, B = ("shop", "db"), ("shop", "cache")


def _reads(namespace: str = "data", name: str = "pg", *hostnames: str) -> Dependencies:
    return Dependencies(
        cluster="central",
        remote=("central", namespace, name),
        hostnames=frozenset(hostnames),
    )


def test_readers_are_found_by_what_they_read() -> None:
    records = Records()
    assert records.set_reads(records.ensure(A), _reads("data", "pg", "vip.test")) == Released()
    records.set_reads(records.ensure(B), _reads("data", "redis"))

    assert records.readers_of_service("central", "data", "pg") == {A}
    assert records.readers_of_namespace("central", "data") == {A, B}
    assert records.readers_of_cluster("central") == {A, B}
    assert records.readers_of_hostname("vip.test") == {A}


def test_a_namespace_is_released_only_by_its_last_reader() -> None:
    records = Records()
    a, b = records.ensure(A), records.ensure(B)
    records.set_reads(a, _reads("data", "pg"))
    records.set_reads(b, _reads("data", "redis"))

    assert records.set_reads(a, _reads("other", "pg")) == Released()
    assert records.set_reads(b, _reads("other", "redis")) == Released(
        namespaces=frozenset({("central", "data")})
    )
    assert records.readers_of_namespace("central", "data") == set()


def test_a_move_within_a_namespace_keeps_its_watch() -> None:
    records = Records()
    a = records.ensure(A)
    records.set_reads(a, _reads("data", "pg"))
    assert records.set_reads(a, _reads("data", "pg-replica")) == Released()
    assert records.readers_of_namespace("central", "data") == {A}
    assert records.readers_of_service("central", "data", "pg") == set()


def test_a_hostname_no_one_reads_is_released() -> None:
    records = Records()
    a, b = records.ensure(A), records.ensure(B)
    records.set_reads(a, _reads("data", "pg", "one.test", "two.test"))
    records.set_reads(b, _reads("data", "pg", "two.test"))

    released = records.set_reads(a, _reads("data", "pg"))
    assert released.hostnames == frozenset({"one.test"})
    assert records.readers_of_hostname("two.test") == {B}


def test_dropping_a_record_releases_all_it_read_and_empties_every_index() -> None:
    records = Records()
    records.set_reads(records.ensure(A), _reads("data", "pg", "vip.test"))

    record, released = records.drop(A)
    assert record is not None
    assert record.key == A
    assert released == Released(frozenset({("central", "data")}), frozenset({"vip.test"}))
    assert records.get(A) is None
    assert records.drop(A) == (None, Released())
    assert len(records) == 0
    assert not any(count for table, count in records.tables().items())


def _busy(records: Records) -> ImportRecord:
    """A record with every field set, as a sync of a failing, moving import leaves it."""
    record = records.ensure(A)
    record.written = Serving(("192.0.2.1",), ())
    record.gone_since = record.moved_at = record.pending_since = 1.0
    record.failures, record.conflicts = 3, 2
    record.ready = ("False", "InvalidSpec")
    record.budget = Budget.full(0.0)
    return record


def test_a_reset_keeps_what_outlives_the_source() -> None:
    record = _busy(Records())
    record.reset()
    after = (record.reads, record.written, record.gone_since, record.moved_at)
    assert after == (NOTHING_READ, None, None, None)
    assert (record.pending_since, record.conflicts) == (None, 0)
    # The import still exists: its backoff, its place in the gauge and its budget stay.
    assert (record.failures, record.ready) == (3, ("False", "InvalidSpec"))
    assert record.budget is not None


def test_tables_count_the_failing() -> None:
    records = Records()
    records.ensure(A).failures = 1
    records.ensure(B).conflicts = 1
    tables = records.tables()
    assert (tables["import_records"], tables["error_backoffs"]) == (2, 1)
    assert tables["conflict_backoffs"] == 1
