"""``voicecdr cdrs replay``: the records ``watch`` kept as rejects, stored again once the
operator has fixed their cause (an app created or enabled, a field corrected in the kept
record). A record now stored leaves the rejects, and its source's hour counts it as
stored (or duplicate) instead of rejected, in the same transaction; one still refused
stays, with its new reason."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from ..storage import AppStore, CdrWriter, Database, Progress, Reject, SpoolStore
from .core import Ingestor, Rejection, Summary, check
from .follow import FOLLOWED
from .timebounds import TimeLimits

REPLAY_BATCH = 1000


def replay(
    db: Database,
    *,
    source: str | None = None,
    ids: Sequence[int] = (),
    limits: TimeLimits = TimeLimits(),  # noqa: B008 - frozen, so shared safely
    now: float | None = None,
) -> Summary:
    """Replay the kept rejects (of ``source``, or these ``ids``; all if neither)."""
    spool = SpoolStore(db)
    ingestor = Ingestor(AppStore(db), CdrWriter(db))
    total = Summary()
    last = 0
    while True:
        kept = spool.rejects(source=source, ids=ids, after=last, limit=REPLAY_BATCH)
        if not kept:
            return total
        last = kept[-1].id or last
        at = int(time.time() if now is None else now)
        summary = _replay_batch(ingestor, kept, at, limits)
        total.accepted += summary.accepted
        total.duplicates += summary.duplicates
        total.rejected_total += summary.rejected_total


def _replay_batch(ingestor: Ingestor, kept: list[Reject], at: int, limits: TimeLimits) -> Summary:
    items = []
    for i, r in enumerate(kept):
        item = FOLLOWED[r.format].replay(r.raw, r.file)
        item.index, item.line = i, r.line
        items.append(item)

    def again(r: Rejection) -> Reject:
        return replace(kept[r.index], reason="; ".join(r.errors))

    def progress(rejected: list[Rejection], conflict: Callable[[int], Rejection]) -> Progress:
        failed = {r.index for r in rejected}
        return Progress(
            "",
            at,
            0,
            [again(r) for r in rejected],
            lambda i: again(conflict(i)),
            replays=[r for i, r in enumerate(kept) if i not in failed],
        )

    bounds = limits.bounds(at)
    return ingestor.ingest_together(items, [check(i, bounds) for i in items], progress)
