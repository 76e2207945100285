"""Asterisk ``cdr_csv`` records (``Master.csv`` and per-account files): one line parsed.

cdr_csv (Asterisk's ``cdr/cdr_csv.c``, ``build_csv_record``) writes one line per CDR, no
header: every text column in double quotes (a quote inside doubled), the three times as
``YYYY-MM-DD HH:MM:SS`` in the switch's local time (UTC with ``usegmtime=yes``; an unset
time is an empty, unquoted cell), duration, billsec and sequence as bare integers. The
optional columns follow the classic sixteen in this order: ``uniqueid``
(``loguniqueid=yes``), ``userfield`` (``loguserfield=yes``), then ``peeraccount``,
``linkedid``, ``sequence`` (``newcdrcolumns=yes``). A line's layout is told by its column
count (:func:`layout`); 17 and 20 columns hold one of uniqueid and userfield, which the
operator names (``AsteriskOptions.lone_column``).

:func:`parse_line` reads one line into a :class:`Leg` (or the reasons it cannot);
:func:`line_item` maps it alone to an Item. ``asterisk_calls`` merges the legs of one
call. Pure: no I/O. The mapping is documented in docs/asterisk.md.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..e164 import national
from ..errors import ConfigError
from ..models import Service
from ..timefmt import epoch_to_iso, parse_api_time, zone
from .core import BOM, Item

CLASSIC = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
)
NEW_COLUMNS = ("peeraccount", "linkedid", "sequence")
OPTIONAL = ("uniqueid", "userfield")
COLUMNS = (*CLASSIC, *OPTIONAL, *NEW_COLUMNS)

# Disposition (ast_cdr_disp2str) -> the hangup cause stored (FreeSWITCH's Q.850 names).
# FAILED is what Asterisk writes when the far end could not be reached (a dial that ended
# CHANUNAVAIL, or CONGESTION with cdr.conf's default congestion=no, no route, an
# unregistered peer): Q.850's cause for a failure a later attempt may clear.
CAUSES: Mapping[str, str] = {
    "ANSWERED": "NORMAL_CLEARING",
    "NO ANSWER": "NO_ANSWER",
    "BUSY": "USER_BUSY",
    "CONGESTION": "NORMAL_CIRCUIT_CONGESTION",
    "FAILED": "NORMAL_TEMPORARY_FAILURE",
    "CANCEL": "ORIGINATOR_CANCEL",
}

# Canonical fields an operator may take from a column (--map) or give a value (--set).
MAPPABLE = (
    "appkey",
    "service",
    "messageid",
    "country_code",
    "phone",
    "show_phone",
    "ivr_result",
    "record_url",
)
DEFAULT_MAP: Mapping[str, str] = {
    "appkey": "accountcode",
    "messageid": "userfield",
    "phone": "dst",
    "show_phone": "src",
}
_FIXED_NAMES = {
    "time": "start",
    "start_time": "answer",
    "connected": "disposition",
    "end_time": "end",
    "second": "billsec",
    "hangup_cause": "disposition",
    "hangup_disposition": "disposition",
}


def layout(count: int, lone_column: str = "uniqueid") -> tuple[str, ...] | None:
    """The columns of a line of ``count`` columns, or None for a count cdr_csv never
    writes. ``lone_column``: which optional column a 17- or 20-column line has."""
    return _LAYOUTS[lone_column].get(count)


_LAYOUTS = {
    lone: {
        16: CLASSIC,
        17: (*CLASSIC, lone),
        18: (*CLASSIC, *OPTIONAL),
        19: (*CLASSIC, *NEW_COLUMNS),
        20: (*CLASSIC, lone, *NEW_COLUMNS),
        21: (*CLASSIC, *OPTIONAL, *NEW_COLUMNS),
    }
    for lone in OPTIONAL
}


def looks_like_cdr_csv(path: Path) -> bool:
    """Whether the first line of ``path`` is a cdr_csv record (a canonical CSV file starts
    with its header instead), so that ``--format auto`` does not read one as the other."""
    try:
        with path.open("rb") as handle:
            first = handle.readline(4096)
    except OSError:
        return False  # the import itself reports the file
    parsed = parse_line(first.removeprefix(BOM), AsteriskOptions())
    return isinstance(parsed, Leg)


@dataclass(frozen=True, slots=True)
class AsteriskOptions:
    """How cdr_csv lines become canonical records: the switch's ``timezone`` (IANA; UTC
    for ``usegmtime=yes``), canonical field -> column (``columns``) or -> value
    (``values``), and the one optional column of a 17- or 20-column line."""

    timezone: str = "UTC"
    columns: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MAP))
    values: Mapping[str, str] = field(default_factory=dict)
    lone_column: str = "uniqueid"

    @classmethod
    def build(
        cls,
        *,
        timezone: str = "UTC",
        maps: Iterable[str] = (),
        sets: Iterable[str] = (),
        lone_column: str = "uniqueid",
    ) -> AsteriskOptions:
        """Options from the command line's ``--map FIELD=COLUMN`` and ``--set FIELD=VALUE``
        (over :data:`DEFAULT_MAP`); ConfigError names the first unusable one."""
        try:
            zone(timezone)
        except ValueError as exc:
            raise ConfigError(f"--source-timezone: {exc}") from None
        if lone_column not in OPTIONAL:
            raise ConfigError(f"--extra-column: must be one of {', '.join(OPTIONAL)}")
        columns = dict(DEFAULT_MAP)
        values: dict[str, str] = {}
        given: set[str] = set()
        for option, pairs in (("--map", maps), ("--set", sets)):
            for pair in pairs:
                name, sep, value = pair.partition("=")
                name = name.strip()
                if not sep:
                    raise ConfigError(f"{option} {pair!r}: write FIELD=VALUE")
                if name not in MAPPABLE:
                    raise ConfigError(
                        f"{option} {pair!r}: {name!r} is not one of {', '.join(MAPPABLE)}"
                    )
                if name in given:
                    raise ConfigError(f"{option} {pair!r}: {name} is already given")
                given.add(name)
                if option == "--map":
                    if value not in COLUMNS:
                        raise ConfigError(
                            f"--map {pair!r}: {value!r} is not a cdr_csv column "
                            f"({', '.join(COLUMNS)})"
                        )
                    columns[name] = value
                else:
                    columns.pop(name, None)
                    values[name] = _checked_value(name, value)
        return cls(timezone, columns, values, lone_column)

    def missing(self) -> list[str]:
        """Required fields with no source at all: the import cannot start without them."""
        return [f for f in ("service",) if f not in self.columns and f not in self.values]


def _checked_value(name: str, value: str) -> str:
    if name == "service" and value.upper() not in Service.__members__:
        services = ", ".join(s.wire_name for s in Service)
        raise ConfigError(f"--set service={value!r}: must be one of {services}")
    if name == "country_code" and not (value.isascii() and value.isdigit() and len(value) <= 4):
        raise ConfigError(f"--set country_code={value!r}: must be 1-4 digits")
    return value


@dataclass(frozen=True, slots=True)
class Leg:
    """One cdr_csv record read: its columns by name, and its times as Unix seconds."""

    call_id: str
    cells: Mapping[str, str]
    start: int
    answer: int | None
    end: int | None
    billsec: int
    disposition: str
    sequence: int
    digest: bytes  # of the line's bytes: the same record read twice is the same leg

    @property
    def answered(self) -> bool:
        return self.disposition == "ANSWERED"


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that is not a usable record: every reason, as ``column: message`` strings,
    and its call id when its columns could be read."""

    reasons: list[str]
    call_id: str | None = None


