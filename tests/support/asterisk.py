"""Asterisk ``cdr_csv`` lines, written the way Asterisk writes them.

From Asterisk's ``cdr/cdr_csv.c`` (``build_csv_record`` and its ``append_string``,
``append_int``, ``append_date``): every text column in double quotes, a ``"`` inside
doubled and nothing else escaped; duration, billsec and sequence as bare ``%d``; a time as
``"%Y-%m-%d %T"`` (local time, or GMT with ``usegmtime``), an unset one as an empty,
unquoted cell; columns joined by ``,``, the line ended by ``\\n``. The optional columns
follow the classic sixteen: uniqueid (``loguniqueid``), userfield (``loguserfield``), then
peeraccount, linkedid, sequence (``newcdrcolumns``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from voicecdr.timefmt import zone

INTS = ("duration", "billsec", "sequence")


def _utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())  # type: ignore[misc]


CHANGES = {  # zone -> the instants its clocks change, in 2026
    "UTC": (_utc(2026, 6, 1),),
    "Asia/Kolkata": (_utc(2026, 6, 1),),  # none: always +05:30
    "Europe/Berlin": (_utc(2026, 3, 29, 1), _utc(2026, 10, 25, 1)),
    "America/New_York": (_utc(2026, 3, 8, 7), _utc(2026, 11, 1, 6)),
    "Australia/Lord_Howe": (_utc(2026, 4, 4, 15), _utc(2026, 10, 3, 15, 30)),  # half hours
}
TIMES = ("start", "answer", "end")


@dataclass(frozen=True)
class Settings:
    """The cdr.conf ``[csv]`` options that decide the layout and the times."""

    loguniqueid: bool = True
    loguserfield: bool = True
    newcdrcolumns: bool = False
    timezone: str = "UTC"  # the switch's; usegmtime=yes writes UTC whatever it is

    def columns(self) -> list[str]:
        names = list(CLASSIC)
        names += ["uniqueid"] if self.loguniqueid else []
        names += ["userfield"] if self.loguserfield else []
        names += ["peeraccount", "linkedid", "sequence"] if self.newcdrcolumns else []
        return names


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


def quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def wall(epoch: int | None, tz: str) -> str:
    if epoch is None:
        return ""
    return quoted(datetime.fromtimestamp(epoch, zone(tz)).strftime("%Y-%m-%d %H:%M:%S"))


def line(record: Mapping[str, Any], settings: Settings) -> str:
    """One cdr_csv line: ``record`` has every column by name, times as Unix seconds."""
    cells = []
    for name in settings.columns():
        value = record[name]
        if name in TIMES:
            cells.append(wall(value, settings.timezone))
        elif name in INTS:
            cells.append(str(value))
        else:
            cells.append(quoted(value))
    return ",".join(cells) + "\n"


@dataclass(frozen=True)
class Record:
    """A CDR as Asterisk holds it before cdr_csv writes it."""

    start: int
    answer: int | None
    end: int
    duration: int
    billsec: int
    disposition: str
    accountcode: str = "app1"
    src: str = "085944247"
    dst: str = "810022458"
    uniqueid: str = "1764496800.1"
    userfield: str = "msg-1"
    linkedid: str = "1764496800.1"
    sequence: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        return {
            "accountcode": self.accountcode,
            "src": self.src,
            "dst": self.dst,
            "dcontext": "from-internal",
            "clid": f'"Caller, Inc." <{self.src}>',
            "channel": "PJSIP/100-00000001",
            "dstchannel": "PJSIP/carrier-00000002",
            "lastapp": "Dial",
            "lastdata": f"PJSIP/{self.dst}@carrier,30,tT",
            "start": self.start,
            "answer": self.answer,
            "end": self.end,
            "duration": self.duration,
            "billsec": self.billsec,
            "disposition": self.disposition,
            "amaflags": "DOCUMENTATION",
            "uniqueid": self.uniqueid,
            "userfield": self.userfield,
            "peeraccount": "",
            "linkedid": self.linkedid,
            "sequence": self.sequence,
            **self.extra,
        }

    def line(self, settings: Settings) -> str:
        return line(self.columns(), settings)

    def but(self, **changes: Any) -> Record:
        return replace(self, **changes)


def answered(start: int, ring: int = 5, talk: int = 60, **kw: Any) -> Record:
    return Record(start, start + ring, start + ring + talk, ring + talk, talk, "ANSWERED", **kw)


def unanswered(start: int, ring: int = 30, disposition: str = "NO ANSWER", **kw: Any) -> Record:
    return Record(start, None, start + ring, ring, 0, disposition, **kw)


def call(linkedid: str, start: int, legs: int, **kw: Any) -> list[Record]:
    """A call of ``legs`` records sharing ``linkedid`` (a fork: the last one answered)."""
    records = [
        unanswered(start + n, linkedid=linkedid, uniqueid=f"{linkedid}.{n}", sequence=n, **kw)
        for n in range(legs - 1)
    ]
    return [
        *records,
        answered(start, linkedid=linkedid, uniqueid=f"{linkedid}.{legs}", sequence=legs, **kw),
    ]


def interleaved(calls: list[list[Record]], settings: Settings) -> list[str]:
    """The lines of ``calls`` as Asterisk may write them: each call's records together,
    but those of two calls ending at the same moment mixed (call 2k's with 2k+1's)."""
    lines: list[str] = []
    for k in range(0, len(calls), 2):
        first, second = calls[k], calls[k + 1] if k + 1 < len(calls) else []
        for n in range(max(len(first), len(second))):
            lines += [r.line(settings) for r in (first[n : n + 1] + second[n : n + 1])]
    return lines
