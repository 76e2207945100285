"""``watch --format asterisk`` against real files and databases: a call's records held
until it is complete (the window, or its file idle), then stored as one call exactly as
``cdrs import`` stores it; stragglers and bad lines kept, visible and replayable;
Master.csv rotated in the cdr-csv directory, the per-account files not read twice."""

from __future__ import annotations

import os
import time
from pathlib import Path
from threading import Event

import sqlalchemy as sa

from tests.support import asterisk as ast
from tests.support.data import make_app
from voicecdr.ingest.asterisk import AsteriskOptions
from voicecdr.ingest.importer import import_paths, import_source
from voicecdr.ingest.replay import replay
from voicecdr.ingest.watch import Watcher
from voicecdr.storage import Database, SpoolStore

CONF = ast.Settings(newcdrcolumns=True)
OPTIONS = AsteriskOptions.build(sets=["service=notification", "country_code=91"])
START = int(time.time()) - 86_400


def _watcher(db: Database, *paths: Path, batch: int = 5000) -> Watcher:
    return Watcher(db, paths, "asterisk", batch=batch, asterisk=OPTIONS)


def _lines(*records: ast.Record) -> bytes:
    return "".join(r.line(CONF) for r in records).encode()


def _rows(db: Database) -> dict[str, tuple[object, ...]]:
    query = "SELECT call_id, placed_at, answered_at, ended_at, billsec, connected FROM cdrs"
    with db.reader.connect() as conn:
        return {r[0]: tuple(r[1:]) for r in conn.execute(sa.text(query))}


def _totals(db: Database, source: str | None = None) -> tuple[int, int, int, int]:
    hours = SpoolStore(db).counts(source=source)
    assert all(h.received == h.stored + h.duplicate + h.rejected for h in hours)
    return (
        sum(h.received for h in hours),
        sum(h.stored for h in hours),
        sum(h.duplicate for h in hours),
        sum(h.rejected for h in hours),
    )


def _idle(path: Path) -> None:
    """As if its writer stopped a while ago (rather than waiting for it)."""
    past = time.time() - 10
    os.utime(path, (past, past))


def test_a_call_is_held_until_its_file_is_idle_then_stored_whole(
    db: Database, tmp_path: Path
) -> None:
    make_app(db)
    path = tmp_path / "Master.csv"
    first, second = ast.call("pbx-1", START, 2)
    path.write_bytes(_lines(first))
    watcher = _watcher(db, path)
    assert not watcher.poll()  # just written: the call may have more records
    with path.open("ab") as out:
        out.write(_lines(second))
    assert not watcher.poll()
    assert _rows(db) == {}
    _idle(path)
    assert watcher.poll()
    (mark,) = SpoolStore(db).marks_at(str(path), str(path))
    assert mark.offset == path.stat().st_size
    watcher.run(Event(), once=True)  # nothing more; closes the file
    stored = _rows(db)
    assert list(stored) == ["pbx-1"]
    assert stored["pbx-1"][3:] == (60, True)  # the answered leg's billsec: one call
    # cdrs import of the same file stores the same call: a duplicate.
    again = import_paths(db, [path], fmt="asterisk", asterisk=OPTIONS)
    assert (again.summary.accepted, again.summary.duplicates) == (0, 1)
    assert _totals(db, str(path)) == (1, 1, 0, 0)
    assert _totals(db, import_source(path)) == (1, 0, 1, 0)  # the import counts apart


def test_a_straggler_after_its_call_was_stored_is_a_visible_conflict(
    db: Database, tmp_path: Path
) -> None:
    make_app(db)
    path = tmp_path / "Master.csv"
    legs = ast.call("pbx-2", START, 3)
    path.write_bytes(_lines(*legs[:2]))
    _watcher(db, path).run(Event(), once=True)  # --once: the end of the file ends the call
    with path.open("ab") as out:
        out.write(_lines(legs[2]))
    _watcher(db, path).run(Event(), once=True)
    (kept,) = SpoolStore(db).rejects()
    assert kept.reason == "linkedid: conflict: already stored with different content"
    assert (kept.file, kept.line, kept.call_id) == (str(path), 3, "pbx-2")
    assert kept.raw.endswith(_lines(legs[2]).rstrip(b"\n"))
    assert _totals(db) == (2, 1, 0, 1)


def test_a_bad_line_and_a_refused_call_are_kept_and_replayable(
    db: Database, tmp_path: Path
) -> None:
    make_app(db)
    path = tmp_path / "Master.csv"
    late = ast.call("pbx-late", START + 5, 2, accountcode="late")
    path.write_bytes(_lines(*ast.call("pbx-3", START, 1)) + b'"app1","broken"\n' + _lines(*late))
    _watcher(db, path, batch=1).run(Event(), once=True)
    assert list(_rows(db)) == ["pbx-3"]
    bad, refused = SpoolStore(db).rejects()
    assert (bad.line, bad.reason) == (
        2,
        "record: has 2 columns; cdr_csv writes 16 to 21 (see docs/asterisk.md#4-column-layouts)",
    )
    assert (refused.line, refused.call_id) == (3, "pbx-late")
    assert refused.reason == "accountcode: unknown app 'late'"
    assert _totals(db) == (3, 1, 0, 2)

    make_app(db, "late")
    summary = replay(db)
    assert (summary.accepted, summary.rejected_total) == (1, 1)  # the broken line stays
    assert sorted(_rows(db)) == ["pbx-3", "pbx-late"]
    assert _rows(db)["pbx-late"][3:] == (60, True)  # both records, merged again
    assert [r.line for r in SpoolStore(db).rejects()] == [2]
    assert _totals(db) == (3, 2, 0, 1)


def test_master_csv_rotated_in_the_cdr_csv_directory_and_account_files_not_read(
    db: Database, tmp_path: Path
) -> None:
    make_app(db)
    spool = tmp_path / "cdr-csv"
    spool.mkdir()
    master = spool / "Master.csv"
    calls = [ast.call(f"pbx-{i}", START + i, 1 + i % 3) for i in range(30)]
    # Asterisk writes a call's records together: rotation falls between calls.
    first, late, after = (ast.interleaved(calls[a:b], CONF) for a, b in ((0, 8), (8, 16), (16, 30)))
    master.write_bytes("".join(first).encode())
    (spool / "app1.csv").write_bytes("".join(first).encode())  # accountlogs=yes: the same again
    watcher = _watcher(db, spool, batch=4)
    watcher.poll()
    os.rename(master, spool / "Master.csv.1")  # logrotate's create
    with (spool / "Master.csv.1").open("ab") as out:
        out.write("".join(late).encode())  # Asterisk had not reopened it yet
    master.write_bytes("".join(after).encode())
    watcher.run(Event(), once=True)
    assert sorted(_rows(db)) == sorted(f"pbx-{i}" for i in range(30))
    assert _totals(db) == (30, 30, 0, 0)
    assert import_paths(db, [spool / "Master.csv.1", master], fmt="asterisk", asterisk=OPTIONS)
    again = import_paths(db, [spool / "Master.csv.1", master], fmt="asterisk", asterisk=OPTIONS)
    assert (again.summary.accepted, again.summary.duplicates) == (0, 30)
