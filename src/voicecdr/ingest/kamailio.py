"""Kamailio ``acc`` module records, exported from its database tables, as canonical CDRs.

Two exports are read (docs/kamailio.md says how to make them), each a header row of
column names then one row per record, as ``psql \\copy ... CSV HEADER`` writes (CSV) or
``mysql --batch`` (tab-separated, backslash escapes):

- ``kamailio-acc``: rows of the ``acc`` and ``missed_calls`` tables (``method``,
  ``from_tag``, ``to_tag``, ``callid``, ``sip_code``, ``sip_reason``, ``time``; the
  schema of kamailio's ``utils/kamctl/*/acc-create.sql``). The INVITE 200 row and the BYE
  row of a dialog, paired by Call-ID, are one answered call; a failed INVITE (code 300
  or more) is one unanswered call. :class:`AccPairing` holds the rows still waiting for
  their other half, within bounds (``MAX_WAITING``, ``SETTLE_SECONDS``).
- ``kamailio-cdrs``: rows of the CDR engine's ``acc_cdrs`` table (``start_time``,
  ``end_time``, ``duration``, and ``callid`` from ``cdr_extra``): one call each.

The columns voicecdr needs beyond those come from ``db_extra`` / ``cdr_extra`` under the
names of :data:`EXTRAS`. Times are epoch seconds or ``YYYY-MM-DD HH:MM:SS`` in the
source's zone (``--source-timezone``), or with an explicit UTC offset.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ..e164 import national
from ..timefmt import epoch_to_iso
from .core import Item
from .files import Advance
from .sipcauses import sip_cause
from .tableexport import BadRow, Row, ignore, rows
from .timebounds import LATEST_EPOCH

ACC, CDRS = "kamailio-acc", "kamailio-cdrs"
FORMATS = (ACC, CDRS)
ACC_COLUMNS = ("method", "from_tag", "to_tag", "callid", "sip_code", "sip_reason", "time")
CDR_COLUMNS = ("start_time", "end_time", "duration", "callid")
# Extra column (db_extra / cdr_extra name) -> the canonical field it fills.
EXTRAS: Mapping[str, str] = {
    "voicecdr_appkey": "appkey",
    "voicecdr_service": "service",
    "voicecdr_messageid": "messageid",
    "country_code": "country_code",
    "dst_user": "phone",
    "src_user": "show_phone",
    "voicecdr_ivr_result": "ivr_result",
    "voicecdr_record_url": "record_url",
}
INVITE_TIME = "invite_time"  # optional extra: when the INVITE arrived (the acc time is its reply's)
# A failed INVITE row waits this long (in the rows' own time) for a 2xx of the same
# Call-ID, which supersedes it: a later branch of a forked call answered. Longer than
# the tm module's longest INVITE transaction by default (max_inv_lifetime, 180 s).
SETTLE_SECONDS = 300
# At most this many rows wait at once in each of the three waiting tables (answered
# INVITEs, failed INVITEs, early BYEs): the import's memory bound (docs/kamailio.md).
MAX_WAITING = 50_000

ANSWERED_CAUSE = "NORMAL_CLEARING"
_DISPOSITION_MOST = 64  # the canonical hangup_disposition's limit

_EPOCH_RE = re.compile(r"[0-9]{1,12}(?:\.[0-9]+)?")
_DATETIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?P<offset>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_CODE_RE = re.compile(r"[1-6][0-9]{2}")


def epoch_of(text: str, tz: ZoneInfo) -> int:
    """Unix seconds (a fraction dropped) of an acc time: epoch seconds, or a datetime
    with an offset, or without one in ``tz``. ValueError says what is wrong."""
    if _EPOCH_RE.fullmatch(text):
        return int(text.partition(".")[0])
    match = _DATETIME_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is neither YYYY-MM-DD HH:MM:SS nor epoch seconds")
    offset = match["offset"]
    if offset and len(offset) == 3:  # psql writes "+05" for a whole-hour offset
        text += ":00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date and time") from None
    try:
        if parsed.tzinfo is None:
            # A wall time the clocks skipped does not exist; one they repeated is read
            # with its first offset (docs/kamailio.md: epoch seconds avoid both).
            local = parsed.replace(tzinfo=tz)
            if local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != parsed:
                raise ValueError(f"{text!r} does not exist in {tz.key} (the clocks went forward)")
            parsed = local
        return math.floor(parsed.timestamp())
    except OverflowError:
        raise ValueError(f"{text!r} is not between 1970 and 9999") from None


def _names(time_column: str) -> dict[str, str]:
    """Canonical field -> the column its value came from, for the messages."""
    names = {field: column for column, field in EXTRAS.items()}
    names.update(call_id="callid", time=time_column)
    return names


_ACC_NAMES = _names("time")
_CDR_NAMES = {**_names("start_time"), "start_time": "start_time", "end_time": "end_time"}


class _Call:
    """Builds one call's canonical record and collects the problems of its cells."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.errors: list[str] = []

    def epoch(self, row: Row, column: str) -> int | None:
        text = row.get(column)
        if text is None:
            self.errors.append(f"{column}: missing")
            return None
        try:
            epoch = epoch_of(text, self.tz)
        except ValueError as exc:
            self.errors.append(f"{column}: {exc}")
            return None
        if not 0 <= epoch <= LATEST_EPOCH:
            self.errors.append(f"{column}: {text!r} is not between 1970 and 9999")
            return None
        return epoch

    def placed(self, row: Row, fallback: int | None) -> int | None:
        """The INVITE's time when the export has it (``invite_time``), else ``fallback``."""
        return self.epoch(row, INVITE_TIME) if row.get(INVITE_TIME) else fallback

    def record(self, row: Row, **call: object) -> dict[str, object]:
        """The canonical record: the extras of ``row`` and the call's own fields."""
        extras = {field: row.get(column) for column, field in EXTRAS.items()}
        extras["phone"] = national(row.get("dst_user"), row.get("country_code"))
        times = {k: epoch_to_iso(v) if isinstance(v := call[k], int) else None for k in _TIMES}
        return {"call_id": row.get("callid"), **extras, **call, **times}