def parse_line(data: bytes, options: AsteriskOptions) -> Leg | BadLine:
    """One cdr_csv line (its newline may be included) as a Leg, or why it is not one."""
    text = data.rstrip(b"\r\n")
    try:
        decoded = text.decode()
        rows = list(csv.reader([decoded], strict=True))
    except UnicodeDecodeError as exc:
        return BadLine([f"record: not UTF-8 ({exc.reason} at byte {exc.start})"])
    except csv.Error as exc:
        return BadLine([f"record: not a cdr_csv line ({exc})"])
    cells = rows[0] if rows else []
    names = layout(len(cells), options.lone_column)
    if names is None:
        return BadLine(
            [
                f"record: has {len(cells)} columns; cdr_csv writes 16 to 21 "
                "(see docs/asterisk.md#4-column-layouts)"
            ]
        )
    row = dict(zip(names, cells, strict=True))
    errors: list[str] = []
    duration = _whole(row, "duration", errors)
    billsec = _whole(row, "billsec", errors)
    sequence = _whole(row, "sequence", errors) if "sequence" in row else 0
    disposition = row["disposition"]
    if disposition not in CAUSES:
        errors.append(f"disposition: unknown {disposition!r} (one of {', '.join(CAUSES)})")
    tz = zone(options.timezone)
    starts = _readings(row, "start", tz, errors, required=True)
    answers = _readings(row, "answer", tz, errors)
    ends = _readings(row, "end", tz, errors)
    digest = hashlib.blake2b(text, digest_size=16).digest()
    call_id = row.get("linkedid") or row.get("uniqueid") or f"asterisk-{digest.hex()}"
    if errors or duration is None or billsec is None or sequence is None:
        return BadLine(errors, call_id)
    start, end = _placed(starts, ends, duration)
    answer = _nearest(answers, end - billsec if end is not None else start)
    return Leg(call_id, row, start, answer, end, billsec, disposition, sequence, digest)


