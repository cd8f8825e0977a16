"""The sync of one import: read the caches, decide, write the difference, record the outcome.

Workers take keys from the queue, one sync at a time per import. A sync resolves the source
(:mod:`shared_services.sources`), lets :mod:`shared_services.decide` say what to write and
what to report, has the :class:`~shared_services.writer.Writer` apply the objects and the
:class:`~shared_services.recorder.Recorder` the status and Events, and returns a
:class:`~shared_services.decide.Result`: when it needs to run again, if ever. Only the
worker puts the key back on the queue, as controller-runtime's reconcilers return a
Result: a failed sync is retried with backoff; a conflict (an object that is not ours)
with a backoff of its own, since its removal is noticed only by retrying.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from shared_services import api, builders, decide, metrics, resolve, status, views
from shared_services.advice import Reason
from shared_services.api import JSON, ImportKey
from shared_services.decide import DONE, Plan, Result, Serving
from shared_services.informer import InformerGroup
from shared_services.kube import AsyncKube, Conflict, Forbidden, KubeError, NotFound
from shared_services.networks import LocalNetworks
from shared_services.recorder import Recorder
from shared_services.records import ImportRecord, Records
from shared_services.settings import Settings
from shared_services.sources import Sources
from shared_services.workqueue import Backoff, WorkQueue
from shared_services.writer import (
    ENDPOINT_SLICE,
    ENDPOINTS,
    MANAGED_KINDS,
    SERVICE,
    Kind,
    Outcome,
    Writer,
)

log = logging.getLogger(__name__)

# What kube-proxy reads, and so what moves an application's traffic: written first on a move.
DATA_PATH: Final = (SERVICE, ENDPOINT_SLICE)
# How long a moved import's Endpoints, status and Event wait, so that kube-proxy programs the
# new VIP without those writes and their watch events competing for the cores; and while
# other VIPs keep moving, until the moves pause for as long, but never longer than _HOLD.
_SETTLE = 0.2
_HOLD = 5.0
# Enough of the API server's reason for a refused write (a quota's or a policy's message).
_MAX_REFUSAL = 400
# A failed sync is retried soon at first; a conflicting object is not ours to watch, so
# soon at first, then more and more rarely.
_ERRORS = Backoff(start=2.0, limit=300.0)
_CONFLICTS = Backoff(start=5.0, limit=300.0)


class ImportReconciler:
    """Syncs imports from the queue; what a sync needs between runs is in their records."""

    def __init__(
        self,
        *,
        settings: Settings,
        kube: AsyncKube,
        imports: dict[ImportKey, JSON],
        caches: dict[Kind, InformerGroup],
        names: dict[Kind, InformerGroup],
        records: Records,
        sources: Sources,
        recorder: Recorder,
        networks: LocalNetworks,
    ) -> None:
        self.settings = settings
        self.imports = imports
        self.caches = caches
        self.records = records
        self.sources = sources
        self.recorder = recorder
        self.networks = networks
        self.writer = Writer(kube, caches, names)
        self.queue: WorkQueue[ImportKey] = WorkQueue()
        # When the last remote change came in: while moves keep coming, the rest waits.
        self.last_move = float("-inf")
        self._loop = asyncio.get_running_loop()

    def queue_from_remote(self, key: ImportKey, received: float) -> None:
        """Queue an import because its remote source changed at ``received``: urgently."""
        record = self.records.get(key)
        if record is not None and record.pending_since is None:
            record.pending_since = received
        self.last_move = max(self.last_move, received)
        self.queue.add(key, urgent=True)

    async def worker(self, *, moves_only: bool = False) -> None:
        """Sync keys until cancelled; one import's failure never stops the others.

        A worker for ``moves_only`` takes only imports whose remote VIP moved.
        """
        while True:
            key = await self.queue.get(urgent_only=moves_only)
            try:
                result = await self.sync(key)
            except KubeError as error:
                if _namespace_terminating(error):
                    # Its imports are about to be deleted, and their objects with them.
                    log.debug("%s/%s: namespace is being deleted", *key)
                else:
                    self._retry(key, error)
            except Exception as error:  # one import's failure must not stop the others
                self._retry(key, error)
            else:
                record = self.records.get(key)
                if record is not None:
                    record.failures = 0
                if result.after is not None:
                    self.queue.add_after(key, result.after)
            finally:
                self.queue.done(key)

    def _retry(self, key: ImportKey, error: Exception) -> None:
        # A gone import whose objects could not be removed gets a record to count in, which
        # goes once they are.
        record = self.records.ensure(key)
        record.failures += 1
        delay = _ERRORS.delay(record.failures)
        metrics.SYNCS.labels("error").inc()
        metrics.SYNC_ERRORS.inc()
        if isinstance(error, KubeError):
            log.warning("sync of %s/%s failed, retrying in %.0f s: %s", *key, delay, error)
        else:
            log.exception("sync of %s/%s failed, retrying in %.0f s", *key, delay)
        self.queue.add_after(key, delay)

    async def sync(self, key: ImportKey) -> Result:
        """Bring one import's local objects and status in line with its source.

        Returns when it needs to run again; a failure raises, and the worker retries.
        """
        body = self.imports.get(key)
        if body is None or body.get("metadata", {}).get("deletionTimestamp"):
            await self._remove(key)
            return DONE
        record = self.records.ensure(key)
        refusal = decide.namespace_refusal(
            key[0],
            operator_namespace=self.settings.operator_namespace,
            allowed=self.settings.allow_system_namespaces,
        )
        if refusal is not None:
            self._release(record)
            refused = decide.refused_namespace(body, refusal)
            await self.recorder.import_status(record, body, refused)
            return DONE
        try:
            spec = api.parse_import_spec(body.get("spec") or {}, import_name=key[1])
        except api.InvalidSpecError as error:
            self._release(record)
            await self.recorder.import_status(record, body, decide.invalid_spec(body, error))
            return DONE
        serving = self._serving(key, spec.effective_service_name(key[1]))
        written = record.written
        source = self._through_grace(
            record,
            self.sources.resolve(record, spec),
            keeping=bool(decide.last_known(serving, written).addresses),
        )
        result = DONE.again(source.recheck_after)
        plan = decide.plan(
            body,
            spec,
            source,
            serving,
            address_policy=self.settings.address_policy,
            networks=self.networks.networks,
            families=self.networks.service_families,
            written=written,
        )
        if plan.desired is None:
            if plan.status is not None:
                await self.recorder.import_status(record, body, plan.status)
            return result
        outcome, held_until = await self._write_objects(record, body, plan)
        if held_until is not None:
            result = result.again(held_until - self._loop.time())
        if outcome is None:
            return result  # the slice moved: the rest follows once kube-proxy has had its turn
        return result.again(await self._conclude(record, body, plan, outcome))

    def _through_grace(
        self, record: ImportRecord, source: resolve.SourceState, *, keeping: bool
    ) -> resolve.SourceState:
        """The source as the grace of a gone RemoteCluster has it.

        Its ``recheck_after`` says when the grace ends, for the sync to come back then.
        ``keeping`` says whether there are last known addresses to keep. The grace counts
        from when this process first saw the RemoteCluster gone with addresses to keep, and
        goes on once they are removed, so that the import keeps saying why. After a restart
        it starts again, which keeps the addresses longer, never shorter.
        """
        grace = self.settings.remote_gone_grace
        if not source.gone:
            record.gone_since = None
            return source
        if record.gone_since is None and not keeping:
            return resolve.after_gone(source, gone_for=0.0, grace=grace, keeping=False)
        now = self._loop.time()
        if record.gone_since is None:
            record.gone_since = now
        since = record.gone_since
        return resolve.after_gone(source, gone_for=now - since, grace=grace, keeping=True)

    async def _remove(self, key: ImportKey) -> None:
        """Remove a gone (or going) import's objects; then its record goes too."""
        record = self.records.get(key)
        if record is not None:
            self._release(record)
        outcome = await self.writer.remove(owner=builders.Owner(key[0], key[1], ""))
        _count_writes(outcome)
        record = self.sources.drop(key)
        if record is not None:
            self.recorder.forget(record)

    def _release(self, record: ImportRecord) -> None:
        """The import reads nothing now: its sources are let go, what followed from them too."""
        self.sources.release(record)
        record.reset()

    async def _conclude(
        self, record: ImportRecord, body: JSON, plan: Plan, outcome: Outcome
    ) -> float | None:
        """Record the status and Events that follow what the writes met.

        Returns when to look again at an object in the way: its removal is noticed only so.
        """
        conclusion = decide.conclude(
            body,
            plan,
            conflicts=outcome.conflicts,
            previous_reason=record.ready[1] if record.ready else "",
        )
        again = None
        if conclusion.conflicted:
            record.conflicts += 1
            again = _CONFLICTS.delay(record.conflicts)
            metrics.SYNCS.labels("conflict").inc()
        else:
            record.conflicts = 0
            metrics.SYNCS.labels("ok").inc()
        if conclusion.addresses_changed:
            metrics.ADDRESS_CHANGES.inc()
        for event in conclusion.events:
            await self.recorder.event(record, body, event)
        await self.recorder.import_status(
            record, body, conclusion.status, detail=plan.verdict.details()
        )
        return again

    def _serving(self, key: ImportKey, service_name: str) -> Serving:
        """The addresses and ports of the import's slices of its Service, as cached.

        Only the slices, which no tenant role may write: not the Service, whose ports the
        ``edit`` role lets a tenant change.
        """
        slices = [
            obj
            for obj in self.caches[ENDPOINT_SLICE].indexed(*key)
            if (obj["metadata"].get("labels") or {}).get(builders.SERVICE_NAME_LABEL)
            == service_name
            and views.owns(obj)  # not one Kubernetes made for a selector added by hand
        ]
        addresses = tuple(
            str(address)
            for obj in slices
            for endpoint in obj.get("endpoints") or []
            for address in endpoint.get("addresses") or []
        )
        # A slice's port, which has no targetPort, reads as that port on both sides.
        ports: list[JSON] = next((obj["ports"] for obj in slices if obj.get("ports")), [])
        return Serving(addresses=addresses, ports=status.ports_of({"ports": ports}))

    async def _write_objects(
        self, record: ImportRecord, body: JSON, plan: Plan
    ) -> tuple[Outcome | None, float | None]:
        """Write the import's objects; and when the writes held behind a moved slice are due.

        The outcome is None when the rest waits behind a moved slice.

        A move of a serving slice is what applications wait for, and kube-proxy programs it
        on the same two cores that the Endpoints, status and Event writes (and their watch
        events) would take at that moment. So on a move the Service and slices go alone, and
        a sync ``_SETTLE`` later writes the rest; syncs meanwhile keep the slices current.
        When a thousand VIPs move at once, the rest of each waits until the moves pause
        (up to ``_HOLD``), so that no slice waits behind the trailing writes of the others.
        """
        settling = self._settling_until(record)
        moving = settling is None and plan.moves
        kinds = DATA_PATH if settling is not None or moving else MANAGED_KINDS
        outcome = await self._apply(record, body, plan, kinds=kinds)
        received, record.pending_since = record.pending_since, None
        if received is not None and outcome.endpoints_written:
            metrics.PROPAGATION.observe(self._loop.time() - received)
        if kinds is MANAGED_KINDS or outcome.conflicts:
            return outcome, settling
        if moving and outcome.endpoints_written:
            record.moved_at = now = self._loop.time()
            return None, now + _SETTLE
        if settling is not None:
            return None, settling
        rest = await self._apply(record, body, plan, kinds=(ENDPOINTS,))
        outcome.writes.extend(rest.writes)
        return outcome, None

    def _settling_until(self, record: ImportRecord) -> float | None:
        """When the held writes of an import whose slice moved are due; None if none are.

        They are due ``_SETTLE`` after the move, or after the last move of any import if
        that is later, but no later than ``_HOLD`` after the move. A sync before then (its
        own slice's event, a further move) finds the hold still on, and asks again for a
        sync when it ends, in case the timer fired a hair early.
        """
        moved = record.moved_at
        if moved is None:
            return None
        until = decide.settle_until(
            moved=moved, last_move=self.last_move, settle=_SETTLE, hold=_HOLD
        )
        if until <= self._loop.time():
            record.moved_at = None
            return None
        return until

    async def _apply(
        self, record: ImportRecord, body: JSON, plan: Plan, *, kinds: tuple[Kind, ...]
    ) -> Outcome:
        """Write the desired objects; a refusal the builders did not foresee is reported."""
        assert plan.desired is not None
        namespace, name = record.key
        owner = builders.Owner(namespace, name, str(body["metadata"].get("uid")))
        try:
            outcome = await self.writer.apply(owner=owner, desired=plan.desired, kinds=kinds)
        except KubeError as error:
            refused = not error.temporary and not isinstance(error, Conflict | NotFound)
            if refused and not _namespace_terminating(error):
                await self._rejected(record, body, plan, error)
            raise  # retried with backoff either way: a quota or a policy may change
        _count_writes(outcome)
        if ENDPOINT_SLICE in kinds and not outcome.conflicts:
            record.written = Serving(tuple(decide.desired_addresses(plan.desired)), plan.ports)
        return outcome

    async def _rejected(
        self, record: ImportRecord, body: JSON, plan: Plan, error: KubeError
    ) -> None:
        """Say why the API server refused a write the builders allowed.

        A ResourceQuota, an admission policy or a webhook can refuse what is otherwise a
        valid object; without this the import would only say so in the operator's log.
        """
        said = error.message if error.message.isprintable() else repr(error.message)
        if len(said) > _MAX_REFUSAL:
            said = f"{said[:_MAX_REFUSAL]}..."
        message = f"the API server refused a write ({error.status} {error.reason}): {said}"
        refused = decide.unwritten(
            body.get("status") or {},
            generation=body["metadata"].get("generation"),
            shown=plan.shown,
            source=plan.source,
            reason=Reason.WRITE_REJECTED,
            message=message,
        )
        await self.recorder.import_status(record, body, refused)

    def tables(self) -> dict[str, int]:
        """How many entries each table holds, for the tracked-items metric."""
        return {**self.records.tables(), "queue": len(self.queue)}


def _namespace_terminating(error: KubeError) -> bool:
    return isinstance(error, Forbidden) and "being terminated" in error.message


def _count_writes(outcome: Outcome) -> None:
    for kind, verb in outcome.writes:
        metrics.WRITES.labels(kind, verb).inc()
