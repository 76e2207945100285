"""Wall-clock times in the app's timezone, and splitting a window into allowed spans.

The query API takes ``yyyy-MM-dd HH:mm:ss`` wall-clock times in the app's timezone, both
ends inclusive, and refuses a window longer than 24 hours (measured on the wall clock).
Pure functions; nothing here reads a clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._exceptions import WindowError

API_FORMAT = "%Y-%m-%d %H:%M:%S"
# [0-9], not \d: \d and strptime take the digits of every script (fullwidth, Arabic-Indic).
_API_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_SECOND = timedelta(seconds=1)


def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name; ValueError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA timezone {name!r}") from None


def parse_api_time(text: str) -> datetime:
    """``yyyy-MM-dd HH:mm:ss`` exactly, as a naive wall-clock time."""
    if not _API_RE.fullmatch(text):
        raise ValueError(f"{text!r} is not yyyy-MM-dd HH:mm:ss")
    try:
        return datetime.strptime(text, API_FORMAT)
    except ValueError:
        raise ValueError(f"{text!r} is not a real date and time") from None


def format_api_time(wall: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss``; not strftime, whose %Y has no leading zeros on Linux."""
    return (
        f"{wall.year:04d}-{wall.month:02d}-{wall.day:02d} "
        f"{wall.hour:02d}:{wall.minute:02d}:{wall.second:02d}"
    )


def to_wall(value: datetime | str, tz: ZoneInfo) -> datetime:
    """A window bound as a naive wall-clock time in ``tz``.

    Accepts the API's ``yyyy-MM-dd HH:mm:ss`` (already wall time in ``tz``), ISO 8601 with
    an offset (converted to ``tz``), or a datetime (aware: converted; naive: taken as
    wall time in ``tz``). Sub-second parts are dropped: the API counts whole seconds.
    """
    shown = value if isinstance(value, str) else value.isoformat()
    if isinstance(value, str):
        if _API_RE.fullmatch(value):
            return parse_api_time(value)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is neither yyyy-MM-dd HH:mm:ss nor ISO 8601 with an offset"
            ) from None
        if parsed.utcoffset() is None:
            raise ValueError(f"{value!r} has no UTC offset; add one, e.g. +08:00 or Z")
        value = parsed
    if value.utcoffset() is not None:
        try:
            value = value.astimezone(tz).replace(tzinfo=None)
        except OverflowError:
            raise WindowError(
                f"{shown!r} is outside the years 0001-9999 in {tz.key}: give a time within them"
            ) from None
    return value.replace(microsecond=0, tzinfo=None, fold=0)


def aware(wall: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock time in ``tz`` as an aware datetime (the earlier reading if repeated)."""
    return wall.replace(tzinfo=tz, fold=0)


def _ambiguous(wall: datetime, tz: ZoneInfo) -> bool:
    """True inside a DST change: a repeated wall time or one that never happens."""
    return (
        wall.replace(tzinfo=tz, fold=0).utcoffset() != wall.replace(tzinfo=tz, fold=1).utcoffset()
    )


def _missing(wall: datetime, tz: ZoneInfo) -> bool:
    """True for a wall time skipped when clocks go forward."""
    try:
        return aware(wall, tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall
    except OverflowError:  # its UTC reading is outside the years 1-9999: no DST there
        return False


def spans(
    start: datetime, end: datetime, tz: ZoneInfo, max_span: timedelta = timedelta(hours=24)
) -> list[tuple[datetime, datetime]]:
    """:func:`iter_spans` as a list."""
    return list(iter_spans(start, end, tz, max_span))


def iter_spans(
    start: datetime, end: datetime, tz: ZoneInfo, max_span: timedelta = timedelta(hours=24)
) -> Iterator[tuple[datetime, datetime]]:
    """Split the inclusive wall-clock window ``[start, end]`` into inclusive spans of at
    most ``max_span``, each following the previous one by one second; lazily, as a
    window of centuries is millions of spans.

    A server reads a span's start as its earliest instant and its end as its latest, so a
    boundary inside a repeated (DST) hour would make two spans overlap. Such a boundary
    is moved back to just before the change, and a span never starts in a skipped hour:
    the spans then cover every instant once.
    """
    if start > end:
        raise WindowError("the window's start is after its end")
    if max_span < _SECOND:
        raise WindowError("max_span must be at least one second")
    return _spans(start, end, tz, max_span)


def _spans(
    start: datetime, end: datetime, tz: ZoneInfo, max_span: timedelta
) -> Iterator[tuple[datetime, datetime]]:
    # Nothing here steps past ``end``: at 9999-12-31 23:59:59 a step would overflow.
    lo = start
    while True:
        hi = end if end - lo <= max_span else lo + max_span
        if hi < end:
            probe = hi
            while probe > lo and _ambiguous(probe, tz):
                probe -= _SECOND
            if probe > lo:  # a span made of nothing but a DST change keeps its end
                hi = probe
        yield lo, hi
        if hi == end:
            return
        lo = hi + _SECOND
        # A start inside a spring-forward gap would be read an hour early; the wall times
        # of the gap never happen, so skipping them loses nothing.
        while _missing(lo, tz):
            if lo == end:
                return
            lo += _SECOND
