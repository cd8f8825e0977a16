"""Events on a flapping import are counted, combined and budgeted, as client-go's are."""

from __future__ import annotations

import weakref

from shared_services import correlator
from shared_services.correlator import COMBINED, Budget, Correlator, Record

KEY = ("shop", "db")
# The imports' budgets, as their records keep them, for each correlator a test makes.
BUDGETS: weakref.WeakKeyDictionary[Correlator, dict[object, Budget]] = weakref.WeakKeyDictionary()


def _budgets(c: Correlator) -> dict[object, Budget]:
    return BUDGETS.setdefault(c, {})


def _forget(c: Correlator, key: object) -> None:
    """The import is gone: its record (and budget) goes, and the correlator forgets it."""
    _budgets(c).pop(key, None)
    c.forget(key)


def _write(c: Correlator, message: str, *, now: float, key: object = KEY) -> Record | None:
    """Observe one Event and, as the recorder does, remember the Event it was written to."""
    budget = _budgets(c).setdefault(key, Budget.full(now))
    record = c.observe(key, budget, "Normal", "AddressesChanged", message, now=now)
    if record is not None:
        c.recorded(key, record, record.name or f"db.{len(message)}.{record.count}.{now}")
    return record


def test_a_first_event_is_created() -> None:
    assert _write(Correlator(), "a -> b", now=0) == Record(
        ("Normal", "AddressesChanged", "a -> b"), "a -> b", 1
    )


def test_a_repeat_raises_the_count_of_the_event_it_repeats() -> None:
    c = Correlator()
    first = _write(c, "a -> b", now=0)
    _write(c, "b -> a", now=1)
    again = _write(c, "a -> b", now=2)
    assert first is not None
    assert again is not None
    assert again.count == 2
    assert again.name is not None
    assert again.message == "a -> b"
    third = _write(c, "a -> b", now=3)
    assert third is not None
    assert (third.count, third.name) == (3, again.name)


def test_the_tenth_different_message_in_a_window_is_combined_and_counted() -> None:
    c = Correlator()
    records = [_write(c, f"a -> {n}", now=n) for n in range(14)]
    assert all(r is not None for r in records)
    separate = [r for r in records if r and not r.message.startswith(COMBINED)]
    combined = [r for r in records if r and r.message.startswith(COMBINED)]
    assert len(separate) == correlator.SIMILAR - 1
    assert [r.count for r in combined] == [1, 2, 3, 4, 5]
    assert combined[-1].message == f"{COMBINED}a -> 13"
    # One Event holds them all: the later ones count on the first combined one.
    assert {r.name for r in combined[1:]} == {combined[1].name}


def test_a_new_window_starts_separate_again() -> None:
    c = Correlator()
    for n in range(12):
        _write(c, f"a -> {n}", now=n)
    later = _write(c, "a -> z", now=12 + correlator.WINDOW_SECONDS)
    assert later is not None
    assert later.message == "a -> z"


def test_an_import_over_its_budget_gets_no_more_until_the_bucket_refills() -> None:
    c = Correlator()
    written = [_write(c, f"a -> {n % 2}", now=0) for n in range(40)]
    assert sum(r is not None for r in written) == correlator.BURST
    assert _write(c, "a -> 0", now=1) is None
    assert _write(c, "a -> 0", now=correlator.REFILL_SECONDS) is not None
    assert _write(c, "a -> 0", now=correlator.REFILL_SECONDS + 1) is None


def test_budgets_are_per_import() -> None:
    c = Correlator()
    for n in range(correlator.BURST):
        _write(c, f"{n}", now=0)
    assert _write(c, "x", now=0) is None
    assert _write(c, "x", now=0, key=("shop", "other")) is not None


def test_a_forgotten_import_starts_afresh() -> None:
    c = Correlator()
    _write(c, "a -> b", now=0)
    _forget(c, KEY)
    assert len(c) == 0
    record = _write(c, "a -> b", now=1)
    assert record is not None
    assert (record.count, record.name) == (1, None)


def test_an_event_written_after_its_import_went_is_not_remembered() -> None:
    c = Correlator()
    record = c.observe(KEY, Budget.full(0), "Normal", "AddressesChanged", "a -> b", now=0)
    assert record is not None
    _forget(c, KEY)
    c.recorded(KEY, record, "db.1")
    assert len(c) == 0


def test_memory_is_bounded_per_import_and_in_imports() -> None:
    c = Correlator()
    for n in range(correlator.SUBJECTS + 10):
        _write(c, "a -> b", now=0, key=("shop", str(n)))
    # The Events of the first imports were forgotten first: a repeat is a new Event.
    record = _write(c, "a -> b", now=1, key=("shop", "0"))
    assert record is not None
    assert record.count == 1


def test_budgets_hold_however_many_imports_have_events() -> None:
    # Beyond SUBJECTS imports with Events, an import that spent its budget must not get a
    # full one back because others had Events since.
    c = Correlator()
    for n in range(correlator.BURST):
        assert _write(c, f"{n}", now=0) is not None
    assert _write(c, "x", now=0) is None
    for n in range(correlator.SUBJECTS + 10):
        assert _write(c, "a -> b", now=1, key=("shop", str(n))) is not None
    assert _write(c, "x", now=2) is None
    assert len(c) == correlator.SUBJECTS  # what is remembered of Events is bounded
    # The budget goes with the import, and only then.
    _forget(c, KEY)
    assert _write(c, "x", now=3) is not None
