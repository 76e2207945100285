"""``voicecdr watch`` as an operator runs it: killed with -9 at random moments while files
are appended to, restarted, and in the end every line is stored exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.acceptance.conftest import Cli, free_port
from tests.support import asterisk as ast
from tests.support.data import canonical
from tests.support.postgres import PostgresServer
from voicecdr.ingest.asterisk import AsteriskOptions, parse_line
from voicecdr.storage import Database

FILES = 3
LINES = 1500  # per file


def _line(i: int, f: int) -> bytes:
    return (json.dumps(canonical(f"f{f}-c{i}", second=i % 90)) + "\n").encode()


@dataclass(frozen=True)
class Totals:
    """What the test expects in the end, from the lines written."""

    call_ids: set[str]
    received: int
    duplicate: int
    rejected: int


@dataclass(frozen=True)
class Spool:
    """What the kill -9 test writes, and how ``watch`` is told to read it."""

    lines: Callable[[int], list[bytes]]  # file f's lines, a bad one and a repeat included
    path: Callable[[Path, int], Path]  # where file f is written (after any rotation)
    totals: Callable[[list[bytes]], Totals]
    args: tuple[str, ...] = ()


def _jsonl_lines(f: int) -> list[bytes]:
    lines = []
    for i in range(LINES):
        line = _line(i, f)
        if i % 97 == 5:
            line = b'{"call_id": "broken' + str(i).encode() + b"\n"  # rejected: not JSON
        if i % 101 == 7:
            line += line  # the same record twice: the second is a duplicate
        lines.append(line)
    return lines


def _jsonl_totals(lines: list[bytes]) -> Totals:
    good = [json.loads(x)["call_id"] for x in lines if not x.startswith(b'{"call_id": "broken')]
    return Totals(set(good), len(lines), len(good) - len(set(good)), len(lines) - len(good))


JSONL = Spool(_jsonl_lines, lambda spool, f: spool / f"cdrs-{f}.jsonl", _jsonl_totals)
_AST_CONF = ast.Settings(newcdrcolumns=True)
_AST_BAD = b"not a cdr_csv line"


def _asterisk_lines(f: int) -> list[bytes]:
    """Calls of one to three records (a fork), two calls' records mixed, in Master.csv."""
    start = int(time.time()) - 86_400
    calls = [ast.call(f"f{f}-c{i}", start + i, 1 + i % 3) for i in range(LINES // 2)]
    lines = []
    for i, text in enumerate(ast.interleaved(calls, _AST_CONF)):
        line = text.encode()
        if i % 97 == 5:
            lines.append(_AST_BAD + b"\n")  # rejected: not a cdr_csv line
        if i % 101 == 7:
            line += line  # the same record twice: the second is a duplicate
        lines.append(line)
    return lines


def _asterisk_totals(lines: list[bytes]) -> Totals:
    good = [x for x in lines if x != _AST_BAD]
    calls = {parse_line(x, AsteriskOptions()).call_id for x in good}
    repeats = len(good) - len(set(good))
    bad = len(lines) - len(good)
    return Totals(calls, len(calls) + repeats + bad, repeats, bad)  # type: ignore[arg-type]


def _master_csv(spool: Path, f: int) -> Path:
    """Master.csv, rotated as logrotate does (renamed away) before each new file."""
    if f:
        os.rename(spool / "Master.csv", spool / f"Master.csv.{f}")
    return spool / "Master.csv"


_AST_OPTIONS = ("--set", "service=notification", "--set", "country_code=91")
ASTERISK = Spool(
    _asterisk_lines, _master_csv, _asterisk_totals, ("--format", "asterisk", *_AST_OPTIONS)
)


def _appender(
    kind: Spool, spool: Path, rng: random.Random, written: list[bytes], done: threading.Event
) -> None:
    """Append every file's lines in random pieces (a line is often split over two writes,
    so the follower sees partial last lines), one file after another, with pauses."""
    for f in range(FILES):
        lines = kind.lines(f)
        data = b"".join(lines)
        written += lines
        with kind.path(spool, f).open("ab") as out:
            at = 0
            while at < len(data):
                step = rng.randint(1, 9000)
                out.write(data[at : at + step])
                out.flush()
                at += step
                time.sleep(rng.uniform(0, 0.01))
    done.set()


def _stored_call_ids(database_url: str) -> list[str]:
    db = Database(database_url)
    try:
        with db.reader.connect() as conn:
            return [r[0] for r in conn.execute(sa.text("SELECT call_id FROM cdrs"))]
    finally:
        db.close()


@pytest.mark.parametrize("kind", [JSONL, ASTERISK], ids=["jsonl", "asterisk"])
def test_kill_9_at_random_moments_stores_every_line_exactly_once(
    cli: Cli, tmp_path: Path, database_url: str, kind: Spool
) -> None:
    rng = random.Random(2025)
    cli.store_app("app1")
    spool = tmp_path / "spool"
    spool.mkdir()
    written: list[bytes] = []
    done = threading.Event()
    appender = threading.Thread(target=_appender, args=(kind, spool, rng, written, done))
    appender.start()
    # Small batches: many transactions for the kills to land in the middle of.
    command = cli.command("watch", "--interval", "0.02", "--batch", "40", *kind.args, str(spool))
    kills = 0
    try:
        deadline = time.monotonic() + 90
        while (not done.is_set() or kills < 6) and time.monotonic() < deadline:
            watch = subprocess.Popen(
                command, cwd=cli.cwd, env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            time.sleep(rng.uniform(0.8, 2.0))
            if watch.poll() is None:
                watch.send_signal(signal.SIGKILL)
                kills += 1
            _, err = watch.communicate(timeout=30)
            assert watch.returncode == -signal.SIGKILL, err.decode()
    finally:
        appender.join(timeout=60)
    assert done.is_set()
    assert kills >= 6

    final = cli("watch", "--once", *kind.args, str(spool), timeout=120)
    assert final.code == 0, final.err

    lines = b"".join(written).splitlines()
    expected = kind.totals(lines)
    stored = _stored_call_ids(database_url)
    assert sorted(stored) == sorted(expected.call_ids)  # every call, each once
    report = cli("cdrs", "sources", "--json").json()
    totals = {k: sum(r[k] for r in report) for k in ("received", "stored", "duplicate", "rejected")}
    # Every record was read exactly once: none re-read after a kill (it would count again).
    assert totals == {
        "received": expected.received,
        "stored": len(expected.call_ids),
        "duplicate": expected.duplicate,
        "rejected": expected.rejected,
    }
    assert all(r["balanced"] for r in report)
    kept = cli("cdrs", "rejects", "--limit", "1000", "--json").json()
    assert len(kept) == totals["rejected"]
    if kind is ASTERISK:  # each call stored whole, as `cdrs import` merges it: all duplicates
        files = sorted(spool.iterdir())
        again = cli("cdrs", "import", "--json", *kind.args, *map(str, files), timeout=120)
        assert (again.json()["accepted"], again.json()["rejected_total"]) == (
            0,
            expected.rejected,
        )
    print(f"{kills} kills, {len(lines)} lines")


def test_sigterm_stops_it_cleanly_with_a_summary_and_metrics_while_it_runs(
    cli: Cli, tmp_path: Path
) -> None:
    cli.store_app("app1")
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(b"".join(_line(i, 0) for i in range(20)) + b"not json\n")
    port = free_port()
    watch = subprocess.Popen(
        cli.command("watch", "--metrics-port", str(port), "--interval", "0.05", str(path)),
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
            except httpx.TransportError:
                text = ""
            if 'voicecdr_watch_records_total{outcome="stored"} 20.0' in text:
                break
            time.sleep(0.05)
        assert 'voicecdr_watch_records_total{outcome="read"} 21.0' in text
        assert 'voicecdr_watch_records_total{outcome="rejected"} 1.0' in text
        assert "voicecdr_watch_behind_bytes 0.0" in text
        with path.open("ab") as out:
            out.write(_line(20, 0)[:10])  # a partial line: not read, and no obstacle to stopping
        watch.send_signal(signal.SIGTERM)
        out_text, err = watch.communicate(timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 0, err.decode()
    summary = json.loads(out_text)
    assert (summary["read"], summary["stored"], summary["rejected"]) == (21, 20, 1)


def test_the_operator_commands_list_replay_and_reconcile(cli: Cli, tmp_path: Path) -> None:
    cli.store_app("app1")
    spool = tmp_path / "spool"
    spool.mkdir()
    late = json.dumps(canonical("c-late", appkey="late")).encode() + b"\n"
    (spool / "a.jsonl").write_bytes(_line(0, 0) + b"not json\n" + late + _line(1, 0))
    assert cli("watch", "--format", "nope", str(spool)).code == 2
    done = cli("watch", "--once", "--json", str(spool))
    assert done.code == 0, done.err
    assert (done.json()["stored"], done.json()["rejected"]) == (2, 2)

    kept = cli("cdrs", "rejects", "--json").json()
    assert [(r["file"], r["line"], r["record"]) for r in kept] == [
        (str(spool / "a.jsonl"), 2, "not json"),
        (str(spool / "a.jsonl"), 3, late.decode().rstrip("\n")),
    ]
    assert kept[1]["reason"] == "appkey: unknown app 'late'"
    assert cli("apps", "create", "--name", "L", "--appkey", "late").code == 0
    replayed = cli("cdrs", "replay", "--id", str(kept[1]["id"]), "--json")
    assert replayed.code == 0, replayed.err
    assert replayed.json() == {"stored": 1, "duplicates": 0, "still_rejected": 0}
    again = cli("cdrs", "replay", "--json")
    assert again.code == 1  # the line that is not JSON stays refused
    assert again.json() == {"stored": 0, "duplicates": 0, "still_rejected": 1}

    (row,) = cli("cdrs", "sources", "--json").json()
    assert row["source"] == str(spool)
    assert (row["received"], row["stored"], row["rejected"], row["balanced"]) == (4, 3, 1, True)
    later = cli("cdrs", "sources", "--from", "2999-01-01 00:00:00", "--json")
    assert later.json() == []


@pytest.mark.postgres
def test_a_database_outage_is_waited_out_and_nothing_is_lost_or_counted_twice(
    tmp_path: Path,
) -> None:
    pg = PostgresServer()  # its own server: the session's must not go down
    try:
        pg.start()
        cli = Cli(tmp_path, pg.create_database("voicecdr"))
        assert cli("db", "upgrade").code == 0
        assert cli("apps", "create", "--name", "A", "--appkey", "app1").code == 0
        path = tmp_path / "cdrs.jsonl"
        path.write_bytes(b"".join(_line(i, 0) for i in range(100)))
        watch = subprocess.Popen(
            cli.command("watch", "--interval", "0.05", "--batch", "20", str(path)),
            cwd=cli.cwd,
            env=cli.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_for(lambda: len(_stored_call_ids(pg.url("voicecdr"))) == 100)
            pg.halt()
            _append_bytes(path, b"".join(_line(i, 0) for i in range(100, 300)))
            time.sleep(1.5)  # watch meets the outage: it waits, it does not exit
            assert watch.poll() is None
            pg.resume()
            _wait_for(lambda: len(_stored_call_ids(pg.url("voicecdr"))) == 300)
            watch.send_signal(signal.SIGTERM)
            _, err = watch.communicate(timeout=30)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
        assert watch.returncode == 0, err.decode()
        assert b"trying again" in err
        (row,) = cli("cdrs", "sources", "--json").json()
        assert (row["received"], row["stored"], row["duplicate"]) == (300, 300, 0)
    finally:
        pg.stop()


def _append_bytes(path: Path, data: bytes) -> None:
    with path.open("ab") as out:
        out.write(data)


def _wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
