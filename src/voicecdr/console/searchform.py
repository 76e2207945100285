"""The Calls page's search form: its query-string fields read into a storage
:class:`~voicecdr.storage.search.Search`, or a message (a catalog key) per bad field.

Pure: the page passes the app's timezone, now and the span limit. The window is
``[from, to)`` in the app's timezone, as on the overview.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from ..analytics import AnalyticsError, Calendar, parse_time
from ..models import CostStatus, VoiceGroup
from ..storage import CallFilter, Search

LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> reads and writes
PAGE_SIZES = (20, 50, 100)
MAX_PAGE = 1_000_000
MAX_MESSAGEID = 128  # as the query API
_PHONE = re.compile(r"[0-9]{1,32}")
_COUNTRY = re.compile(r"[0-9]{1,4}")
_SEPARATORS = re.compile(r"[\s().-]")  # what people type between a number's digits
# The form's fields, in order: what a page link or the CSV link carries (with ``app``,
# which the operator may name in the URL rather than the switcher).
FIELDS = (
    "app",
    "from",
    "to",
    "voice_type",
    "messageid",
    "phone",
    "match",
    "country",
    "connected",
    "cost_status",
    "size",
)


@dataclass(frozen=True, slots=True)
class FieldError:
    """A bad field's message: a catalog key and its values."""

    key: str
    values: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Form:
    """The form as given (to show again), what it asks (None if a field is bad) and
    the page asked for."""

    values: dict[str, str]
    errors: dict[str, FieldError]
    search: Search | None
    page: int
    size: int

    def query(self, **changes: str | int) -> str:
        """The form's query string (empty fields left out), with ``changes``."""
        given = {name: self.values.get(name, "") for name in FIELDS}
        given.update({k: str(v) for k, v in changes.items()})
        return urlencode([(k, v) for k, v in given.items() if v])


def default_window(tz: ZoneInfo, now: float) -> tuple[str, str]:
    """Today, local midnight to midnight."""
    local = datetime.fromtimestamp(now, tz)
    midnight = datetime.fromtimestamp(Calendar(tz).midnight(local.year, local.month, local.day), tz)
    return midnight.strftime(LOCAL_MINUTE), (midnight + timedelta(days=1)).strftime(LOCAL_MINUTE)


def _wall(epoch: int, tz: ZoneInfo) -> datetime:
    """The local wall-clock time of ``epoch``: the span is measured on the wall clock, as
    the query API measures it (a day with a clock change is still 24 hours)."""
    return datetime.fromtimestamp(epoch, tz).replace(tzinfo=None)


def read_form(
    params: Mapping[str, str], app_id: int, tz: ZoneInfo, now: float, max_span_hours: float
) -> Form:
    """The search ``params`` ask for, each bad field named in ``errors``."""
    start_text, end_text = default_window(tz, now)
    values = {name: params.get(name, "").strip() for name in FIELDS}
    values["from"] = values["from"] or start_text
    values["to"] = values["to"] or end_text
    values["voice_type"] = values["voice_type"] or "1"
    values["match"] = values["match"] or "exact"
    values["size"] = values["size"] or "50"
    errors: dict[str, FieldError] = {}

    def bad(name: str, key: str, **more: object) -> None:
        errors.setdefault(name, FieldError(key, more))

    start = end = 0
    for name in ("from", "to"):
        try:
            epoch = parse_time(values[name], tz, name)
        except AnalyticsError:
            bad(name, "calls.bad_time")
            continue
        if name == "from":
            start = epoch
        else:
            end = epoch
    if not errors:
        if end <= start:
            bad("to", "calls.to_before_from")
        elif _wall(end, tz) - _wall(start, tz) > timedelta(hours=max_span_hours):
            bad("to", "calls.too_long", hours=f"{max_span_hours:g}")
    if values["voice_type"] not in ("0", "1"):
        bad("voice_type", "calls.bad_choice")
    if len(values["messageid"]) > MAX_MESSAGEID:
        bad("messageid", "calls.bad_messageid", most=MAX_MESSAGEID)
    phone = _SEPARATORS.sub("", values["phone"])
    if phone and not _PHONE.fullmatch(phone):
        bad("phone", "calls.bad_phone")
    if values["match"] not in ("exact", "prefix"):
        bad("match", "calls.bad_choice")
    country = values["country"].removeprefix("+")
    if country and not _COUNTRY.fullmatch(country):
        bad("country", "calls.bad_country")
    connected = {"": None, "yes": True, "no": False}.get(values["connected"], False)
    if values["connected"] not in ("", "yes", "no"):
        bad("connected", "calls.bad_choice")
    statuses = {"": None, **{s.wire_name: s for s in CostStatus}}
    if values["cost_status"] not in statuses:
        bad("cost_status", "calls.bad_choice")
    size = int(values["size"]) if values["size"] in {str(n) for n in PAGE_SIZES} else 0
    if not size:
        bad("size", "calls.bad_choice")
    page_text = params.get("page", "1").strip() or "1"
    page = int(page_text) if page_text.isascii() and page_text.isdigit() else 0
    if not 1 <= page <= MAX_PAGE:
        bad("page", "calls.bad_page", most=MAX_PAGE)
    if errors:
        return Form(values, errors, None, 1, size or PAGE_SIZES[1])
    search = Search(
        app_id,
        VoiceGroup(int(values["voice_type"])),
        start,
        end - 1,  # the storage's windows are inclusive
        values["messageid"] or None,
        CallFilter(
            phone or None,
            values["match"] == "prefix",
            country or None,
            connected,
            statuses[values["cost_status"]],
        ),
    )
    return Form(values, errors, search, page, size)
