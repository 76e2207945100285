"""The compiled fast path for JSONL imports: one line of bytes straight to a Cdr.

msgspec decodes a line into :data:`canonical.Record`, checking the per-field rules (types,
lengths, ranges, no unknown fields: the limits of ``cdrfields``) in C, and
:func:`canonical.checked_record` checks the rest, as it does for a clean record in a dict:
a tenth of the time that ``orjson.loads`` plus :func:`canonical.validate` take. It only
ever answers "this is the Cdr" or "not sure": on ANY doubt (a msgspec error, or a rule
it does not know) :func:`decode_line` returns None and the caller takes the full path,
which words every problem of the record at once. So a record is accepted here only if
the full path would accept it with the same values;
``tests/unit/test_canonical_fast_path.py`` pins that with a property test.

Where msgspec and the full path could disagree, this module leaves the decision to the
full path rather than to msgspec:

- times stay strings and are parsed by ``datetime.fromisoformat`` as the full path
  does: msgspec's own datetime accepts a lowercase ``t``/``z`` that the full path
  refuses, and rounds more than 6 fractional digits where ``fromisoformat`` truncates;
- printable text and digit-only phone numbers are checked in Python (one call over all
  of them), as msgspec's ``pattern`` costs more than the whole decode;
- a number too large for 64 bits is a msgspec int but an orjson float: only ``second``
  is an int and its range check sends such a value to the full path.

Lines are checked a chunk at a time (:func:`check_lines`), into the
:class:`~voicecdr.ingest.core.Chunk` s the ingest core stores in bulk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice, repeat
from pathlib import Path
from typing import cast

import msgspec
import orjson

from ..models import Cdr
from .canonical import NotSure, Record, checked_record
from .core import Chunk, Item, Rejection, check
from .files import skip_bom
from .timebounds import TimeBounds

_decode = msgspec.json.Decoder(Record).decode


def decode_line(line: bytes, bounds: TimeBounds) -> Cdr | None:
    """The Cdr of one JSONL line, its times within ``bounds``, or None if the full path
    must decide."""
    try:
        return checked_record(_decode(line), bounds)
    except (msgspec.MsgspecError, ValueError, NotSure):
        # ValueError: bad UTF-8 (msgspec raises UnicodeDecodeError), or a time string
        # fromisoformat cannot read.
        return None


def full_check(
    index: int, line_no: int, line: bytes, name: str, bounds: TimeBounds
) -> Cdr | Rejection:
    """The full path for one JSONL line: parsed, then checked with every problem worded."""
    try:
        item = Item(index, orjson.loads(line), line_no, file=name)
    except orjson.JSONDecodeError as exc:
        item = Item(index, None, line_no, f"record: not valid JSON ({exc})", name)
    return check(item, bounds)


CHUNK_LINES = 4000


def check_lines(
    name: str, first: int, first_line: int, lines: list[bytes], bounds: TimeBounds
) -> Chunk:
    """:func:`check` of the records of ``lines``, read from line ``first_line`` on, the
    first of them record number ``first``: what ``files.jsonl_items`` and ``check`` give
    (blank lines skipped), in a fraction of their time."""
    results = list(map(decode_line, lines, repeat(bounds)))
    if None not in results:  # every line a valid record: the common case, in C
        numbers = range(first_line, first_line + len(lines))
        return Chunk(name, first, numbers, cast("list[Cdr | Rejection]", results), clean=True)
    kept: list[Cdr | Rejection] = []
    line_numbers: list[int] = []
    for line_no, (line, cdr) in enumerate(zip(lines, results, strict=True), first_line):
        if cdr is not None:
            kept.append(cdr)
        elif line.strip():
            kept.append(full_check(first + len(kept), line_no, line, name, bounds))
        else:
            continue
        line_numbers.append(line_no)
    clean = not any(isinstance(r, Rejection) for r in kept)
    return Chunk(name, first, line_numbers, kept, clean=clean)


def checked_chunks(
    path: Path,
    advance: Callable[[int], None],
    bounds: TimeBounds,
    chunk_lines: int = CHUNK_LINES,
) -> Iterator[Chunk]:
    """The JSONL file's records, their times within ``bounds``, checked in this process,
    in chunks of ``chunk_lines`` lines."""
    name = str(path)
    first = 0
    line_no = 1
    with path.open("rb") as handle:
        advance(skip_bom(handle))
        while lines := list(islice(handle, chunk_lines)):
            chunk = check_lines(name, first, line_no, lines, bounds)
            advance(sum(map(len, lines)))
            first += len(chunk.results)
            line_no += len(lines)
            yield chunk
