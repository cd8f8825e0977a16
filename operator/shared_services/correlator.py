"""Which Events to create, which to count on an existing one, and which to drop.

A VIP that flaps would otherwise put one Event per move on the import, and ``kubectl
describe`` would scroll past screens of them. This follows what kubectl users know from
client-go's event correlator, with its defaults:

- **Repeats are counted.** An Event like one recorded before (same type, reason and
  message) raises that Event's ``count`` and ``lastTimestamp`` instead of adding another;
  ``kubectl describe`` shows "(x5 over 3m)".
- **Similar Events are combined.** Once one import has had ten different messages for the
  same reason within ten minutes, the rest of that window's go into one Event whose message
  starts "(combined from similar events): " and shows the latest.
- **Each import has a budget.** 25 Events at once, then one per five minutes (a token
  bucket); what is over the budget is dropped. The metrics and the status still say every
  change, and they are what alerts read.

Pure: the clock is passed in, and the recorder writes. An import's :class:`Budget` lives
in its record (:mod:`shared_services.records`), for as long as the import exists, however
many imports there are: a budget that was forgotten to save memory would start full again,
and an import among more than :data:`SUBJECTS` that churn would never run out of Events. A
budget is two numbers; what costs memory is the Events remembered for counting and
combining (their messages), and those are kept here for the :data:`SUBJECTS` imports that
had Events last, a few per import. An import's entries go with it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

BURST = 25
REFILL_SECONDS = 300.0
SIMILAR = 10
WINDOW_SECONDS = 600.0
# Imports whose Events are remembered, for counting repeats and combining similar ones.
SUBJECTS = 4096
# Events remembered per import, for counting repeats; the oldest is forgotten first.
PER_SUBJECT = 16
COMBINED = "(combined from similar events): "


@dataclass(frozen=True)
class Record:
    """What to write for one Event: a new one (``name`` None) or a count on ``name``."""

    key: Hashable  # pass back to :meth:`Correlator.recorded`
    message: str
    count: int
    name: str | None = None


@dataclass
class _Known:
    name: str
    count: int


@dataclass
class _Similar:
    started: float
    messages: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Budget:
    """One import's token bucket: ``BURST`` Events at once, then one per ``REFILL_SECONDS``."""

    tokens: float
    refilled: float

    @classmethod
    def full(cls, now: float) -> Budget:
        """A budget with every token, as a new import has."""
        return cls(tokens=BURST, refilled=now)


@dataclass
class _Memory:
    known: OrderedDict[Hashable, _Known] = field(default_factory=OrderedDict)
    similar: dict[tuple[str, str], _Similar] = field(default_factory=dict)


class Correlator:
    """Turns each Event an import should get into a :class:`Record`, or None to drop it."""

    def __init__(self) -> None:
        # The Events remembered, for the SUBJECTS imports that had one last.
        self._memories: OrderedDict[Hashable, _Memory] = OrderedDict()

    def observe(
        self,
        subject: Hashable,
        budget: Budget,
        type_: str,
        reason: str,
        message: str,
        *,
        now: float,
    ) -> Record | None:
        """Decide what ``subject`` (an import's key) gets for this Event at time ``now``.

        ``budget`` is the import's own, spent here when the Event is not dropped.
        """
        if not self._spend(budget, now):
            return None
        state = self._memory(subject)
        key: Hashable = (type_, reason, message)
        similar = state.similar.get((type_, reason))
        if similar is None or now - similar.started > WINDOW_SECONDS:
            similar = state.similar[(type_, reason)] = _Similar(started=now)
        similar.messages.add(message)
        if len(similar.messages) >= SIMILAR:
            similar.messages.discard(message)  # the set stays at its cap
            key, message = (type_, reason), f"{COMBINED}{message}"
        known = state.known.get(key)
        if known is None:
            return Record(key, message, 1)
        state.known.move_to_end(key)
        return Record(key, message, known.count + 1, known.name)

    def recorded(self, subject: Hashable, record: Record, name: str) -> None:
        """``record`` was written: the Event ``name`` holds its message and count now."""
        state = self._memories.get(subject)
        if state is None:
            return
        state.known[record.key] = _Known(name, record.count)
        state.known.move_to_end(record.key)
        while len(state.known) > PER_SUBJECT:
            state.known.popitem(last=False)

    def forget(self, subject: Hashable) -> None:
        """The import is gone, and what was remembered of its Events with it."""
        self._memories.pop(subject, None)

    def __len__(self) -> int:
        """How many imports' Events are remembered: at most :data:`SUBJECTS`."""
        return len(self._memories)

    def _memory(self, subject: Hashable) -> _Memory:
        state = self._memories.get(subject)
        if state is None:
            state = self._memories[subject] = _Memory()
            while len(self._memories) > SUBJECTS:
                # Its repeats start new Events from now on; its budget stays as it is.
                self._memories.popitem(last=False)
        else:
            self._memories.move_to_end(subject)
        return state

    @staticmethod
    def _spend(state: Budget, now: float) -> bool:
        state.tokens = min(BURST, state.tokens + (now - state.refilled) / REFILL_SECONDS)
        state.refilled = now
        if state.tokens < 1:
            return False
        state.tokens -= 1
        return True
