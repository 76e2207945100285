"""The ingest core every source plugs into: validate, resolve the app, store in batches.

A source yields ``(index, raw)`` pairs (``line`` too for files); the core answers with one
:class:`Summary` shape everywhere: ``{"accepted", "duplicates", "rejected": [...]}``.
A bad record never stops the good ones around it.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ..models import Cdr
from ..storage import AppStore, Arrivals, CdrWriter, Outcome
from .canonical import RecordErrors, validate
from .timebounds import TimeBounds, TimeLimits

if TYPE_CHECKING:  # only a follower's batches carry progress (storage/spool.py)
    from ..storage import Progress

    ProgressOf = Callable[[list["Rejection"], Callable[[int], "Rejection"]], Progress]

BATCH_SIZE = 2000
CONFLICT = "call_id: conflict: already stored with different content"
BOM = b"\xef\xbb\xbf"  # UTF-8's byte order mark: Windows tools write it first; skipped


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that was not stored, with every reason as a ``field: message`` string."""

    index: int
    call_id: str | None
    errors: list[str]
    line: int | None = None
    file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "call_id": self.call_id, "errors": self.errors}
        if self.file is not None:
            out["file"] = self.file
        if self.line is not None:
            out["line"] = self.line
        return out


@dataclass(slots=True)
class Summary:
    """What happened to a run of records. ``on_reject`` (if set) sees every rejection as
    it happens; at most ``keep`` of them are also kept in ``rejected``, so a file import
    with millions of bad lines runs in constant memory (``rejected_total`` counts all)."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    rejected_total: int = 0
    keep: int | None = None
    on_reject: Callable[[Rejection], None] | None = None

    def reject(self, rejection: Rejection) -> None:
        self.rejected_total += 1
        if self.on_reject is not None:
            self.on_reject(rejection)
        if self.keep is None or len(self.rejected) < self.keep:
            self.rejected.append(rejection)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [r.to_dict() for r in self.rejected],
        }


# Not frozen: a frozen dataclass is slow to build, and sources build one per record.
@dataclass(slots=True)
class Item:
    """One record from a source: its position, its raw value, and its file line if any."""

    index: int
    raw: object
    line: int | None = None
    error: str | None = None  # the source could not even parse it (e.g. bad JSON)
    file: str | None = None
    # Problems the source found while mapping its format to a canonical record (e.g. a
    # FreeSWITCH variable that is missing), reported together with validation's.
    errors: tuple[str, ...] = ()
    # Canonical field name -> the source's own name for it, so messages point at what the
    # sender wrote ("variables.voicecdr_appkey: ..." instead of "appkey: ...").
    names: Mapping[str, str] | None = None

    def reject(self, errors: list[str], call_id: str | None = None) -> Rejection:
        if self.names:
            errors = [_rename(e, self.names) for e in errors]
        return Rejection(self.index, call_id, errors, self.line, self.file)


@dataclass(slots=True)
class Chunk:
    """Consecutive records of one file, already put through :func:`check`, for sources
    that check records in bulk (the JSONL import): ``results[i]`` is record number
    ``first + i``, read from line ``lines[i]``. No Item is built per record: only one the
    core must reject (:meth:`item`)."""

    file: str | None
    first: int
    lines: Sequence[int]
    results: list[Cdr | Rejection]
    clean: bool  # no Rejection among the results: the core can take them in bulk

    def item(self, i: int) -> Item:
        return Item(self.first + i, None, self.lines[i], file=self.file)


def _rename(error: str, names: Mapping[str, str]) -> str:
    name, sep, message = error.partition(": ")
    if not sep or name not in names:
        return error
    return f"{names[name]}: {'missing' if message == 'is required' else message}"


def check(item: Item, bounds: TimeBounds) -> Cdr | Rejection:
    """Everything about one item that needs no database: its source's findings and the
    canonical validation (times within ``bounds``), merged into one rejection, or the
    validated Cdr."""
    if item.error is not None:
        return item.reject([item.error])
    try:
        cdr = validate(item.raw, bounds)
    except RecordErrors as exc:
        # The source's own findings first; validation's for the same field would only
        # repeat them in canonical terms.
        already = {e.partition(": ")[0] for e in item.errors}
        names = item.names or {}
        fresh = [
            e for e in exc.errors if names.get(field := e.partition(": ")[0], field) not in already
        ]
        return item.reject([*item.errors, *fresh], exc.call_id)
    if item.errors:
        return item.reject(list(item.errors), cdr.call_id)
    return cdr


class Ingestor:
    """Validates and stores CDRs for any source, in batches of ``batch_size``.

    With ``background`` (for a database that works in its own process: see
    :attr:`Database.writes_in_server`), each batch is stored by a helper thread while the
    caller's thread checks the next, so checking and the database's work overlap; what
    is stored and the summary, in its order, are the same (see ``_Writer``). Otherwise
    everything runs in the caller's thread: on SQLite a helper thread is slower, its
    driver waiting for the GIL at every row (docs/performance.md#import-writes).

    ``clock`` gives the stored rows' ``ingested_at`` and, with ``limits``, the bounds of
    the CDR times :meth:`ingest` accepts.

    Given a ``source`` name, :meth:`ingest`, :meth:`ingest_checked` and
    :meth:`ingest_chunks` count its records in ``source_counts`` (``cdrs sources``),
    each batch's in the transaction that stores it; records rejected before storing are
    counted with the next batch, or in a transaction of their own at the end.
    """

    def __init__(
        self,
        apps: AppStore,
        writer: CdrWriter,
        *,
        batch_size: int = BATCH_SIZE,
        clock: Callable[[], float] = time.time,
        background: bool = False,
        limits: TimeLimits = TimeLimits(),  # noqa: B008 - frozen, so shared safely
    ) -> None:
        self._apps = apps
        self._cdrs = writer
        self._limits = limits
        self._batch_size = batch_size
        self._clock = clock
        self._background = background
        self._app_ids: dict[str, int | None] = {}
        # Why an appkey with no id above is refused: unknown, or its app is disabled.
        self._refusals: dict[str, str] = {}

    def ingest(
        self,
        items: Iterable[Item],
        summary: Summary | None = None,
        bounds: TimeBounds | None = None,
        *,
        source: str | None = None,
    ) -> Summary:
        """Validate and store ``items``, adding what happened to ``summary`` (or a new one).
        Their times must be within ``bounds`` (default: the ingestor's limits around now)."""
        if bounds is None:
            bounds = self._limits.bounds(self._clock())
        checked = ((item, check(item, bounds)) for item in items)
        return self.ingest_checked(checked, summary, source=source)

    def ingest_checked(
        self,
        checked: Iterable[tuple[Item, Cdr | Rejection]],
        summary: Summary | None = None,
        *,
        source: str | None = None,
    ) -> Summary:
        """Store items already put through :func:`check`."""
        summary = summary if summary is not None else Summary()
        # Two parallel lists, the second already in CdrWriter.store's shape: this loop runs
        # once per record, so it builds no per-record tuple it does not need.
        items: list[Item] = []
        pairs: list[tuple[int, Cdr]] = []
        size = self._batch_size
        with self._writer(summary, source) as writer:
            for item, result in checked:
                app_id = self._admit(result, lambda: item, writer.reject)  # noqa: B023
                if app_id is None:
                    continue
                items.append(item)
                pairs.append((app_id, result))  # type: ignore[arg-type]
                if len(pairs) >= size:
                    writer.store(pairs, items.__getitem__)
                    items, pairs = [], []
            if pairs:
                writer.store(pairs, items.__getitem__)
        return summary

    def ingest_chunks(
        self, chunks: Iterable[Chunk], summary: Summary | None = None, *, source: str | None = None
    ) -> Summary:
        """Store :class:`Chunk` s of checked records: what :meth:`ingest_checked` does, with
        the per-record work of the common case (every record valid, of one known app)
        done a chunk at a time in C. A batch ends at the first chunk boundary at or past
        ``batch_size`` records."""
        summary = summary if summary is not None else Summary()
        pairs: list[tuple[int, Cdr]] = []
        # Where the batch's records came from: (position in the batch of the first record
        # a chunk gave it, the chunk, the indexes in the chunk of the records it gave).
        origins: list[tuple[int, Chunk, Sequence[int]]] = []
        size = self._batch_size
        with self._writer(summary, source) as writer:
            for chunk in chunks:
                results = chunk.results
                app_id = self._one_app(results) if chunk.clean else None
                start = len(pairs)
                if app_id is not None:
                    pairs += zip(repeat(app_id), results)  # type: ignore[arg-type]
                    taken: Sequence[int] = range(len(results))
                else:
                    taken = self._take(chunk, pairs, writer.reject)
                origins.append((start, chunk, taken))
                if len(pairs) >= size:
                    writer.store(pairs, _locator(origins))
                    pairs, origins = [], []
            if pairs:
                writer.store(pairs, _locator(origins))
        return summary

    def ingest_together(
        self, items: list[Item], results: list[Cdr | Rejection], progress: ProgressOf
    ) -> Summary:
        """Store items already put through :func:`check` (``results[i]`` is
        ``items[i]``'s) in ONE transaction with what ``progress`` gives (a follower's file
        position, rejects and counts: ``storage/spool.py``). ``progress(rejected,
        conflict)``: the rejections found before storing, and the Rejection of the
        ``i``-th record sent to storage should it be a conflict."""
        summary = Summary()
        clean = not any(isinstance(r, Rejection) for r in results)
        app_id = self._one_app(results) if clean and results else None
        kept: list[Item]
        pairs: list[tuple[int, Cdr]]
        if app_id is not None:  # the common case, as in ingest_chunks: no per-record work
            kept, pairs = items, list(zip(repeat(app_id), results))  # type: ignore[arg-type]
        else:
            kept, pairs = [], []
            for item, result in zip(items, results, strict=True):
                admitted = self._admit(result, lambda: item, summary.reject)  # noqa: B023
                if admitted is not None:
                    kept.append(item)
                    pairs.append((admitted, result))  # type: ignore[arg-type]
        note = progress(
            list(summary.rejected), lambda i: kept[i].reject([CONFLICT], pairs[i][1].call_id)
        )
        outcomes = self._cdrs.store(pairs, now=int(self._clock()), progress=note)
        _Writer(self._store_batch, summary, background=False)._record(
            pairs, kept.__getitem__, outcomes
        )
        return summary

    def _writer(self, summary: Summary, source: str | None) -> _Writer:
        return _Writer(self._store_batch, summary, background=self._background, source=source)

    def _one_app(self, cdrs: list[Any]) -> int | None:
        """The app id when all these Cdrs have one known appkey, else None."""
        appkeys = set(map(_APPKEY, cdrs))
        if len(appkeys) != 1:
            return None
        appkey = appkeys.pop()
        return self._app_ids[appkey] if appkey in self._app_ids else self._app_id(appkey)

    def _take(
        self, chunk: Chunk, pairs: list[tuple[int, Cdr]], reject: Callable[[Rejection], None]
    ) -> list[int]:
        """Record by record: reject what must be, add the rest to ``pairs``; returns the
        indexes in the chunk of the records added."""
        taken: list[int] = []
        for i, result in enumerate(chunk.results):
            app_id = self._admit(result, lambda: chunk.item(i), reject)  # noqa: B023
            if app_id is not None:
                taken.append(i)
                pairs.append((app_id, result))  # type: ignore[arg-type]
        return taken

    def _admit(
        self,
        result: Cdr | Rejection,
        item: Callable[[], Item],
        reject: Callable[[Rejection], None],
    ) -> int | None:
        """The app id of a checked record, or None once it is rejected (by the check, or
        for an unknown appkey: ``item()`` is its Item, asked for only then)."""
        if isinstance(result, Rejection):
            reject(result)
            return None
        appkey = result.appkey
        app_id = self._app_ids[appkey] if appkey in self._app_ids else self._app_id(appkey)
        if app_id is None:
            reject(item().reject([self._refusals[appkey]], result.call_id))
        return app_id

    def _app_id(self, appkey: str) -> int | None:
        """The id of the app records with ``appkey`` go to; None (with the reason in
        ``_refusals``) if they are refused. Read once per Ingestor: per request on the
        API, per run for an import."""
        if appkey not in self._app_ids:
            app = self._apps.get(appkey)
            if app is not None and not app.disabled:
                self._app_ids[appkey] = app.id
            else:
                self._app_ids[appkey] = None
                self._refusals[appkey] = (
                    f"appkey: unknown app {appkey!r}"
                    if app is None
                    else f"appkey: app {appkey!r} is disabled; its CDRs are refused until "
                    f"`voicecdr apps enable {appkey}`"
                )
        return self._app_ids[appkey]

    def _store_batch(
        self, pairs: list[tuple[int, Cdr]], arrivals: Arrivals | None = None
    ) -> list[Outcome]:
        return self._cdrs.store(pairs, now=int(self._clock()), progress=arrivals)


# Rejections held back while a batch before them is being stored, at most: past this the
# checking waits for that batch (a file of nothing but bad lines stays in constant memory).
_HELD_REJECTIONS = 10_000


@dataclass(slots=True)
class _Pending:
    """The batch a helper thread is storing, and the rejections found after it."""

    outcomes: Future[list[Outcome]]
    pairs: list[tuple[int, Cdr]]
    item_at: _ItemAt
    after: list[Rejection] = field(default_factory=list)


class _Writer:
    """Stores an Ingestor's batches and puts their outcomes in the summary.

    In the ``background``, a helper thread stores one batch at a time: ``store`` hands a
    batch over and returns once the batch before it is done, so batches are stored one
    after another in input order, as without the thread. (Two at once would let a later
    batch store a call that repeats in an earlier one first, and reject the earlier
    record instead of the later.) A rejection found while a batch is in flight is held
    back until that batch's outcomes are recorded, so the summary and the rejects file
    list everything in input order too. An error storing a batch is raised by the next
    call that waits for it.

    With a ``source``, every batch carries its :class:`Arrivals`: the rejections seen
    since the batch before, counted in its transaction; those after the last batch get
    a transaction of their own on a clean exit. So every count is in a committed
    transaction, and a run that dies has counted exactly what it committed.
    """

    def __init__(
        self,
        store_batch: Callable[[list[tuple[int, Cdr]], Arrivals | None], list[Outcome]],
        summary: Summary,
        *,
        background: bool,
        source: str | None = None,
    ) -> None:
        self._store_batch = store_batch
        self._summary = summary
        self._pool = ThreadPoolExecutor(1, "voicecdr-store") if background else None
        self._pending: _Pending | None = None
        self._source = source
        self._uncounted = 0  # rejections not yet counted in any batch's transaction

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                self._settle()
                if self._uncounted and self._source is not None:
                    self._store_batch([], self._arrivals())
        finally:
            if self._pool is not None:
                self._pool.shutdown()  # waits for a batch still being stored

    def reject(self, rejection: Rejection) -> None:
        self._uncounted += 1
        if self._pending is None:
            self._summary.reject(rejection)
            return
        self._pending.after.append(rejection)
        if len(self._pending.after) >= _HELD_REJECTIONS:
            self._settle()

    def store(self, pairs: list[tuple[int, Cdr]], item_at: _ItemAt) -> None:
        """Store one batch; ``item_at(i)`` is the Item of ``pairs[i]``, asked for only to
        reject it."""
        arrivals = self._arrivals()
        if self._pool is None:
            self._record(pairs, item_at, self._store_batch(pairs, arrivals))
            return
        self._settle()
        outcomes = self._pool.submit(self._store_batch, pairs, arrivals)
        self._pending = _Pending(outcomes, pairs, item_at)

    def _arrivals(self) -> Arrivals | None:
        """What the next transaction counts: its batch, and the rejections before it."""
        if self._source is None:
            return None
        rejected, self._uncounted = self._uncounted, 0
        return Arrivals(self._source, rejected)

    def _settle(self) -> None:
        """Wait for the batch in flight, record its outcomes, then the rejections held
        back after it."""
        batch, self._pending = self._pending, None
        if batch is not None:
            self._record(batch.pairs, batch.item_at, batch.outcomes.result())
            for rejection in batch.after:
                self._summary.reject(rejection)

    def _record(
        self, pairs: list[tuple[int, Cdr]], item_at: _ItemAt, outcomes: list[Outcome]
    ) -> None:
        summary = self._summary
        if outcomes.count(Outcome.ACCEPTED) == len(outcomes):  # the common case, in C
            summary.accepted += len(outcomes)
            return
        for i, ((_, cdr), outcome) in enumerate(zip(pairs, outcomes, strict=True)):
            if outcome is Outcome.ACCEPTED:
                summary.accepted += 1
            elif outcome is Outcome.DUPLICATE:
                summary.duplicates += 1
            else:
                summary.reject(item_at(i).reject([CONFLICT], cdr.call_id))


_ItemAt = Callable[[int], Item]
_APPKEY = itemgetter(1)  # a Cdr's appkey


def _locator(origins: list[tuple[int, Chunk, Sequence[int]]]) -> _ItemAt:
    """``item_at`` for a batch gathered from chunks (see ``Ingestor.ingest_chunks``)."""
    starts = [start for start, _, _ in origins]

    def item_at(i: int) -> Item:
        start, chunk, taken = origins[bisect_right(starts, i) - 1]
        return chunk.item(taken[i - start])

    return item_at
