"""NXCloud's ``yyyy-MM-dd HH:mm:ss`` wall-clock times and timezone conversion.

All API times are wall-clock times in the app's timezone; storage keeps Unix seconds.
Pure functions, no clock: callers pass ``now``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# [0-9], not \d: \d and int() take the digits of every script (fullwidth, Arabic-Indic).
_API_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name; raises ValueError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA timezone {name!r}") from None


def parse_api_time(text: str) -> datetime:
    """Parse ``yyyy-MM-dd HH:mm:ss`` exactly into a naive wall-clock datetime."""
    if not _API_RE.fullmatch(text):
        digits = "" if text.isascii() else " with ASCII digits 0-9"
        raise ValueError(f"must be yyyy-MM-dd HH:mm:ss{digits}")
    try:
        # The digits are where the pattern says: fields by position, not strptime (which
        # costs as much as the rest of a query's validation together).
        return datetime(
            int(text[0:4]),
            int(text[5:7]),
            int(text[8:10]),
            int(text[11:13]),
            int(text[14:16]),
            int(text[17:19]),
        )
    except ValueError:
        raise ValueError("is not a real date and time") from None


def format_wall(wall: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss``; not strftime, whose %Y has no leading zeros on Linux."""
    return (
        f"{wall.year:04d}-{wall.month:02d}-{wall.day:02d} "
        f"{wall.hour:02d}:{wall.minute:02d}:{wall.second:02d}"
    )


def wall_to_epoch(wall: datetime, tz: ZoneInfo, *, latest: bool = False) -> int:
    """Unix seconds of a wall-clock time in ``tz``.

    Around a DST change a wall time has two readings (one per offset): it occurs twice
    when clocks go back and not at all when they go forward. The earliest reading is
    returned, or the latest when ``latest`` is set, so an inclusive window bounded by
    such times never loses a call on either side.
    """
    readings = [int(wall.replace(tzinfo=tz, fold=f).timestamp()) for f in (0, 1)]
    return max(readings) if latest else min(readings)


_V = TypeVar("_V")
_OFFSET_STEP = 900  # offsets change on quarter hours (a few historical ones excepted)


@lru_cache(maxsize=65_536)
def _offset(tz: ZoneInfo, quarter: int) -> int | None:
    """UTC offset in seconds of ``tz`` throughout the quarter hour ``quarter``, or None
    when it changes within it."""
    first = datetime.fromtimestamp(quarter * _OFFSET_STEP, tz).utcoffset()
    last = datetime.fromtimestamp(quarter * _OFFSET_STEP + _OFFSET_STEP - 1, tz).utcoffset()
    if first is None or first != last:
        return None
    return int(first.total_seconds())


@lru_cache(maxsize=65_536)
def _minute_text(local_minute: int) -> str:
    """``yyyy-MM-dd HH:mm:`` of a minute counted from the epoch in local wall time."""
    t = time.gmtime(local_minute * 60)
    return "%04d-%02d-%02d %02d:%02d:" % (  # noqa: UP031 - the fastest form here
        t.tm_year,
        t.tm_mon,
        t.tm_mday,
        t.tm_hour,
        t.tm_min,
    )


_SECOND_TEXT = tuple(f"{second:02d}" for second in range(60))


class EpochFormatter:
    """:func:`format_epoch` for one timezone, for rendering many times at once (a page of
    rows, a batch of receipts): it keeps the text up to the minute of every UTC minute it
    has seen, so most calls are one dict lookup and one concatenation. A minute not seen
    yet is put together from the offset of its quarter hour and the date of its day, also
    kept, so sparse times (the rater's: a batch spans days) stay cheap too.

    ``between`` and ``colon`` replace the space and the colons, so that a form body can
    have its times already encoded (``+`` and ``%3A``). A long-lived formatter (the
    rater's, one per app) forgets what it kept after ``_KEPT`` entries."""

    def __init__(self, tz: ZoneInfo, *, between: str = " ", colon: str = ":") -> None:
        self._tz = tz
        self._minutes: dict[int, str] = {}
        self._offsets: dict[int, int] = {}  # by quarter hour; _CHANGES_WITHIN: no one offset
        self._dates: dict[int, str] = {}  # by local day: yyyy-MM-dd and ``between``
        self._clock = _clock_texts(colon)
        self._between = between
        self._colon = colon

    def __call__(self, epoch: int) -> str:
        minute, second = divmod(epoch, 60)
        text = self._minutes.get(minute)
        if text is None:
            text = self._minute(minute)
            if text is None:
                # An offset changing within this quarter hour, or one with seconds
                # (historical local mean times): the general path, uncached.
                text = format_epoch(epoch, self._tz)
                return text.replace(" ", self._between).replace(":", self._colon)
        return text + _SECOND_TEXT[second]

    def _minute(self, minute: int) -> str | None:
        quarter = minute * 60 // _OFFSET_STEP
        offset = self._offsets.get(quarter)
        if offset is None:
            found = _offset(self._tz, quarter)
            offset = _CHANGES_WITHIN if found is None else found
            _keep(self._offsets, quarter, offset)
        if offset == _CHANGES_WITHIN or offset % 60:
            return None
        day, minute_of_day = divmod(minute + offset // 60, 1440)
        date = self._dates.get(day)
        if date is None:
            t = time.gmtime(day * 86_400)
            date = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}{self._between}"
            _keep(self._dates, day, date)
        text = date + self._clock[minute_of_day]
        _keep(self._minutes, minute, text)
        return text


