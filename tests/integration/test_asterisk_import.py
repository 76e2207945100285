"""Asterisk cdr_csv imports that go wrong, on SQLite and PostgreSQL: bad lines never stop
the lines after them, a straggler is a visible conflict (never a second call), and the
per-account copy of Master.csv stores nothing twice."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.support import asterisk as ast
from tests.support.data import make_app, stored_row
from voicecdr.ingest.asterisk import AsteriskOptions
from voicecdr.ingest.asterisk_calls import WINDOW
from voicecdr.ingest.importer import ImportResult, import_paths
from voicecdr.storage import Database, window_rows

T0 = 1_764_496_800  # 2025-11-30 10:00:00 UTC
ALL = ast.Settings(newcdrcolumns=True)
OPTIONS = AsteriskOptions.build(sets=["service=notification", "country_code=91"])


def run(db: Database, tmp_path: Path, *paths: Path) -> ImportResult:
    return import_paths(
        db, list(paths), fmt="asterisk", asterisk=OPTIONS, rejects_path=tmp_path / "rejects"
    )


def rejects(tmp_path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in (tmp_path / "rejects").read_bytes().splitlines()]


def test_bad_lines_are_rejected_with_file_and_line_and_the_rest_stored(
    db: Database, tmp_path: Path
) -> None:
    app = make_app(db).app
    master = tmp_path / "Master.csv"
    master.write_text(
        ast.answered(T0, linkedid="a").line(ALL)
        + '"app1","half a line\n'
        + ast.answered(T0, linkedid="b", accountcode="nobody").line(ALL)
        + ast.answered(T0, linkedid="c").line(ALL).replace('"ANSWERED"', '"LOST"')
        + ast.unanswered(T0 + 10, linkedid="d").line(ALL)
    )
    result = run(db, tmp_path, master)
    assert (result.summary.accepted, result.summary.duplicates) == (2, 0)
    assert [(r["line"], r["errors"]) for r in rejects(tmp_path)] == [
        (2, ["record: not a cdr_csv line (unexpected end of data)"]),
        (
            4,
            [
                "disposition: unknown 'LOST' (one of ANSWERED, NO ANSWER, BUSY, CONGESTION, "
                "FAILED, CANCEL)"
            ],
        ),
        (3, ["accountcode: unknown app 'nobody'"]),
    ]
    assert all(r["file"] == str(master) for r in rejects(tmp_path))
    assert sorted(r[0] for r in window_rows(db, app.id, 0, 2**31)) == [1, 2]


def test_a_straggler_after_the_window_is_a_conflict_not_a_second_call(
    db: Database, tmp_path: Path
) -> None:
    app = make_app(db).app
    others = WINDOW + 1  # other calls' lines between the call's two records
    master = tmp_path / "Master.csv"
    master.write_text(
        ast.answered(T0, linkedid="call", sequence=1).line(ALL)
        + "".join(ast.unanswered(T0 + i, linkedid=f"f{i}").line(ALL) for i in range(others))
        + ast.answered(T0 + 200, linkedid="call", sequence=9).line(ALL)
    )
    result = run(db, tmp_path, master)
    assert (result.summary.accepted, result.summary.rejected_total) == (others + 1, 1)
    [straggler] = rejects(tmp_path)
    assert straggler == {
        "index": others + 1,
        "call_id": "call",
        "errors": ["linkedid: conflict: already stored with different content"],
        "file": str(master),
        "line": others + 2,
    }
    assert len(list(window_rows(db, app.id, 0, 2**31))) == others + 1


def test_master_and_the_per_account_file_store_each_call_once(db: Database, tmp_path: Path) -> None:
    app = make_app(db).app
    make_app(db, "app2")
    calls = [
        ast.answered(T0, linkedid="x1", userfield="m1"),
        ast.unanswered(T0 + 5, linkedid="x2", accountcode="app2"),
        ast.answered(T0 + 9, linkedid="x3", userfield="m3"),
    ]
    master = tmp_path / "Master.csv"
    master.write_text("".join(c.line(ALL) for c in calls))
    account = tmp_path / "app1.csv"  # accountlogs=yes: app1's records again
    account.write_text("".join(c.line(ALL) for c in calls if c.accountcode == "app1"))
    result = run(db, tmp_path, master, account)
    assert result.summary.to_dict() == {"accepted": 3, "duplicates": 2, "rejected": []}
    rows = [stored_row(r) for r in window_rows(db, app.id, 0, 2**31)]
    assert sorted(r.messageid for r in rows) == ["m1", "m3"]
    assert run(db, tmp_path, master, account).summary.to_dict() == {
        "accepted": 0,
        "duplicates": 5,
        "rejected": [],
    }
