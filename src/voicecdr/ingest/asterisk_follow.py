"""``voicecdr watch --format asterisk``: cdr_csv files followed, each call's records merged
by :class:`CallMerger` exactly as ``cdrs import`` merges them.

A call is held (not stored) until the merger gives it out: once :data:`WINDOW` lines have
passed without another record of it, or once its file is idle (``ended``: unchanged for
``SETTLE_SECONDS``, or ``--once``). The position stored with a batch is a *cut*: a line
before which every call is complete and given out, and after which no line of a stored
call lies. So a restart reads again from the cut only lines of calls that were never
stored: nothing read again is stored or counted twice, and nothing held is lost.

A kept reject's bytes are the options it was read with (one JSON line), then its call's
cdr_csv lines: ``cdrs replay`` merges them again as they were read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from .asterisk import AsteriskOptions, parse_line
from .asterisk_calls import WINDOW, CallMerger
from .core import Item
from .follow import Followed, Piece, Position, Reader, complete_lines, register

CUT_EVERY = 64  # lines read between looks for a cut (each look is O(calls held))
# In a followed directory: Master.csv and the names logrotate gives it, not compressed.
# The per-account files (accountlogs=yes) repeat Master.csv's records: not read.
_MASTER = re.compile(r"Master\.csv([.-][0-9]+)*")


def followed(options: AsteriskOptions, window: int = WINDOW) -> Followed:
    """How ``watch`` reads cdr_csv files with ``options`` (``window``: CallMerger's)."""
    return Followed(_reader(options, window), _replay, reads=is_master)


def is_master(path: Path) -> bool:
    """Whether ``path`` is a file ``watch`` reads in a followed cdr-csv directory."""
    return _MASTER.fullmatch(path.name) is not None


def _reader(options: AsteriskOptions, window: int) -> Reader:
    def read(handle: BinaryIO, start: Position, name: str, ended: bool = False) -> Iterator[Piece]:
        return _Read(options, name, start, window).pieces(handle, ended)

    return read


class _Read:
    """One read of a file from a cut: its calls given out a cut at a time."""

    def __init__(self, options: AsteriskOptions, name: str, start: Position, window: int) -> None:
        self._head = orjson.dumps(_options_dict(options))
        self._options = options
        self._at = start  # the last cut given out
        self._lines: dict[int, tuple[Position, bytes]] = {}  # line -> position after, bytes
        # Items given out by the merger, not yet by this read: item, first and last line,
        # every line it comes from.
        self._out: list[tuple[Item, int, int, list[int]]] = []
        self._merger = CallMerger(options, name, window, self._given)
        self._index = 0

    def _given(self, item: Item, lines: list[int]) -> None:
        self._out.append((item, lines[0], lines[-1], lines))

    def pieces(self, handle: BinaryIO, ended: bool) -> Iterator[Piece]:
        merger, options = self._merger, self._options
        last: Position | None = None
        for text, after in complete_lines(handle, self._at):
            body = text.rstrip(b"\r\n")
            self._lines[after.line] = (after, body)
            last = after
            if body.strip():
                for _ in merger.add(parse_line(body, options), after.line):
                    pass  # taken by _given
                if self._out and after.line % CUT_EVERY == 0:
                    yield from self._cut(after.line)
        if last is None:
            return
        if ended:
            for _ in merger.finish():
                pass
        yield from self._cut(last.line)

    def _cut(self, read_to: int) -> Iterator[Piece]:
        """The calls before the latest cut at or before line ``read_to``, each with the
        cut's position (a batch never ends between them)."""
        held = self._merger.held_from()
        cut = read_to if held is None else held - 1
        moved = True
        while moved:  # no stored call may have a line after the cut
            moved = False
            for _item, first, last, _lines in self._out:
                if first <= cut < last:
                    cut, moved = first - 1, True
        if cut <= self._at.line:
            return
        position = self._lines[cut][0]
        ready = [o for o in self._out if o[2] <= cut]
        self._out = [o for o in self._out if o[2] > cut]
        if not ready:
            yield None, position, b""  # blank lines only
        for item, _first, _last, lines in ready:
            item.index = self._index
            self._index += 1
            raw = b"\n".join([self._head, *(self._lines[n][1] for n in lines)])
            yield item, position, raw
        for n in range(self._at.line + 1, cut + 1):
            self._lines.pop(n, None)
        self._at = position


def _options_dict(options: AsteriskOptions) -> dict[str, object]:
    return {
        "timezone": options.timezone,
        "columns": dict(options.columns),
        "values": dict(options.values),
        "extra_column": options.lone_column,
    }


def _replay(raw: bytes, name: str) -> Item:
    """A kept reject read again: its call's lines merged with the options it was read with."""
    head, _, rest = raw.partition(b"\n")
    try:
        o = orjson.loads(head)
        options = AsteriskOptions(o["timezone"], o["columns"], o["values"], o["extra_column"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return Item(0, None, None, "record: not a kept cdr_csv record", name)
    merger = CallMerger(options, name)
    items: list[Item] = []
    for n, line in enumerate(rest.split(b"\n"), start=1):
        items += merger.add(parse_line(line, options), n)
    items += merger.finish()
    if not items:
        return Item(0, None, None, "record: no cdr_csv line kept", name)
    return next((i for i in items if i.error), items[0])


register("asterisk", followed(AsteriskOptions()))
