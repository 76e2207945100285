"""Fewer cyclic-GC passes during bulk work (an import, draining the rater's backlog).

Bulk work allocates several objects per record and holds a batch of thousands, so with the
default thresholds the collector runs every 700 allocations and walks the batch again and
again: measured at about a tenth of an import's CPU, and of ``Rater.drain()``'s time, for
records that make no cycles. Collections still run (every 100,000 allocations), so cycles
are still freed.
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

    Once its modules are imported a server process tracks ~90,000 objects, and every full
    collection walked them all: 35-85 ms in which no request was answered, the p99 of a
    busy server. They live as long as the process, so they are collected once and then
    frozen (``gc.freeze``, CPython's remedy for long-lived processes); later collections
    walk only what was made since.
    """
    gc.collect()
    gc.freeze()
