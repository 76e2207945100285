"""The records of one Asterisk call merged into one Item, in a window of lines.

Asterisk writes a call's records (a transfer, a fork, each ``sequence``) close together,
but not always one after another: other calls' records can come between. Records are
grouped by call id (linkedid, else uniqueid) while they keep coming: a call is complete
once :data:`WINDOW` lines have passed without a record of it, so memory stays bounded
however long the file. A record of a call that arrives later (a straggler) makes a
second record with the same call id: stored as a duplicate or rejected as a conflict,
never as a second call. docs/asterisk.md#6-one-call-several-records has the rules.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .asterisk import AsteriskOptions, BadLine, Call, Leg, all_names, call_item, parse_line
from .core import BOM, Item

WINDOW = 1000  # lines a call stays open after its last record


def _ignore(_n: int) -> None:
    return None


@dataclass(slots=True)
class _Open:
    call: Call | None  # None while only bad lines of it were read
    first: int  # the line of its first record
    last: int  # the line of its latest record
    lines: list[int] = field(default_factory=list)  # the file lines of its records
    seen: set[bytes] = field(default_factory=set)  # its records' digests
    repeats: list[int] = field(default_factory=list)  # lines that repeat a record
    broken: list[int] = field(default_factory=list)  # lines of its records rejected


class CallMerger:
    """Turns the lines of one file, in order, into one Item per call, one per bad line,
    and one per line that repeats a record already read (a duplicate once stored)."""

    def __init__(
        self,
        options: AsteriskOptions,
        file: str | None,
        window: int = WINDOW,
        on_item: Callable[[Item, list[int]], None] | None = None,
    ) -> None:
        self._options = options
        # Told each Item yielded and the file lines it comes from (a follower's position).
        self._on_item = on_item
        self._names = all_names(options)
        self._file = file
        self._window = window
        self._open: OrderedDict[str, _Open] = OrderedDict()
        self._index = 0

    def add(self, parsed: Leg | BadLine, line: int) -> Iterator[Item]:
        """Take the line ``line`` parsed; yields the Items of what is now complete."""
        call_id = parsed.call_id
        group = self._open.get(call_id) if call_id is not None else None
        if group is None and call_id is not None:
            group = self._open[call_id] = _Open(None, line, line)
        elif group is not None:
            self._open.move_to_end(call_id)  # type: ignore[arg-type]
            group.last = line
        if isinstance(parsed, BadLine):
            if group is not None:
                group.broken.append(line)
            bad = Item(0, None, line, "; ".join(parsed.reasons), self._file)
            yield self._next(bad, [line])
        else:
            assert group is not None
            if parsed.digest in group.seen:
                group.repeats.append(line)
            else:
                group.seen.add(parsed.digest)
                group.lines.append(line)
                if group.call is None:
                    group.call = Call.of(parsed)
                else:
                    group.call.add(parsed)
        yield from self._flush(line - self._window)

    def finish(self) -> Iterator[Item]:
        yield from self._flush(None)

    def held_from(self) -> int | None:
        """The first line of the earliest call still held (not yielded yet), if any."""
        return min((g.first for g in self._open.values()), default=None)

    def _flush(self, before: int | None) -> Iterator[Item]:
        while self._open:
            call_id, group = next(iter(self._open.items()))
            if before is not None and group.last >= before:
                return
            del self._open[call_id]
            yield from self._items(call_id, group)

    def _items(self, call_id: str, group: _Open) -> Iterator[Item]:
        if group.call is None:
            return  # only bad lines: each is rejected already
        # Every line of the call, for a follower (not worked out for an import).
        lines = sorted([*group.lines, *group.repeats, *group.broken]) if self._on_item else []
        if group.broken:
            good = sorted([*group.lines, *group.repeats])
            reason = (
                f"call_id: call {call_id!r} (lines {', '.join(map(str, good))}) "
                f"not stored: its record on line {', '.join(map(str, group.broken))} was "
                "rejected; fix it and import the file again"
            )
            yield self._next(Item(0, None, group.lines[0], reason, self._file), lines)
            return
        item = call_item(
            group.call, self._options, 0, line=group.lines[0], file=self._file, names=self._names
        )
        yield self._next(item, lines)
        for line in group.repeats:  # the same record again: a duplicate once stored
            yield self._next(Item(0, item.raw, line, file=self._file, names=item.names), [line])

    def _next(self, item: Item, lines: list[int]) -> Item:
        item.index = self._index
        self._index += 1
        if self._on_item is not None:
            self._on_item(item, lines)
        return item


def asterisk_items(
    path: Path, options: AsteriskOptions, advance: Callable[[int], None] = _ignore
) -> Iterator[Item]:
    """One Item per call of a cdr_csv file (its records merged), one per bad line."""
    merger = CallMerger(options, str(path))
    with path.open("rb") as handle:
        for line_no, data in enumerate(handle, start=1):
            advance(len(data))
            if line_no == 1:
                data = data.removeprefix(BOM)
            if data.strip():
                yield from merger.add(parse_line(data, options), line_no)
    yield from merger.finish()
