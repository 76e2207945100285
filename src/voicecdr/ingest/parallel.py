"""Parallel checking for big JSONL imports: worker processes parse and validate, the
calling process only stores.

Checking a record costs about as much CPU as storing it, so a spare core lets a large
import run near the database's own bulk rate (docs/performance.md#import-checking). Lines
go to the workers in chunks, and results come back in file order with at most two chunks
per worker in flight, so memory stays bounded. Records travel as tuples (a Cdr is a
NamedTuple), the cheapest thing to pickle.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from pathlib import Path

from .core import Chunk
from .fastjson import CHUNK_LINES, check_lines
from .files import skip_bom
from .timebounds import TimeBounds


def worker_count() -> int:
    """Workers for this machine: one core stays with the process that stores and one with
    the database (SQLite's writes, or a PostgreSQL server on the same host), so a
    two-core machine gets none: a worker there only competes for a core
    (docs/performance.md#checking-processes-for-big-imports)."""
    return max(0, min(4, (os.cpu_count() or 1) - 2))


def checked_chunks(
    path: Path, advance: Callable[[int], None], bounds: TimeBounds, workers: int
) -> Iterator[Chunk]:
    """The JSONL file's records in checked chunks, as ``fastjson.checked_chunks`` gives
    them, checked by ``workers`` processes, in file order."""
    name = str(path)
    # "spawn": a fresh interpreter, safe whatever threads or connections this one holds.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        in_flight: deque[Future[Chunk]] = deque()
        first = 0
        line_no = 1
        with path.open("rb") as handle:
            advance(skip_bom(handle))
            while lines := list(islice(handle, CHUNK_LINES)):
                advance(sum(map(len, lines)))
                in_flight.append(pool.submit(check_lines, name, first, line_no, lines, bounds))
                # The chunk's first record number is needed before it is checked: count
                # the lines that are not blank (in C).
                first += sum(map(bool, map(bytes.strip, lines)))
                line_no += len(lines)
                while len(in_flight) > 2 * workers:
                    yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
