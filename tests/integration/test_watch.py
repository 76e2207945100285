"""The follower behind ``voicecdr watch``: partial lines, rotation (rename, copytruncate),
rejects kept and replayed, directories, CSV and FreeSWITCH files; on both databases."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from threading import Event

import sqlalchemy as sa

from tests.support import freeswitch
from tests.support.data import canonical, make_app
from voicecdr.ingest.replay import replay
from voicecdr.ingest.watch import Watcher
from voicecdr.storage import Database, SpoolStore


def _line(call_id: str, **extra: object) -> bytes:
    return (json.dumps(canonical(call_id, **extra)) + "\n").encode()


def _lines(prefix: str, n: int) -> bytes:
    return b"".join(_line(f"{prefix}{i}") for i in range(n))


def _once(db: Database, *paths: Path, fmt: str | None = None, batch: int = 3) -> Watcher:
    watcher = Watcher(db, paths, fmt, batch=batch)
    watcher.run(Event(), once=True)
    return watcher


def _stored(db: Database) -> list[str]:
    with db.reader.connect() as conn:
        return sorted(r[0] for r in conn.execute(sa.text("SELECT call_id FROM cdrs")))


def _totals(db: Database) -> dict[str, int]:
    hours = SpoolStore(db).counts()
    assert all(h.received == h.stored + h.duplicate + h.rejected for h in hours)
    names = ("received", "stored", "duplicate", "rejected")
    return {n: sum(getattr(h, n) for h in hours) for n in names}


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as out:
        out.write(data)


def test_a_partial_last_line_is_consumed_once_complete(db: Database, tmp_path: Path) -> None:
    make_app(db, "app1")
    path = tmp_path / "cdrs.jsonl"
    last = _line("c2")
    path.write_bytes(_lines("c", 2) + last[:25])
    _once(db, path)
    assert _stored(db) == ["c0", "c1"]
    assert _totals(db)["received"] == 2
    _append(path, last[25:])
    _once(db, path)
    assert _stored(db) == ["c0", "c1", "c2"]
    assert _totals(db) == {"received": 3, "stored": 3, "duplicate": 0, "rejected": 0}


def test_renamed_away_file_is_read_to_its_end_then_the_new_one(
    db: Database, tmp_path: Path
) -> None:
    make_app(db, "app1")
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(_lines("a", 4))
    watcher = Watcher(db, [path], batch=3)
    assert watcher.poll()
    os.rename(path, tmp_path / "cdrs.jsonl.1")
    _append(tmp_path / "cdrs.jsonl.1", _lines("late", 2))  # its writer had not reopened yet
    path.write_bytes(_lines("b", 2))
    assert watcher.poll()
    _append(tmp_path / "cdrs.jsonl.1", _lines("later", 1))
    watcher.run(Event(), once=True)
    expected = [*(f"a{i}" for i in range(4)), "b0", "b1", "late0", "late1", "later0"]
    assert _stored(db) == sorted(expected)
    assert _totals(db) == {"received": 9, "stored": 9, "duplicate": 0, "rejected": 0}


def test_after_a_restart_a_file_rotated_meanwhile_is_found_beside_its_path(
    db: Database, tmp_path: Path
) -> None:
    make_app(db, "app1")
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(_lines("a", 3))
    _once(db, path)
    _append(path, _lines("x", 2))  # written while watch was down, then rotated
    os.rename(path, tmp_path / "cdrs.jsonl.1")
    path.write_bytes(_lines("b", 2))
    _once(db, path)
    assert _stored(db) == ["a0", "a1", "a2", "b0", "b1", "x0", "x1"]
    assert _totals(db)["received"] == 7  # nothing read twice


def test_copytruncate_starts_the_same_file_again_from_its_start(
    db: Database, tmp_path: Path
) -> None:
    make_app(db, "app1")
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(_lines("a", 5))
    _once(db, path)
    shutil.copyfile(path, tmp_path / "cdrs.jsonl.1")
    with path.open("r+b") as handle:
        handle.truncate(0)
    _append(path, _lines("b", 2))  # shorter than before: seen by its size
    _once(db, path)
    with path.open("r+b") as handle:
        handle.truncate(0)
    _append(path, _lines("longer-c", 9))  # past the old offset at once: seen by its first bytes
    _once(db, path)
    assert _stored(db) == sorted(
        [*(f"a{i}" for i in range(5)), "b0", "b1", *(f"longer-c{i}" for i in range(9))]
    )
    assert _totals(db) == {"received": 16, "stored": 16, "duplicate": 0, "rejected": 0}


def test_bad_lines_are_kept_with_their_reasons_never_block_and_replay(
    db: Database, tmp_path: Path
) -> None:
    make_app(db, "app1")
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(
        _line("c0")
        + b"not json\n"
        + _line("c1", appkey="later")
        + _line("c0", second=5)  # the same call, other content: a conflict
        + _line("c2")
        + _line("c0")  # the same call again: a duplicate
    )
    _once(db, path, batch=2)
    assert _stored(db) == ["c0", "c2"]
    spool = SpoolStore(db)
    kept = spool.rejects()
    assert [(r.line, r.call_id, r.reason.split(" (")[0]) for r in kept] == [
        (2, None, "record: not valid JSON"),
        (3, "c1", "appkey: unknown app 'later'"),
        (4, "c0", "call_id: conflict: already stored with different content"),
    ]
    assert kept[1].raw == _line("c1", appkey="later").rstrip(b"\n")
    assert _totals(db) == {"received": 6, "stored": 2, "duplicate": 1, "rejected": 3}

    make_app(db, "later")  # the cause fixed: the kept record goes in
    summary = replay(db)
    assert (summary.accepted, summary.rejected_total) == (1, 2)
    assert _stored(db) == ["c0", "c1", "c2"]
    assert [r.line for r in spool.rejects()] == [2, 4]
    assert _totals(db) == {"received": 6, "stored": 3, "duplicate": 1, "rejected": 2}
    assert (replay(db).accepted, _totals(db)["rejected"]) == (0, 2)  # still refused: kept


def test_a_directory_picks_up_new_files_and_a_restart_reads_none_again(
    db: Database, tmp_path: Path
) -> None:
    make_app(db, "app1")
    spool = tmp_path / "json_cdr"
    (spool / "2019").mkdir(parents=True)
    for n, uuid in enumerate(["u1", "u2"]):
        (spool / f"{uuid}.cdr.json").write_bytes(json.dumps(freeswitch.cdr(uuid)).encode())
        (spool / "2019" / f"d{n}.jsonl").write_bytes(_lines(f"d{n}-", 2))
    (spool / "notes.txt").write_text("not a CDR format: left alone\n")
    _once(db, spool)
    (spool / "u3.cdr.json").write_bytes(json.dumps(freeswitch.cdr("u3")).encode())
    (spool / "u1.cdr.json").unlink()  # the operator moves ingested files away
    (spool / "bad.cdr.json").write_bytes(b"{not json")
    _once(db, spool)
    assert _stored(db) == ["d0-0", "d0-1", "d1-0", "d1-1", "u1", "u2", "u3"]
    assert _totals(db) == {"received": 8, "stored": 7, "duplicate": 0, "rejected": 1}
    (kept,) = SpoolStore(db).rejects()
    assert (kept.format, kept.raw) == ("freeswitch", b"{not json")


def test_csv_resumes_with_its_header_and_reads_a_quoted_record_once_it_ends(
    db: Database, tmp_path: Path
) -> None:
    make_app(db, "app1")
    path = tmp_path / "cdrs.csv"
    header = "call_id,appkey,service,messageid,phone,country_code,show_phone,time,second,connected"

    def row(call_id: str, messageid: str = "m") -> str:
        when = "2019-09-09T09:00:00+08:00"
        return f'{call_id},app1,group_call,"{messageid}",810022458,91,085,{when},0,false\n'

    path.write_text(header + "\n" + row("c0") + row("c1"))
    _once(db, path, batch=1)
    text = row("c2", "two\nlines")
    _append(path, text[:60].encode())  # the record's first line only
    _once(db, path)
    assert _stored(db) == ["c0", "c1"]
    _append(path, text[60:].encode() + row("c3").encode())
    _once(db, path)
    # One record of two lines (refused, as by `cdrs import`, for its line break), not two.
    assert _stored(db) == ["c0", "c1", "c3"]
    (kept,) = SpoolStore(db).rejects()
    assert (kept.line, kept.reason) == (5, "messageid: must not contain control characters")
    assert kept.raw == (header + "\n" + text).encode()
    assert _totals(db) == {"received": 4, "stored": 3, "duplicate": 0, "rejected": 1}


def test_stored_freeswitch_files_move_to_the_done_directory(db: Database, tmp_path: Path) -> None:
    make_app(db, "app1")
    spool, done = tmp_path / "json_cdr", tmp_path / "stored"
    (spool / "sub").mkdir(parents=True)
    (spool / "u1.cdr.json").write_bytes(json.dumps(freeswitch.cdr("u1")).encode())
    (spool / "sub" / "u2.cdr.json").write_bytes(json.dumps(freeswitch.cdr("u2")).encode())
    (spool / "bad.cdr.json").write_bytes(b"{not json")
    Watcher(db, [spool], done_dir=done).run(Event(), once=True)
    assert _stored(db) == ["u1", "u2"]
    moved = sorted(p.relative_to(done).as_posix() for p in done.rglob("*.json"))
    assert moved == ["bad.cdr.json", "sub/u2.cdr.json", "u1.cdr.json"]  # the reject is kept
    assert list(spool.rglob("*.json")) == []
    assert _totals(db) == {"received": 3, "stored": 2, "duplicate": 0, "rejected": 1}
