"""The compiled fast path for JSONL imports: one line of bytes straight to a Cdr.

msgspec decodes a line into a typed Struct and checks the per-field rules (types, lengths,
ranges, no unknown fields) in C, in about a tenth of the time that ``orjson.loads`` plus
:func:`canonical.validate` take. It only ever answers "this is the Cdr" or "not sure":
on ANY doubt (a msgspec error, or a rule it does not know) :func:`decode_line` returns
None and the caller takes the full path, which words every problem of the record at
once. So a record is accepted here only if the full path would accept it with the same
values; ``tests/unit/test_canonical_fast_path.py`` pins that with a property test.

Where msgspec and the full path could disagree, this module leaves the decision to the
full path rather than to msgspec:

- times stay strings here and are parsed by ``datetime.fromisoformat`` as the full path
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
from datetime import datetime
from itertools import islice, repeat
from math import floor
from pathlib import Path
from typing import Annotated, cast

import msgspec
import orjson
from msgspec import Meta

from ..models import Cdr
from .canonical import _SERVICES, _URL_RE, MAX_SECOND, cdr_with_hash
from .core import Chunk, Item, Rejection, check
from .files import skip_bom
from .timebounds import TimeBounds


# Field order and limits as canonical._TEXT and _DIGITS; mypy reads these as plain types.
class _Record(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    call_id: Annotated[str, Meta(min_length=1, max_length=128)]
    appkey: Annotated[str, Meta(min_length=1, max_length=64)]
    service: str
    phone: Annotated[str, Meta(min_length=1, max_length=32)]
    country_code: Annotated[str, Meta(min_length=1, max_length=4)]
    time: str
    second: Annotated[int, Meta(ge=0, le=MAX_SECOND)]
    connected: bool
    messageid: Annotated[str, Meta(max_length=128)] | None = None
    show_phone: Annotated[str, Meta(max_length=64)] | None = None
    start_time: str | None = None
    end_time: str | None = None
    hangup_cause: Annotated[str, Meta(max_length=64)] | None = None
    hangup_disposition: Annotated[str, Meta(max_length=64)] | None = None
    ivr_result: Annotated[str, Meta(max_length=64)] | None = None
    record_url: Annotated[str, Meta(max_length=2048)] | None = None


_decode = msgspec.json.Decoder(_Record).decode
_fromiso = datetime.fromisoformat


class _Doubt(Exception):
    """Not sure: the full path decides (and words the errors)."""


def decode_line(line: bytes, bounds: TimeBounds) -> Cdr | None:
    """The Cdr of one JSONL line, its times within ``bounds``, or None if the full path
    must decide."""
    try:
        r = _decode(line)
        return _checked(r, bounds)
    except (msgspec.MsgspecError, ValueError, TypeError, _Doubt):
        # ValueError: bad UTF-8 (msgspec raises UnicodeDecodeError), or a time string
        # fromisoformat cannot read.
        return None


def _checked(r: _Record, bounds: TimeBounds) -> Cdr:
    messageid = r.messageid or ""
    show_phone = r.show_phone or ""
    cause = r.hangup_cause or ""
    disposition = r.hangup_disposition or ""
    ivr = r.ivr_result or ""
    digits = r.phone + r.country_code
    # Concatenated: a string is printable exactly when each of its parts is.
    text = r.call_id + r.appkey + messageid + show_phone + cause + disposition + ivr
    service = _SERVICES.get(r.service.upper())
    ascii_digits = digits.isdigit() and digits.isascii() and show_phone.isascii()
    if not (text.isprintable() and ascii_digits) or service is None:
        raise _Doubt
    placed = _epoch(r.time)
    answered = None if r.start_time is None else _epoch(r.start_time)
    ended = None if r.end_time is None else _epoch(r.end_time)
    second, connected = r.second, r.connected
    began = placed if answered is None else answered
    last = began if ended is None else ended  # the latest of the three, when in order
    if (
        (answered is not None and answered < placed)
        or (ended is not None and ended < began)
        or placed < bounds.earliest
        or last > bounds.latest
        or (connected and answered is None)
        or (not connected and second)
        or (second and answered is not None and ended is not None and second > ended - answered + 1)
    ):
        raise _Doubt
    record_url = r.record_url or None
    if record_url is not None and not _URL_RE.fullmatch(record_url):
        raise _Doubt
    return cdr_with_hash(
        r.call_id,
        r.appkey,
        service,
        messageid,
        r.phone,
        r.country_code,
        show_phone,
        placed,
        answered,
        ended,
        second,
        connected,
        cause,
        disposition,
        ivr,
        record_url,
    )


def _epoch(value: str) -> int:
    parsed = _fromiso(value)  # "" and anything unreadable: ValueError, the full path's
    if parsed.tzinfo is None:
        raise _Doubt
    # floor(x) == int(x // 1) for every finite float: the full path's value, one call less.
    return floor(parsed.timestamp())


def _slow(index: int, line_no: int, line: bytes, name: str, bounds: TimeBounds) -> Cdr | Rejection:
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
            kept.append(_slow(first + len(kept), line_no, line, name, bounds))
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
