"""Property: any cdr_csv file Asterisk can write imports exactly, on SQLite and PostgreSQL.

Files are generated in every column layout (cdr.conf's loguniqueid, loguserfield,
newcdrcolumns), with quotes and commas inside fields, times in UTC (usegmtime=yes) or
local to a zone with DST (calls around its changes), every disposition, and calls of
several records sharing a linkedid (or uniqueid) interleaved with other calls. What is
stored, read back through storage, must be what docs/asterisk.md's mapping and merge rules
say; importing the file again stores nothing and counts every call as a duplicate.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import asterisk as ast
from tests.support.data import make_app, stored_row
from voicecdr.ingest.asterisk import CAUSES, AsteriskOptions
from voicecdr.ingest.importer import import_paths
from voicecdr.models import Service
from voicecdr.storage import Database, window_rows
from voicecdr.timefmt import parse_api_time, zone

ZONES = ast.CHANGES
# Every disposition; ANSWERED more often, so calls of several answered legs are common.
DISPOSITIONS = ("ANSWERED", "ANSWERED", *CAUSES)
_apps = itertools.count()
# Fields may hold anything cdr_csv can write on one line: quotes and commas included.
_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=12
)
_PRINTABLE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)


@dataclass(frozen=True)
class Leg:
    start: int
    ring: int
    talk: int
    disposition: str
    jitter: int  # cdr_csv's duration and billsec count whole milliseconds: a second less


@st.composite
def legs(draw: st.DrawFn, anchor: int) -> Leg:
    disposition = draw(st.sampled_from(DISPOSITIONS))
    talk = draw(st.integers(0, 4000)) if disposition == "ANSWERED" else 0
    return Leg(
        anchor + draw(st.integers(-5400, 5400)),
        draw(st.integers(0, 90)),
        talk,
        disposition,
        draw(st.integers(0, 1)),
    )


@st.composite
def files(draw: st.DrawFn) -> tuple[ast.Settings, list[list[ast.Record]], list[ast.Record]]:
    """cdr.conf's settings, the calls (each a list of records), and the file's lines in
    the order Asterisk wrote them (a call's records near each other, not adjacent)."""
    timezone = draw(st.sampled_from(sorted(ZONES)))
    conf = ast.Settings(
        loguniqueid=draw(st.booleans()),
        loguserfield=draw(st.booleans()),
        newcdrcolumns=draw(st.booleans()),
        timezone=timezone,
    )
    grouped = conf.loguniqueid or conf.newcdrcolumns  # else a record has no call id
    calls: list[list[ast.Record]] = []
    sequence = itertools.count(1)
    for n in range(draw(st.integers(1, 6))):
        anchor = draw(st.sampled_from(ZONES[timezone]))
        count = draw(st.integers(1, 3)) if grouped else 1
        call_id = f"pbx-{anchor}.{n}"
        records = []
        for _ in range(count):
            leg = draw(legs(anchor))
            answer = leg.start + leg.ring if leg.disposition == "ANSWERED" else None
            end = leg.start + leg.ring + leg.talk
            records.append(
                ast.Record(
                    leg.start,
                    answer,
                    end,
                    max(0, end - leg.start - leg.jitter),
                    max(0, leg.talk - leg.jitter),
                    leg.disposition,
                    src=draw(_PRINTABLE),
                    dst=draw(st.from_regex(r"(\+91)?[0-9]{5,12}", fullmatch=True)),
                    userfield=draw(_PRINTABLE),
                    uniqueid=call_id,
                    linkedid=call_id,
                    sequence=next(sequence),
                    # lastdata differs per call: with no id column, two calls must differ.
                    extra={
                        "clid": draw(_TEXT),
                        "lastdata": f"{n},{draw(_TEXT)}",
                        "channel": f"PJSIP/100-{len(records):08x}",  # each leg its own
                    },
                )
            )
        calls.append(records)
    order = draw(st.permutations([r for call in calls for r in call]))
    return conf, calls, list(order)


def readings(epoch: int, tz: str) -> list[int]:
    """The instants the wall time cdr_csv writes for ``epoch`` can mean."""
    wall = parse_api_time(datetime.fromtimestamp(epoch, zone(tz)).strftime("%Y-%m-%d %H:%M:%S"))
    found = {int(wall.replace(tzinfo=zone(tz), fold=f).timestamp()) for f in (0, 1)}
    return sorted(
        e for e in found if datetime.fromtimestamp(e, zone(tz)).replace(tzinfo=None) == wall
    )


def as_read(record: ast.Record, tz: str) -> ast.Record:
    """The record as the documented rule reads it: a call wholly inside an hour that
    repeats (clocks going back) is placed in its first occurrence."""
    starts, ends = readings(record.start, tz), readings(record.end, tz)
    if len(starts) == 2 and len(ends) == 2 and record.start == starts[1]:
        shift = starts[1] - starts[0]
        answer = None if record.answer is None else record.answer - shift
        return record.but(start=record.start - shift, answer=answer, end=record.end - shift)
    return record


def expected_row(
    call: list[ast.Record], conf: ast.Settings, order: list[ast.Record]
) -> tuple[Any, ...]:
    """docs/asterisk.md's mapping and merge rules, from the records as Asterisk held them
    and their ``order`` in the file (which breaks ties when there is no sequence column)."""
    legs = [as_read(r, conf.timezone) for r in call]
    read = {id(leg): order.index(r) for leg, r in zip(legs, call, strict=True)}

    def sequence(r: ast.Record) -> int:
        return r.sequence if conf.newcdrcolumns else 0

    answered = [r for r in legs if r.disposition == "ANSWERED"]
    first = min(legs, key=lambda r: (r.start, sequence(r), read[id(r)]))
    last = max(legs, key=lambda r: (r.end, sequence(r), read[id(r)]))
    end = max(r.end for r in legs)
    answer = min(r.answer for r in answered if r.answer is not None) if answered else None
    second = sum(r.billsec for r in answered)
    if len(answered) > 1 and answer is not None:
        second = min(second, end - answer)
    disposition = "ANSWERED" if answered else last.disposition
    phone = first.dst.removeprefix("+91")
    return (
        Service.NOTIFICATION,
        first.userfield if conf.loguserfield else "",
        phone,
        "91",
        first.src,
        min(r.start for r in legs),
        answer,
        end,
        second,
        bool(answered),
        CAUSES[disposition],
        disposition,
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(generated=files())
def test_any_cdr_csv_file_imports_exactly_and_a_replay_stores_nothing(
    db: Database, generated: tuple[ast.Settings, list[list[ast.Record]], list[ast.Record]]
) -> None:
    conf, calls, order = generated
    appkey = f"pbx{next(_apps)}"
    app = make_app(db, appkey).app
    lone = "uniqueid" if conf.loguniqueid else "userfield"
    options = AsteriskOptions.build(
        timezone=conf.timezone, sets=["service=notification", "country_code=91"], lone_column=lone
    )
    with tempfile.TemporaryDirectory() as work:
        path = Path(work, f"{appkey}.csv")
        path.write_text("".join(r.but(accountcode=appkey).line(conf) for r in order))
        first = import_paths(
            db, [path], fmt="asterisk", asterisk=options, rejects_path=Path(work, "rejects")
        )
        again = import_paths(
            db, [path], fmt="asterisk", asterisk=options, rejects_path=Path(work, "rejects")
        )
    assert first.summary.to_dict() == {"accepted": len(calls), "duplicates": 0, "rejected": []}
    assert again.summary.to_dict() == {"accepted": 0, "duplicates": len(calls), "rejected": []}
    rows = [stored_row(r) for r in window_rows(db, app.id, 0, 2**31)]
    got = [
        (
            r.service,
            r.messageid,
            r.phone,
            r.country_code,
            r.show_phone,
            r.time,
            r.start_time,
            r.end_time,
            r.second,
            r.connected,
            r.hangup_cause,
            r.hangup_disposition,
        )
        for r in rows
    ]
    want = [expected_row(call, conf, order) for call in calls]
    assert sorted(got, key=repr) == sorted(want, key=repr)