_TIMES = ("time", "start_time", "end_time")


def _disposition(code: int, reason: str | None) -> str:
    return f"{code} {reason}"[:_DISPOSITION_MOST] if reason else str(code)


def cdr_items(path: Path, tz: ZoneInfo, advance: Advance = ignore) -> Iterator[Item]:
    """One Item per ``acc_cdrs`` row of ``path`` (blank lines skipped)."""
    for index, row in enumerate(rows(path, CDR_COLUMNS, advance)):
        if isinstance(row, BadRow):
            yield Item(index, None, row.line, row.error, row.file)
        else:
            yield _cdr_item(row, tz, index)


def _cdr_item(row: Row, tz: ZoneInfo, index: int) -> Item:
    call = _Call(tz)
    start, end = call.epoch(row, "start_time"), call.epoch(row, "end_time")
    duration = _duration(row.get("duration"), call.errors)
    code = _code(row, call.errors, required=False)
    placed = call.placed(row, start)
    if code is not None and code >= 300:
        disposition = _disposition(code, row.get("sip_reason"))
        fields = _unanswered(placed, end, sip_cause(code), disposition)
    elif duration:
        # A started second counts: the engine's duration has microseconds.
        fields = _answered(placed, start, end, math.ceil(duration), None)
    else:  # a failed dialog, and the export does not say why
        fields = _unanswered(placed, end, None, None)
    record = call.record(row, **fields)
    return Item(index, record, row.line, file=row.file, errors=tuple(call.errors), names=_CDR_NAMES)


