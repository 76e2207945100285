"""Parallel checking for big JSONL imports: worker processes parse and validate, the
calling process only stores.

Parsing and validating a record costs about as much CPU as the database's insert of it,
so on a machine with a spare core a large import runs close to the database's own bulk
rate instead of half of it. Lines go to the workers in chunks, and results come back in
file order with at most two chunks per worker in flight, so memory stays bounded. Records
travel as tuples (a Cdr is a NamedTuple), the cheapest thing to pickle.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from ..models import Cdr
from .core import Item, Rejection
from .fastjson import checked_line

CHUNK_LINES = 4000
Checked = tuple[int, int, Cdr | Rejection]  # (index, line, result)


def worker_count() -> int:
    """Workers for this machine: one core stays with the process that stores and one with
    the database (SQLite's writes, or a PostgreSQL server on the same host); with fewer
    than four cores none are used, because a worker then only competes for a core (on a
    busy two-core machine the import was measured a third slower with one)."""
    return max(0, min(4, (os.cpu_count() or 1) - 2))


def checked_jsonl(
    path: Path, advance: Callable[[int], None], workers: int
) -> Iterator[tuple[Item, Cdr | Rejection]]:
    """The JSONL file's Items with their :func:`check` results, checked by ``workers``
    processes, in file order."""
    name = str(path)
    # "spawn": a fresh interpreter, safe whatever threads or connections this one holds.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        in_flight: deque[Future[list[Checked]]] = deque()
        index = 0
        for chunk in _chunks(path, advance):
            in_flight.append(pool.submit(_check_lines, name, index, chunk))
            index += len(chunk)
            while len(in_flight) > 2 * workers:
                yield from _items(name, in_flight.popleft().result())
        while in_flight:
            yield from _items(name, in_flight.popleft().result())


def _chunks(path: Path, advance: Callable[[int], None]) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            advance(len(line))
            if line.strip():
                chunk.append((line_no, line))
                if len(chunk) >= CHUNK_LINES:
                    yield chunk
                    chunk = []
    if chunk:
        yield chunk


def _items(name: str, results: list[Checked]) -> Iterator[tuple[Item, Cdr | Rejection]]:
    for index, line, result in results:
        yield Item(index, None, line, file=name), result


def _check_lines(name: str, first_index: int, chunk: list[tuple[int, bytes]]) -> list[Checked]:
    """In a worker: parse and check one chunk of lines, as jsonl_items and check do."""
    return [
        (index, line_no, checked_line(index, line_no, line, name))
        for index, (line_no, line) in enumerate(chunk, start=first_index)
    ]
