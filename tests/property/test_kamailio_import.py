"""Kamailio acc and acc_cdrs exports import exactly: what is stored, read back through
the storage layer, is what each generated dialog says, on SQLite and PostgreSQL; a
replay stores nothing twice.

The rows follow Kamailio's schema (tests/support/kamailio.py): an answered dialog is its
INVITE 200 row and its BYE row (from either side, re-INVITEs between them), a failed one
its INVITE row with a final code of 300 or more (several of them when a forked call
tried other branches first), all of them interleaved in time order as `ORDER BY time`
exports them.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import kamailio as kam
from tests.support.data import make_app, stored_row
from voicecdr.ingest.importer import import_paths
from voicecdr.storage import AppStore, Database, window_rows

BASE = 1_794_268_800  # 2026-11-15T00:00:00Z: no clock change near it in ZONES
NOW = BASE + 30 * 86_400
ZONES = ("UTC", "Asia/Kolkata", "America/New_York", "Europe/Berlin", "Asia/Shanghai")
# The codes a failed INVITE ends with and the cause each is stored with (RFC 3398 8.2.6.1;
# 487 is the caller's CANCEL; a code the table does not list is NORMAL_UNSPECIFIED).
CAUSES = {
    404: "UNALLOCATED_NUMBER",
    408: "RECOVERY_ON_TIMER_EXPIRE",
    480: "NO_USER_RESPONSE",
    486: "USER_BUSY",
    487: "ORIGINATOR_CANCEL",
    488: "INTERWORKING",
    503: "NORMAL_TEMPORARY_FAILURE",
    603: "CALL_REJECTED",
    699: "NORMAL_UNSPECIFIED",
}
_names = itertools.count()
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Dialog:
    """One generated call and the acc rows Kamailio writes for it."""

    kind: str  # answered, failed, forked (failed branches, then answered), dangling
    at: int  # the INVITE's final reply (200 or the failure)
    talk: int = 0
    code: int = 486
    callee_bye: bool = False
    reinvites: list[tuple[int, int, bool]] = field(default_factory=list)  # (at, code, swapped)
    forks: list[tuple[int, int]] = field(default_factory=list)  # failed branches (at, code)


@st.composite
def dialogs(draw: st.DrawFn) -> Dialog:
    kind = draw(st.sampled_from(["answered", "answered", "failed", "forked", "dangling"]))
    at = BASE + draw(st.integers(0, 4 * 3600))
    if kind == "failed":
        return Dialog(kind, at, code=draw(st.sampled_from(sorted(CAUSES))))
    talk = draw(st.integers(0, 3 * 3600))
    reinvites = []
    if talk >= 2:
        moments = st.integers(at + 1, at + talk - 1)
        reinvite = st.tuples(moments, st.sampled_from([200, 200, 491, 488]), st.booleans())
        reinvites = draw(st.lists(reinvite, max_size=2))
    forks = []
    if kind == "forked":
        branches = st.tuples(st.integers(at - 200, at - 1), st.sampled_from(sorted(CAUSES)))
        forks = draw(st.lists(branches, min_size=1, max_size=3))
    return Dialog(kind, at, talk, callee_bye=draw(st.booleans()), reinvites=reinvites, forks=forks)


def acc_rows(
    dialog: Dialog, callid: str, messageid: str, when: Any
) -> Iterator[tuple[int, dict[str, str]]]:
    """(time, row) of each acc row of ``dialog``; ``when`` writes a time cell."""
    extra = kam.extras(messageid)
    for at, code in dialog.forks:  # missed_calls rows of the branches that failed
        yield at, kam.acc_row("INVITE", callid, code, "Busy Here", when(at), to_tag="", **extra)
    if dialog.kind == "failed":
        reason = "Busy Here" if dialog.code == 486 else "Failed"
        yield (
            dialog.at,
            kam.acc_row("INVITE", callid, dialog.code, reason, when(dialog.at), to_tag="", **extra),
        )
        return
    yield dialog.at, kam.acc_row("INVITE", callid, 200, "OK", when(dialog.at), **extra)
    for at, code, swapped in dialog.reinvites:
        tags = {"from_tag": "tt", "to_tag": "ft"} if swapped else {}
        yield at, kam.acc_row("INVITE", callid, code, "OK", when(at), **tags)
    if dialog.kind != "dangling":
        tags = {"from_tag": "tt", "to_tag": "ft"} if dialog.callee_bye else {}
        end = dialog.at + dialog.talk
        yield end, kam.acc_row("BYE", callid, 200, "OK", when(end), **tags)


def expected(dialog: Dialog, messageid: str) -> dict[str, Any] | None:
    """The stored call of ``dialog`` (None: it is rejected as incomplete)."""
    if dialog.kind == "dangling":
        return None
    common = {
        "messageid": messageid,
        "phone": "810022458",
        "show_phone": "085944247",
        "time": dialog.at,
    }
    if dialog.kind == "failed":
        reason = "Busy Here" if dialog.code == 486 else "Failed"
        return {
            **common,
            "start_time": None,
            "end_time": dialog.at,
            "second": 0,
            "connected": False,
            "hangup_cause": CAUSES[dialog.code],
            "hangup_disposition": f"{dialog.code} {reason}",
        }
    return {
        **common,
        "start_time": dialog.at,
        "end_time": dialog.at + dialog.talk,
        "second": dialog.talk,
        "connected": True,
        "hangup_cause": "NORMAL_CLEARING",
        "hangup_disposition": "callee_bye" if dialog.callee_bye else "caller_bye",
    }


FIELDS = ("messageid", "phone", "show_phone", "time", "start_time", "end_time", "second")
FIELDS += ("connected", "hangup_cause", "hangup_disposition")


def stored(db: Database, appkey: str) -> dict[str, dict[str, Any]]:
    """The app's stored calls by messageid, as the storage layer reads them."""
    app = AppStore(db).get(appkey)
    assert app is not None
    rows = [stored_row(r) for r in window_rows(db, app.id, BASE - 86_400, NOW)]
    return {r.messageid: {f: getattr(r, f) for f in FIELDS} for r in rows}