def _whole(row: Mapping[str, str], name: str, errors: list[str]) -> int | None:
    value = row[name]
    if value.isascii() and value.isdigit():
        return int(value)
    errors.append(f"{name}: must be a whole number of seconds, not {value!r}")
    return None


def _readings(
    row: Mapping[str, str], name: str, tz: ZoneInfo, errors: list[str], *, required: bool = False
) -> list[int]:
    """The Unix seconds a wall time in ``tz`` can mean: one, two in the hour that repeats
    when clocks go back, none (an error) for a time that clocks skipped or a bad one."""
    text = row[name]
    if not text:
        if required:
            errors.append(f"{name}: missing")
        return []
    try:
        wall = parse_api_time(text)
    except ValueError as exc:
        errors.append(f"{name}: {text!r} {str(exc).replace('yyyy-MM-dd', 'YYYY-MM-DD')}")
        return []
    readings = _wall_readings(wall, tz)
    if not readings:
        errors.append(f"{name}: {text} does not exist in {tz.key} (clocks went forward)")
    return readings


def _wall_readings(wall: datetime, tz: ZoneInfo) -> list[int]:
    naive = int(wall.replace(tzinfo=UTC).timestamp())  # the wall time's seconds, as if UTC
    offsets = _quarter_offsets(tz, naive - naive % _QUARTER)
    if offsets is None:  # the offset changes inside this quarter hour (historic zones)
        offsets = _offsets(tz, naive)
    return [naive - offset for offset in offsets]


_QUARTER = 900  # offsets change on quarter hours of wall time (a few historical ones excepted)


@lru_cache(maxsize=4096)
def _quarter_offsets(tz: ZoneInfo, quarter: int) -> tuple[int, ...] | None:
    """The UTC offsets a wall time of this quarter hour can have (cdr_csv times are in
    order, so one quarter's answer serves many lines), or None when they vary in it."""
    first = _offsets(tz, quarter)
    return first if _offsets(tz, quarter + _QUARTER - 1) == first else None


def _offsets(tz: ZoneInfo, naive: int) -> tuple[int, ...]:
    """The UTC offsets with which the wall time ``naive`` (seconds, as if UTC) is a real
    instant in ``tz``: one; two when clocks go back; none in the hour they skip."""
    wall = datetime.fromtimestamp(naive, UTC).replace(tzinfo=None)
    found = set()
    for fold in (0, 1):
        epoch = int(wall.replace(tzinfo=tz, fold=fold).timestamp())
        if datetime.fromtimestamp(epoch, tz).replace(tzinfo=None) == wall:
            found.add(naive - epoch)
    return tuple(sorted(found, reverse=True))  # the earliest instant first


def _placed(starts: list[int], ends: list[int], duration: int) -> tuple[int, int | None]:
    """Start and end: of their readings, the pair that is ``duration`` apart (cdr_csv's
    duration is end - start), the earliest such pair when several are."""
    if not ends:
        return starts[0], None
    pairs = [(abs(e - s - duration), s, e) for s in starts for e in ends if e >= s]
    if not pairs:
        return starts[0], ends[-1]  # validation reports the order
    _, start, end = min(pairs)
    return start, end


def _nearest(readings: list[int], target: int) -> int | None:
    return min(readings, key=lambda r: (abs(r - target), r)) if readings else None


def value_of(name: str, leg: Leg, options: AsteriskOptions) -> str | None:
    """A mappable canonical field's text for ``leg`` (None when empty or absent)."""
    if name in options.values:
        return options.values[name]
    column = options.columns.get(name)
    return (leg.cells.get(column) or None) if column is not None else None


