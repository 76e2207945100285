"""Fewer cyclic-GC passes during bulk work (an import, draining the rater's backlog).

Bulk work holds batches of thousands of records, which the default collector walks again
every 700 allocations though they make no cycles (docs/performance.md#cyclic-gc-during-bulk-work).
Collections still run, every 100,000 allocations, so cycles are still freed.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_active = 0
_saved: tuple[int, ...] = ()


@contextmanager
def rare_collections() -> Iterator[None]:
    """Raise the collector's thresholds while inside; the first to enter saves them and
    the last to leave restores them, so overlapping uses (threads) cannot leave them
    raised."""
    global _active, _saved
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(100_000, 50, 1000)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                gc.set_threshold(*_saved)


def freeze_startup() -> None:
    """Exempt everything a server process has made so far from the cyclic GC.

    Those objects live as long as the process, yet every full collection walked them all
    while no request was answered (docs/performance.md#frozen-startup-objects); collected
    once and frozen (``gc.freeze``), they are skipped by later collections.
    """
    gc.collect()
    gc.freeze()
