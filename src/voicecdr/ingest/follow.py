"""Readers from a byte offset, one per format ``voicecdr watch`` follows.

A reader reads a file from a :class:`Position` and yields :data:`Piece` s: each complete
record as an Item with the position just after it and the bytes to keep if it is
rejected. A line that has no newline yet is not a record: it is read once complete.
Two kinds of format:

- appended lines (JSONL, CSV, and any format with a per-line parser: :func:`line_reader`):
  resumed at the byte offset after the last complete line consumed;
- one finished document per file (FreeSWITCH mod_json_cdr, and any format read a file at
  a time: :func:`whole_file`): resumed after the records already consumed.

A format plugs in by one :func:`register` call, e.g.
``register("jsonl", Followed(line_reader(parse_jsonl), replay_line(parse_jsonl)))``;
a format whose records span lines gives them the position of a safe restart point
(``asterisk_follow``).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

import orjson

from ..models import Cdr
from .core import BOM, Item, Rejection, check
from .fastjson import decode_line, full_check
from .files import _csv_item
from .freeswitch import UndecodableCdr, decode_document, to_item
from .timebounds import TimeBounds


class Position(NamedTuple):  # one per line read: a tuple is the cheapest to build
    offset: int  # bytes consumed (one-document files: the size once read to the end)
    line: int  # lines consumed (one-document files: records consumed)


# A record (None: nothing to store, e.g. a blank line or a CSV header), the position
# after it, and its bytes as kept for a replay if it is rejected.
Piece = tuple[Item | None, Position, bytes]


class Reader(Protocol):
    """(file opened for reading, where to start, the file's name for messages, whether
    its writer is done for now: idle, or ``--once``) -> its Pieces. Pieces with the same
    position are stored in one batch (records held over several lines, as Asterisk's)."""

    def __call__(
        self, handle: BinaryIO, start: Position, name: str, ended: bool = False, /
    ) -> Iterator[Piece]: ...


# A line (without its newline), its index in the batch, its line number, file -> its Item.
LineParser = Callable[[bytes, int, int, str], Item]
# A record's Item and bytes (as its Piece gives them), the times allowed -> checked.
Checker = Callable[[Item, bytes, TimeBounds], Cdr | Rejection]


def check_item(item: Item, _raw: bytes, bounds: TimeBounds) -> Cdr | Rejection:
    """The usual check: the Item's parsed value through canonical validation."""
    return check(item, bounds)


@dataclass(frozen=True, slots=True)
class Followed:
    """How ``watch`` reads one format: ``read`` from a position, and ``replay`` a kept
    reject's bytes (with its file name) into an Item again. ``whole``: one finished
    document per file, read once it has settled, instead of appended lines. ``check``:
    how a record read is checked (a format may check its bytes directly). ``reads``:
    which files of a followed directory it reads (all by default)."""

    read: Reader
    replay: Callable[[bytes, str], Item]
    whole: bool = False
    suffixes: tuple[str, ...] = ()
    check: Checker = check_item
    reads: Callable[[Path], bool] = lambda _path: True


FOLLOWED: dict[str, Followed] = {}


def register(name: str, followed: Followed) -> None:
    """Make format ``name`` followable by ``voicecdr watch --format name``."""
    FOLLOWED[name] = followed


def format_of(path: Path) -> str | None:
    """The registered format whose suffix ``path`` has, if any."""
    suffix = path.suffix.lower()
    for name, followed in FOLLOWED.items():
        if suffix in followed.suffixes:
            return name
    return None


def complete_lines(handle: BinaryIO, start: Position) -> Iterator[tuple[bytes, Position]]:
    """Each complete line (with its newline) from ``start``, and the position after it;
    a byte order mark at the file's start is skipped."""
    handle.seek(start.offset)
    offset, line = start.offset, start.line
    if offset == 0:
        head = handle.read(len(BOM))
        if head == BOM:
            offset = len(BOM)
        else:
            handle.seek(0)
    for text in handle:
        if not text.endswith(b"\n"):
            return  # still being written: read again once complete
        offset += len(text)
        line += 1
        yield text, Position(offset, line)


def line_reader(parse: LineParser) -> Reader:
    """A reader of appended lines, each parsed by ``parse``; blank lines are skipped."""

    def read(handle: BinaryIO, start: Position, name: str, _ended: bool = False) -> Iterator[Piece]:
        index = 0
        for text, after in complete_lines(handle, start):
            body = text.rstrip(b"\r\n")
            if not body.strip():
                yield None, after, b""
                continue
            yield parse(body, index, after.line, name), after, body
            index += 1

    return read


def replay_line(parse: LineParser) -> Callable[[bytes, str], Item]:
    """Replays of a line format: the kept line parsed again."""
    return lambda raw, name: parse(raw, 0, 1, name)


def whole_file(items: Callable[[bytes, str], Iterator[Item]]) -> Reader:
    """A reader of one-document files: ``items(data, name)`` are its records, resumed
    after the ``start.line`` already consumed; the last one's position has the file's
    size as offset, which marks the file read."""

    def read(handle: BinaryIO, start: Position, name: str, _ended: bool = False) -> Iterator[Piece]:
        handle.seek(0)
        data = handle.read()
        records = list(items(data, name))
        if not records:
            yield None, Position(len(data), 0), b""
            return
        for n, item in enumerate(islice(records, start.line, None), start=start.line + 1):
            item.index = n - start.line - 1
            yield item, Position(len(data) if n == len(records) else 0, n), data

    return read


def parse_jsonl(line: bytes, index: int, line_no: int, name: str) -> Item:
    """One JSONL line: its JSON value, or a rejected Item if it is not JSON."""
    try:
        return Item(index, orjson.loads(line), line_no, file=name)
    except orjson.JSONDecodeError as exc:
        return Item(index, None, line_no, f"record: not valid JSON ({exc})", name)


def _jsonl_unparsed(line: bytes, index: int, line_no: int, name: str) -> Item:
    return Item(index, None, line_no, file=name)


def _jsonl_check(item: Item, line: bytes, bounds: TimeBounds) -> Cdr | Rejection:
    """``cdrs import``'s compiled path for JSONL (``fastjson``), the full one when unsure."""
    cdr = decode_line(line, bounds)
    if cdr is not None:
        return cdr
    return full_check(item.index, item.line or 0, line, item.file or "", bounds)


def _csv_read(
    handle: BinaryIO, start: Position, name: str, _ended: bool = False
) -> Iterator[Piece]:
    """CSV with a header line: the header is read again from the file's start when
    resuming; a record is consumed once its last line is complete."""
    lines = complete_lines(handle, Position(0, 0))
    first = next(lines, None)
    if first is None:
        return
    header_bytes, after_header = first
    header = [h.strip() for h in next(csv.reader([header_bytes.decode("utf-8", "replace")]))]
    if start.offset < after_header.offset:
        yield None, after_header, b""
        start = after_header
    pending: list[bytes] = []
    at = [start]
    ended: list[bool] = []

    def texts() -> Iterator[str]:
        for text, after in complete_lines(handle, start):
            pending.append(text)
            at[0] = after
            yield text.decode("utf-8", "replace")
        ended.append(True)

    index = 0
    rows = csv.reader(texts())
    while True:
        try:
            row = next(rows)
        except (StopIteration, csv.Error):
            return
        if ended:
            return  # cut short by the end of what is written: a quoted value goes on
        body = b"".join(pending)
        pending.clear()
        if not any(cell.strip() for cell in row):
            yield None, at[0], b""
            continue
        yield _csv_item(index, header, row, at[0].line, name), at[0], header_bytes + body
        index += 1


def _csv_replay(raw: bytes, name: str) -> Item:
    rows = list(csv.reader(raw.decode("utf-8", "replace").splitlines(keepends=True)))
    if len(rows) < 2:
        return Item(0, None, None, "record: a kept CSV record needs its header and row", name)
    return _csv_item(0, [h.strip() for h in rows[0]], rows[1], 1, name)


def _freeswitch_items(data: bytes, name: str) -> Iterator[Item]:
    try:
        doc = decode_document(data)
    except UndecodableCdr as exc:
        yield Item(0, None, 1, f"record: {exc}", name)
        return
    yield to_item(doc, 0, line=1, file=name)


def _freeswitch_replay(raw: bytes, name: str) -> Item:
    return next(_freeswitch_items(raw, name))


# JSONL lines are read unparsed: _jsonl_check decodes them as `cdrs import` does.
register(
    "jsonl",
    Followed(
        line_reader(_jsonl_unparsed),
        replay_line(parse_jsonl),
        False,
        (".jsonl", ".ndjson"),
        _jsonl_check,
    ),
)
register("csv", Followed(_csv_read, _csv_replay, False, (".csv",)))
register(
    "freeswitch", Followed(whole_file(_freeswitch_items), _freeswitch_replay, True, (".json",))
)

from . import asterisk_follow  # noqa: E402,F401 - registers "asterisk" (it imports this module)