def field_names(options: AsteriskOptions, call_id_column: str) -> dict[str, str]:
    """Canonical field -> the column it comes from, so reasons name the column."""
    names = {**_FIXED_NAMES, "call_id": call_id_column}
    names.update(options.columns)
    names.update({f: f"--set {f}" for f in options.values})
    return names


ID_COLUMNS = ("linkedid", "uniqueid", "record")  # "record": a hash of the line


def call_id_column(leg: Leg) -> str:
    if leg.cells.get("linkedid"):
        return "linkedid"
    return "uniqueid" if leg.cells.get("uniqueid") else "record"


@dataclass(slots=True)
class Call:
    """What the legs of one call add up to (see docs/asterisk.md#6-one-call-several-records)."""

    first: Leg  # the earliest (start, sequence): its parties and ids are the call's
    start: int
    answer: int | None
    end: int | None
    billsec: int
    answered_legs: int
    last: Leg  # the latest (end, sequence) to end: its disposition, when none answered

    @classmethod
    def of(cls, leg: Leg) -> Call:
        answered = leg.answered
        return cls(
            leg,
            leg.start,
            leg.answer if answered else None,
            leg.end,
            leg.billsec if answered else 0,
            int(answered),
            leg,
        )

    def add(self, leg: Leg) -> None:
        if (leg.start, leg.sequence) < (self.first.start, self.first.sequence):
            self.first = leg
        self.start = min(self.start, leg.start)
        if leg.answered:
            self.answered_legs += 1
            self.billsec += leg.billsec
            if leg.answer is not None:
                self.answer = leg.answer if self.answer is None else min(self.answer, leg.answer)
        if leg.end is not None:
            self.end = leg.end if self.end is None else max(self.end, leg.end)
        if _ended(leg) >= _ended(self.last):
            self.last = leg

    def record(self, options: AsteriskOptions) -> dict[str, Any]:
        """The canonical record of the call."""
        leg = self.first
        connected = self.answered_legs > 0
        second = self.billsec
        if self.answered_legs > 1 and self.answer is not None and self.end is not None:
            second = min(second, self.end - self.answer)  # overlapping legs count once
        disposition = "ANSWERED" if connected else self.last.disposition
        country_code = value_of("country_code", leg, options)
        # Without a country code an E.164 number is passed on whole: it carries one.
        phone = value_of("phone", leg, options)
        return {
            "call_id": leg.call_id,
            "appkey": value_of("appkey", leg, options),
            "service": value_of("service", leg, options),
            "messageid": value_of("messageid", leg, options),
            "country_code": country_code,
            "phone": phone if country_code is None else national(phone, country_code),
            "show_phone": value_of("show_phone", leg, options),
            "ivr_result": value_of("ivr_result", leg, options),
            "record_url": value_of("record_url", leg, options),
            "time": epoch_to_iso(self.start),
            "start_time": epoch_to_iso(self.answer)
            if connected and self.answer is not None
            else None,
            "end_time": epoch_to_iso(self.end) if self.end is not None else None,
            "second": second if connected else 0,
            "connected": connected,
            "hangup_cause": CAUSES[disposition],
            "hangup_disposition": disposition,
        }


def _ended(leg: Leg) -> tuple[int, int]:
    return (leg.end if leg.end is not None else leg.start, leg.sequence)


def line_item(
    data: bytes,
    options: AsteriskOptions,
    index: int = 0,
    *,
    line: int | None = None,
    file: str | None = None,
) -> Item:
    """One cdr_csv line as an Item carrying its canonical record, or its rejection
    (``Item.error``), with no merging: for a source that takes a line at a time."""
    leg = parse_line(data, options)
    if isinstance(leg, BadLine):
        return Item(index, None, line, "; ".join(leg.reasons), file)
    return call_item(Call.of(leg), options, index, line=line, file=file)


def call_item(
    call: Call,
    options: AsteriskOptions,
    index: int,
    *,
    line: int | None,
    file: str | None,
    names: Mapping[str, Mapping[str, str]] | None = None,
) -> Item:
    """The Item of a call; ``names``: :func:`all_names` of ``options``, when the caller
    keeps them (one dict shared by every Item, rather than one built per call)."""
    column = call_id_column(call.first)
    found = names[column] if names is not None else field_names(options, column)
    return Item(index, call.record(options), line, file=file, names=found)


def all_names(options: AsteriskOptions) -> dict[str, Mapping[str, str]]:
    """:func:`field_names` for each column a call id can come from."""
    return {column: field_names(options, column) for column in ID_COLUMNS}
