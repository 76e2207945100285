r"""Rows of a database table exported with a header row: CSV as ``psql \copy ... CSV
HEADER`` writes it, or tab-separated as ``mysql --batch`` does (backslash escapes, NULL
written ``NULL``). Streams: one row at a time, with the file line it ends on.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .files import Advance


def ignore(_n: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Row:
    """One exported row: where it is and its cells. A tuple, with the column positions
    shared by the rows of a file: rows wait in memory while their call is paired."""

    file: str
    line: int
    columns: Mapping[str, int]
    values: tuple[str, ...]

    def get(self, column: str) -> str | None:
        """The cell of ``column``; None when it is empty or the file has no such column."""
        at = self.columns.get(column)
        return None if at is None else self.values[at] or None


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that cannot be read at all (wrong number of cells, broken quoting)."""

    file: str
    line: int
    error: str


def rows(path: Path, required: Iterable[str], advance: Advance = ignore) -> Iterator[Row | BadRow]:
    """The rows of an export with a header row naming at least ``required``: CSV, or
    tab-separated when the header has tabs (``mysql --batch``)."""
    name = str(path)
    with path.open("rb") as handle:
        lines = _decoded(handle, advance)
        try:
            first = next(lines)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            yield BadRow(name, 1, f"record: {exc.reason}")
            return
        tabbed = "\t" in first
        header = [h.strip() for h in (_tsv(first) if tabbed else next(csv.reader([first])))]
        missing = [c for c in required if c not in header]
        twice = sorted({c for c in header if header.count(c) > 1})
        if missing or twice:
            problem = f"no column {', '.join(missing)}" if missing else f"{twice[0]} twice"
            yield BadRow(name, 1, f"header: {problem}; {_HEADER_HINT}")
            return
        columns = {column: at for at, column in enumerate(header)}
        yield from (_tsv_rows if tabbed else _csv_rows)(lines, columns, name)


def _decoded(handle: Iterable[bytes], advance: Advance) -> Iterator[str]:
    for raw in handle:
        advance(len(raw))
        yield raw.decode("utf-8-sig")


_HEADER_HINT = "export the table with a header row"


def _csv_rows(
    lines: Iterator[str], columns: Mapping[str, int], name: str
) -> Iterator[Row | BadRow]:
    reader = csv.reader(lines)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
            yield BadRow(name, reader.line_num + 1, f"record: not valid CSV ({reason})")
            return  # the reader cannot resynchronise after a broken quote
        row = _row(columns, cells, reader.line_num + 1, name)
        if row is not None:
            yield row


def _tsv_rows(
    lines: Iterator[str], columns: Mapping[str, int], name: str
) -> Iterator[Row | BadRow]:
    line = 1
    while True:
        try:
            text = next(lines)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            yield BadRow(name, line + 1, f"record: {exc.reason}")
            return
        line += 1
        row = _row(columns, _tsv(text), line, name)
        if row is not None:
            yield row


_TSV_ESCAPES = {"n": "\n", "t": "\t", "0": "\0", "\\": "\\", "r": "\r"}


def _tsv(text: str) -> list[str]:
    """The cells of one ``mysql --batch`` line: tab-separated, ``\\t``-style escapes,
    NULL written ``NULL`` (read as empty)."""
    cells = text.rstrip("\r\n").split("\t")
    out = []
    for cell in cells:
        if "\\" in cell:
            cell = re.sub(r"\\(.)", lambda m: _TSV_ESCAPES.get(m[1], m[1]), cell)
        out.append("" if cell == "NULL" else cell)
    return out


def _row(columns: Mapping[str, int], cells: list[str], line: int, name: str) -> Row | BadRow | None:
    if not any(cell.strip() for cell in cells):
        return None  # a blank line
    if len(cells) != len(columns):
        return BadRow(name, line, f"record: has {len(cells)} cells, the header has {len(columns)}")
    return Row(name, line, columns, tuple([c.strip() for c in cells]))