_CHANGES_WITHIN = 1 << 62
_KEPT = 65_536


def _keep(cache: dict[int, _V], key: int, value: _V) -> None:
    if len(cache) >= _KEPT:
        cache.clear()
    cache[key] = value


@lru_cache(maxsize=8)
def _clock_texts(colon: str) -> tuple[str, ...]:
    """``HH:mm:`` of every minute of a day, with ``colon`` for the colons."""
    return tuple(f"{h:02d}{colon}{m:02d}{colon}" for h in range(24) for m in range(60))


def format_epoch(epoch: int, tz: ZoneInfo) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in ``tz``. Every row and receipt renders times, so the
    offset is looked up once per quarter hour and the text up to the minute once per
    minute: the rows of a page mostly share both."""
    offset = _offset(tz, epoch // _OFFSET_STEP)
    if offset is None:
        return format_wall(datetime.fromtimestamp(epoch, tz))
    local = epoch + offset
    return _minute_text(local // 60) + _SECOND_TEXT[local % 60]


def parse_iso8601(text: str) -> int:
    """ISO 8601 with an offset (``Z`` or ``+08:00``) to Unix seconds; naive times refused."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "must be ISO 8601 with an offset, e.g. 2026-11-27T09:00:00+08:00"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("has no UTC offset; add one, e.g. +08:00 or Z")
    return int(parsed.timestamp() // 1)


def parse_cli_time(text: str, tz: ZoneInfo, *, latest: bool = False) -> int:
    """A command-line time: ``yyyy-MM-dd HH:mm:ss`` in ``tz`` or ISO 8601 with an offset."""
    if _API_RE.fullmatch(text):
        try:
            wall = parse_api_time(text)
        except ValueError as exc:
            raise ValueError(f"{text!r} {exc}") from None
        return wall_to_epoch(wall, tz, latest=latest)
    try:
        return parse_iso8601(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither yyyy-MM-dd HH:mm:ss nor ISO 8601 with an offset"
        ) from None


def epoch_to_iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Window:
    """An inclusive query window in Unix seconds."""

    start: int
    end: int


class WindowError(ValueError):
    """A window the API refuses. ``kind`` is the API error slug, ``field`` the parameter."""

    def __init__(self, kind: str, field: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


def query_window(
    start_text: str,
    end_text: str,
    tz: ZoneInfo,
    *,
    now: float,
    max_span: timedelta,
    max_age: timedelta | None,
) -> Window:
    """Validate an API window and convert it to an inclusive range of Unix seconds.

    The span is measured on the wall clock, as a client computes it; the age is measured
    from ``now`` to the window's first instant. ``max_age`` None means unlimited.
    """
    try:
        start = parse_api_time(start_text)
    except ValueError as exc:
        raise WindowError("invalid_parameter", "start_time", f"start_time {exc}") from None
    try:
        end = parse_api_time(end_text)
    except ValueError as exc:
        raise WindowError("invalid_parameter", "end_time", f"end_time {exc}") from None
    if start > end:
        raise WindowError(
            "invalid_parameter", "start_time", "start_time must not be after end_time"
        )
    if end - start > max_span:
        hours = max_span.total_seconds() / 3600
        raise WindowError(
            "range_too_large",
            "end_time",
            f"end_time - start_time must not exceed {hours:g} hours",
        )
    window = Window(wall_to_epoch(start, tz), wall_to_epoch(end, tz, latest=True))
    if max_age is not None and window.start < now - max_age.total_seconds():
        days = max_age.total_seconds() / 86400
        raise WindowError(
            "out_of_window", "start_time", f"start_time must be within the last {days:g} days"
        )
    return window