def rejects(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@PROPERTY
@given(
    calls=st.lists(dialogs(), min_size=1, max_size=25),
    tz=st.sampled_from(ZONES),
    epochs=st.booleans(),
    ties=st.randoms(use_true_random=False),
    split=st.floats(0, 1),
)
def test_acc_rows_pair_into_exactly_the_calls_they_describe(
    db: Database,
    tmp_path: Path,
    calls: list[Dialog],
    tz: str,
    epochs: bool,
    ties: Any,
    split: float,
) -> None:
    n = next(_names)
    appkey = f"kam{n}"
    make_app(db, appkey)

    def when(epoch: int) -> str:
        return str(epoch) if epochs else kam.wall(epoch, tz)

    timed = []
    want: dict[str, dict[str, Any]] = {}
    dangling = set()
    for i, dialog in enumerate(calls):
        callid, messageid = f"c{n}-{i}@10.0.0.1", f"m{n}-{i}"
        for at, row in acc_rows(dialog, callid, messageid, when):
            row["voicecdr_appkey"] = appkey
            timed.append((at, ties.random(), row))
        call = expected(dialog, messageid)
        if call is None:
            dangling.add(callid)
        else:
            want[messageid] = call
    # ORDER BY time: rows of the same second in any order (a BYE may come first).
    rows = [row for _, _, row in sorted(timed, key=lambda t: (t[0], t[1]))]
    # Two days' exports: the files of one import are read as one stream.
    cut = int(split * len(rows))
    header = kam.ACC_TABLE + kam.EXTRA
    exports = [
        kam.export(tmp_path / f"acc{n}a.csv", header, rows[:cut]),
        kam.export(tmp_path / f"acc{n}b.csv", header, rows[cut:]),
    ]
    rejected = tmp_path / f"rejects{n}.jsonl"

    result = import_paths(
        db, exports, fmt="kamailio-acc", rejects_path=rejected, now=NOW, source_timezone=tz
    )

    assert stored(db, appkey) == want
    assert result.summary.accepted == len(want)
    found = {r["errors"][0].split("'")[1] for r in rejects(rejected)}
    assert found == dangling
    assert all("incomplete call" in r["errors"][0] for r in rejects(rejected))

    again = import_paths(
        db, exports, fmt="kamailio-acc", rejects_path=rejected, now=NOW, source_timezone=tz
    )
    assert (again.summary.accepted, again.summary.duplicates) == (0, len(want))
    assert stored(db, appkey) == want


@dataclass
class EngineCdr:
    """One acc_cdrs row: start and duration with the engine's microseconds."""

    start_us: int
    duration_ms: int  # FLOAT(10,3): milliseconds survive
    code: int | None  # cdr_extra sip_code of a failed dialog


@st.composite
def engine_cdrs(draw: st.DrawFn) -> EngineCdr:
    start_us = (BASE + draw(st.integers(0, 86_400))) * 1_000_000 + draw(st.integers(0, 999_999))
    if draw(st.booleans()):
        return EngineCdr(start_us, draw(st.integers(1, 3 * 3600 * 1000)), None)
    return EngineCdr(start_us, 0, draw(st.sampled_from(sorted(CAUSES))))


@PROPERTY
@given(
    cdrs=st.lists(engine_cdrs(), min_size=1, max_size=25),
    tz=st.sampled_from(ZONES),
    tsv=st.booleans(),
    invite_time=st.booleans(),
)
def test_acc_cdrs_rows_are_one_call_each(
    db: Database, tmp_path: Path, cdrs: list[EngineCdr], tz: str, tsv: bool, invite_time: bool
) -> None:
    n = next(_names)
    appkey = f"cdr{n}"
    make_app(db, appkey)
    rows, want = [], {}
    for i, cdr in enumerate(cdrs):
        messageid = f"m{n}-{i}"
        start = cdr.start_us // 1_000_000
        end = (cdr.start_us + cdr.duration_ms * 1000) // 1_000_000
        row = {
            "start_time": kam.wall(start, tz),
            "end_time": kam.wall(end, tz),
            "duration": f"{cdr.duration_ms / 1000:.3f}",
            "callid": f"c{n}-{i}",
            "sip_code": str(cdr.code) if cdr.code else "",
            "sip_reason": "Busy Here" if cdr.code else "",
            **kam.extras(messageid, appkey),
        }
        placed = start
        if invite_time:  # the INVITE came in 0-30 s before the answer
            placed = start - i % 31
            row["invite_time"] = str(placed)
        rows.append(row)
        answered = cdr.code is None
        want[messageid] = {
            "messageid": messageid,
            "phone": "810022458",
            "show_phone": "085944247",
            "time": placed,
            "start_time": start if answered else None,
            "end_time": end,
            "second": math.ceil(cdr.duration_ms / 1000),
            "connected": answered,
            "hangup_cause": "NORMAL_CLEARING" if answered else CAUSES[cdr.code or 0],
            "hangup_disposition": "" if answered else f"{cdr.code} Busy Here",  # "": none
        }
    header = (*kam.CDRS_TABLE, "callid", "sip_code", "sip_reason", *kam.EXTRA)
    header += ("invite_time",) if invite_time else ()
    export = kam.export(tmp_path / f"cdrs{n}.txt", header, rows, tsv=tsv)

    result = import_paths(db, [export], fmt="kamailio-cdrs", now=NOW, source_timezone=tz)

    assert result.summary.rejected_total == 0, result.summary.rejected
    assert stored(db, appkey) == want
    again = import_paths(db, [export], fmt="kamailio-cdrs", now=NOW, source_timezone=tz)
    assert (again.summary.accepted, again.summary.duplicates) == (0, len(want))
