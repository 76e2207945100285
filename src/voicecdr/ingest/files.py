"""File sources for ``voicecdr cdrs import``: JSONL, CSV and FreeSWITCH JSON CDRs.

Every reader streams: it holds one record (one line, one CSV row, one CDR file) at a
time, so a file of any size imports in constant memory. Each reports the bytes it has
consumed to ``advance`` (for the progress bar) and tags every Item with its file and line.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from ..errors import ConfigError
from .asterisk import looks_like_cdr_csv
from .core import BOM, Item
from .freeswitch import UndecodableCdr, decode_document, to_item

Advance = Callable[[int], None]
FORMATS = ("jsonl", "csv", "freeswitch", "kamailio-acc", "kamailio-cdrs", "asterisk")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".json": "freeswitch"}
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}
_NULLABLE = {"start_time", "end_time", "record_url"}


def _ignore(_n: int) -> None:
    return None


def detect_format(path: Path) -> str:
    """The format of an import path: a directory holds FreeSWITCH CDRs; files go by suffix."""
    if path.is_dir():
        return "freeswitch"
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt == "csv" and looks_like_cdr_csv(path):
        raise ConfigError(
            f"{path}: has no header of canonical fields but reads as Asterisk's cdr_csv; "
            "use --format asterisk (see docs/asterisk.md)"
        )
    if fmt is None:
        raise ConfigError(
            f"{path}: cannot tell the format from the name; use --format "
            f"({', '.join(FORMATS)}) or name it .jsonl, .csv or .json"
        )
    return fmt


def items(path: Path, fmt: str, advance: Advance = _ignore) -> Iterator[Item]:
    """The Items of one import path in format ``fmt`` (see :data:`FORMATS`; Asterisk's
    need their options: ``asterisk_calls.asterisk_items``)."""
    if fmt == "jsonl":
        return jsonl_items(path, advance)
    if fmt == "csv":
        return csv_items(path, advance)
    return freeswitch_items(path, advance)


def input_bytes(path: Path, fmt: str) -> int:
    """Total size of what :func:`items` will read: the progress bar's length."""
    if path.is_dir():
        return sum(p.stat().st_size for p in _cdr_files(path))
    return path.stat().st_size


def skip_bom(handle: BinaryIO) -> int:
    """Read past a byte order mark at the start of ``handle``; returns the bytes skipped."""
    if handle.read(len(BOM)) == BOM:
        return len(BOM)
    handle.seek(0)
    return 0


def jsonl_items(path: Path, advance: Advance = _ignore) -> Iterator[Item]:
    """One Item per non-blank line; a line that is not JSON becomes a rejected Item."""
    index = 0
    with path.open("rb") as handle:
        advance(skip_bom(handle))
        for line_no, line in enumerate(handle, start=1):
            advance(len(line))
            if not line.strip():
                continue
            try:
                raw = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield Item(index, None, line_no, f"record: not valid JSON ({exc})", str(path))
            else:
                yield Item(index, raw, line_no, file=str(path))
            index += 1


def csv_items(path: Path, advance: Advance = _ignore) -> Iterator[Item]:
    """One Item per CSV row; the header names canonical fields (any order, any subset).

    Empty cells are absent values; ``second`` must be a whole number and ``connected`` one
    of true/false/1/0/yes/no.
    """
    name = str(path)
    with path.open("rb") as handle:
        reader = csv.reader(_decoded_lines(handle, advance, name))
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            yield Item(0, None, 1, f"record: {exc.reason}", name)
            return
        index = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
                yield Item(index, None, reader.line_num, f"record: not valid CSV ({reason})", name)
                return  # the reader cannot resynchronise after a broken quote
            if not any(cell.strip() for cell in row):
                continue
            yield _csv_item(index, header, row, reader.line_num, name)
            index += 1


def _decoded_lines(handle: Iterable[bytes], advance: Advance, name: str) -> Iterator[str]:
    for raw in handle:
        advance(len(raw))
        yield raw.decode("utf-8-sig")


def _csv_item(index: int, header: list[str], row: list[str], line: int, name: str) -> Item:
    if len(row) != len(header):
        error = f"record: has {len(row)} cells, the header has {len(header)}"
        return Item(index, None, line, error, name)
    record: dict[str, object] = {}
    errors: list[str] = []
    for column, cell in zip(header, row, strict=True):
        value = cell.strip()
        if value == "":
            record[column] = None
        elif column == "second":
            record[column] = int(value) if value.isascii() and value.isdigit() else None
            if record[column] is None:
                errors.append(f"second: must be a whole number, not {value!r}")
        elif column == "connected":
            lowered = value.lower()
            record[column] = True if lowered in _TRUE else False if lowered in _FALSE else None
            if record[column] is None:
                errors.append(f"connected: must be true or false, not {value!r}")
        else:
            record[column] = value
    for column in _NULLABLE:
        record.setdefault(column, None)
    return Item(index, record, line, file=name, errors=tuple(errors))


def freeswitch_items(path: Path, advance: Advance = _ignore) -> Iterator[Item]:
    """One Item per mod_json_cdr file: ``path`` itself, or every ``*.json`` under it (as in
    its log and error-log directories, rotated subdirectories included), in name order."""
    files = _cdr_files(path) if path.is_dir() else iter([path])
    for index, file in enumerate(files):
        try:
            data = file.read_bytes()
        except OSError as exc:
            yield Item(index, None, None, f"file: cannot read ({exc.strerror})", str(file))
            continue
        advance(len(data))
        try:
            doc = decode_document(data)
        except UndecodableCdr as exc:
            yield Item(index, None, 1, f"record: {exc}", str(file))
            continue
        yield to_item(doc, index, line=1, file=str(file))


def _cdr_files(root: Path) -> Iterator[Path]:
    for directory, subdirs, names in os.walk(root):
        subdirs.sort()
        for name in sorted(names):
            if name.endswith(".json"):
                yield Path(directory, name)