def _answered(
    placed: int | None, start: int | None, end: int | None, second: int, disposition: str | None
) -> dict[str, object]:
    return {
        "time": placed,
        "start_time": start,
        "end_time": end,
        "second": second,
        "connected": True,
        "hangup_cause": ANSWERED_CAUSE,
        "hangup_disposition": disposition,
    }


def _unanswered(
    placed: int | None, end: int | None, cause: str | None, disposition: str | None
) -> dict[str, object]:
    return {
        "time": placed,
        "start_time": None,
        "end_time": end,
        "second": 0,
        "connected": False,
        "hangup_cause": cause,
        "hangup_disposition": disposition,
    }


def _duration(text: str | None, errors: list[str]) -> float | None:
    if text is None:
        errors.append("duration: missing")
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        errors.append(f"duration: must be seconds (0 or more), not {text!r}")
        return None
    return value


def _code(row: Row, errors: list[str], *, required: bool) -> int | None:
    text = row.get("sip_code")
    if text is None:
        if required:
            errors.append("sip_code: missing")
        return None
    if not _CODE_RE.fullmatch(text):
        errors.append(f"sip_code: must be a SIP status code (100-699), not {text!r}")
        return None
    return int(text)


@dataclass(frozen=True, slots=True)
class _Acc:
    """An acc row read for pairing: its row and the cells pairing looks at."""

    row: Row
    method: str
    callid: str
    code: int
    time: int

    def tags(self) -> frozenset[str]:
        return frozenset((self.row.get("from_tag") or "", self.row.get("to_tag") or ""))


