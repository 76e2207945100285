"""The ingest core every source plugs into: validate, resolve the app, store in batches.

A source yields ``(index, raw)`` pairs (``line`` too for files); the core answers with one
:class:`Summary` shape everywhere: ``{"accepted", "duplicates", "rejected": [...]}``.
A bad record never stops the good ones around it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..models import Cdr
from ..storage.store import Outcome, Store
from .canonical import RecordErrors, validate

BATCH_SIZE = 2000


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


def _rename(error: str, names: Mapping[str, str]) -> str:
    name, sep, message = error.partition(": ")
    if not sep or name not in names:
        return error
    return f"{names[name]}: {'missing' if message == 'is required' else message}"


def check(item: Item) -> Cdr | Rejection:
    """Everything about one item that needs no database: its source's findings and the
    canonical validation, merged into one rejection, or the validated Cdr."""
    if item.error is not None:
        return item.reject([item.error])
    try:
        cdr = validate(item.raw)
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

    Everything runs in the caller's thread. (Writing one batch in a helper thread while
    the next is validated was measured slower: SQLite's driver drops the GIL for every
    row it steps and then waits for the validating thread to hand it back.)
    """

    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = BATCH_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._batch_size = batch_size
        self._clock = clock
        self._app_ids: dict[str, int | None] = {}

    def ingest(self, items: Iterable[Item], summary: Summary | None = None) -> Summary:
        """Validate and store ``items``, adding what happened to ``summary`` (or a new one)."""
        return self.ingest_checked(((item, check(item)) for item in items), summary)

    def ingest_checked(
        self, checked: Iterable[tuple[Item, Cdr | Rejection]], summary: Summary | None = None
    ) -> Summary:
        """Store items already put through :func:`check` (e.g. by worker processes)."""
        summary = summary if summary is not None else Summary()
        # Two parallel lists, the second already in store_cdrs's shape: this loop runs
        # once per record, so it builds no per-record tuple it does not need.
        items: list[Item] = []
        pairs: list[tuple[int, Cdr]] = []
        app_ids = self._app_ids
        size = self._batch_size
        for item, result in checked:
            if isinstance(result, Rejection):
                summary.reject(result)
                continue
            appkey = result.appkey
            app_id = app_ids[appkey] if appkey in app_ids else self._app_id(appkey)
            if app_id is None:
                summary.reject(item.reject([f"appkey: unknown app {appkey!r}"], result.call_id))
                continue
            items.append(item)
            pairs.append((app_id, result))
            if len(pairs) >= size:
                self._flush(items, pairs, summary)
                items, pairs = [], []
        if pairs:
            self._flush(items, pairs, summary)
        return summary

    def _app_id(self, appkey: str) -> int | None:
        if appkey not in self._app_ids:
            app = self._store.get_app(appkey)
            self._app_ids[appkey] = app.id if app else None
        return self._app_ids[appkey]

    def _flush(self, items: list[Item], pairs: list[tuple[int, Cdr]], summary: Summary) -> None:
        outcomes = self._store.store_cdrs(pairs, now=int(self._clock()))
        if outcomes.count(Outcome.ACCEPTED) == len(outcomes):  # the common case, in C
            summary.accepted += len(outcomes)
            return
        for item, (_, cdr), outcome in zip(items, pairs, outcomes, strict=True):
            if outcome is Outcome.ACCEPTED:
                summary.accepted += 1
            elif outcome is Outcome.DUPLICATE:
                summary.duplicates += 1
            else:
                summary.reject(
                    item.reject(
                        ["call_id: conflict: already stored with different content"], cdr.call_id
                    )
                )