class AccPairing:
    """Pairs the rows of ``acc`` / ``missed_calls`` exports into calls, across every file
    given to :meth:`items` (in order), until :meth:`finish`.

    An INVITE 2xx row waits for the BYE of its Call-ID (a later INVITE 2xx or failure
    while it waits is a re-INVITE: ignored). A failed INVITE waits ``SETTLE_SECONDS`` of
    the rows' time for a 2xx that supersedes it, then is an unanswered call. A BYE read
    before its INVITE waits as long for it. Each of the three waits at most
    ``MAX_WAITING`` rows; past that the oldest is decided at once (see docs/kamailio.md).
    Rows of other methods and provisional replies are skipped.
    """

    def __init__(self, tz: ZoneInfo, *, settle: int = SETTLE_SECONDS, most: int = MAX_WAITING):
        self._tz = tz
        self._settle = settle
        self._most = most
        self._answered: OrderedDict[str, _Acc] = OrderedDict()
        self._failed: OrderedDict[str, _Acc] = OrderedDict()
        self._byes: OrderedDict[str, _Acc] = OrderedDict()
        self._clock = 0  # the latest row time read
        self._settled_to = -SETTLE_SECONDS  # the horizon _settled last looked at
        self._index = 0

    def items(self, path: Path, advance: Advance = ignore) -> Iterator[Item]:
        """The calls decided while reading ``path`` (others wait for the next file)."""
        for row in rows(path, ACC_COLUMNS, advance):
            if isinstance(row, BadRow):
                yield self._bad(row.file, row.line, row.error)
            else:
                yield from self._read(row)

    def finish(self) -> Iterator[Item]:
        """What still waits once every file is read: failures are unanswered calls,
        the rest are rejected as incomplete."""
        while self._failed:
            yield self._missed(self._failed.popitem(last=False)[1])
        while self._byes:
            yield self._orphan(self._byes.popitem(last=False)[1])
        while self._answered:
            yield self._incomplete(self._answered.popitem(last=False)[1], "no BYE")

    def _read(self, row: Row) -> Iterator[Item]:
        cells = _Call(self._tz)
        epoch = cells.epoch(row, "time")
        code = _code(row, cells.errors, required=True)
        callid, method = row.get("callid"), (row.get("method") or "").upper()
        if callid is None:
            cells.errors.append("callid: missing")
        if not method:
            cells.errors.append("method: missing")
        if cells.errors or epoch is None or code is None or callid is None:
            yield self._bad(row.file, row.line, "; ".join(cells.errors))
            return
        acc = _Acc(row, method, callid, code, epoch)
        self._clock = max(self._clock, epoch)
        if method == "INVITE" and 200 <= code < 300:
            yield from self._answer(acc)
        elif method == "INVITE" and code >= 300:
            if callid not in self._answered:  # else a failed re-INVITE: the call goes on
                self._failed.pop(callid, None)
                self._failed[callid] = acc  # the latest failure decides the cause
                if len(self._failed) > self._most:
                    yield self._missed(self._failed.popitem(last=False)[1])
        elif method == "BYE":
            invite = self._answered.pop(callid, None)
            if invite is not None:
                yield self._call(invite, acc)
            elif callid not in self._byes:
                self._byes[callid] = acc
                if len(self._byes) > self._most:
                    yield self._orphan(self._byes.popitem(last=False)[1])
        if self._clock - self._settle > self._settled_to:  # only once the clock moved on
            yield from self._settled(self._clock - self._settle)

    def _answer(self, invite: _Acc) -> Iterator[Item]:
        callid = invite.callid
        if callid in self._answered:
            return  # a re-INVITE
        self._failed.pop(callid, None)  # superseded: another branch answered
        bye = self._byes.pop(callid, None)
        if bye is not None:
            yield self._call(invite, bye)
            return
        self._answered[callid] = invite
        if len(self._answered) > self._most:
            oldest = self._answered.popitem(last=False)[1]
            yield self._incomplete(oldest, f"more than {self._most} calls open at once")

    def _settled(self, horizon: int) -> Iterator[Item]:
        """Decide the failures and early BYEs from before ``horizon``."""
        self._settled_to = horizon
        while self._failed and next(iter(self._failed.values())).time < horizon:
            yield self._missed(self._failed.popitem(last=False)[1])
        while self._byes and next(iter(self._byes.values())).time < horizon:
            yield self._orphan(self._byes.popitem(last=False)[1])

    def _next(self) -> int:
        self._index += 1
        return self._index - 1

    def _bad(self, file: str, line: int, error: str) -> Item:
        return Item(self._next(), None, line, error, file)

    def _call(self, invite: _Acc, bye: _Acc) -> Item:
        call = _Call(self._tz)
        tags, bye_tags = invite.tags(), bye.tags()
        if tags != bye_tags and "" not in tags | bye_tags:
            call.errors.append(
                f"to_tag: the BYE at line {bye.row.line} has other tags than its INVITE's "
                "(another dialog of the same Call-ID)"
            )
        by = "caller" if bye.row.get("from_tag") == invite.row.get("from_tag") else "callee"
        placed = call.placed(invite.row, invite.time)
        second = max(0, bye.time - invite.time)
        fields = _answered(placed, invite.time, bye.time, second, f"{by}_bye")
        return self._item(invite.row, call, fields)

    def _missed(self, failed: _Acc) -> Item:
        call = _Call(self._tz)
        placed = call.placed(failed.row, failed.time)
        disposition = _disposition(failed.code, failed.row.get("sip_reason"))
        fields = _unanswered(placed, failed.time, sip_cause(failed.code), disposition)
        return self._item(failed.row, call, fields)

    def _item(self, row: Row, call: _Call, fields: dict[str, object]) -> Item:
        record = call.record(row, **fields)
        errors = tuple(call.errors)
        return Item(self._next(), record, row.line, file=row.file, errors=errors, names=_ACC_NAMES)

    def _orphan(self, bye: _Acc) -> Item:
        return self._bad(
            bye.row.file,
            bye.row.line,
            f"callid: BYE of {bye.callid!r} with no INVITE 200 for it in the rows read; "
            "import the file holding that INVITE together with this one",
        )

    def _incomplete(self, invite: _Acc, why: str) -> Item:
        return self._bad(
            invite.row.file,
            invite.row.line,
            f"callid: incomplete call {invite.callid!r}: {why}; import this file together "
            "with the one holding its BYE",
        )
