"""Faults of the database under a real ``voicecdr serve``: PostgreSQL stopped and restarted
under load, an SQLite file system gone read-only, a full disk.

What must hold in each: no answer is a 500 or a traceback (ours answer a 503 problem that
names the fault, the query API its ``internal`` envelope), every acknowledged record is
stored, nothing is corrupted, and the service recovers by itself once the fault is gone.

The SQLite faults are real file-system states, made with a small tmpfs (the tests run as
root, for whom ``chmod`` stops no write, so permissions would test nothing); where
``mount`` is not permitted those tests skip and say so.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from tests.acceptance.conftest import Cli, Server
from tests.support.data import canonical
from tests.support.postgres import PostgresServer
from voicecdr.api import QUERY_PATH

TOKEN = "fault-tests-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
QUERY = {
    "appkey": "app1",
    "secretkey": "secret1",
    "voiceType": "0",
    "start_time": "2019-09-09 00:00:00",
    "end_time": "2019-09-09 23:59:59",
    "page": "1",
    "page_size": "1",
}


def prepare(cli: Cli) -> None:
    for args in (
        ("db", "upgrade"),
        ("apps", "create", "--name", "A", "--appkey", "app1", "--secretkey", "secret1"),
        ("apps", "update", "app1", "--rate-limit", "1000"),
    ):
        done = cli(*args)
        assert done.code == 0, done.err
    cli.env["VOICECDR_INGEST_TOKEN"] = TOKEN
    cli.env["VOICECDR_MAX_AGE_DAYS"] = "0"


def batch(prefix: str, size: int) -> list[dict[str, Any]]:
    return [canonical(f"{prefix}-{i}", messageid=f"{prefix}-{i}") for i in range(size)]


def post(client: httpx.Client, records: list[dict[str, Any]]) -> httpx.Response:
    return client.post("/v1/cdrs", content=orjson.dumps(records), headers=BEARER)


def acknowledged(answer: httpx.Response, records: list[dict[str, Any]]) -> bool:
    if answer.status_code != 200:
        return False
    summary = answer.json()
    return bool(summary["accepted"] + summary["duplicates"] == len(records))


def assert_clean_problem(answer: httpx.Response, fault: str) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "5"
    detail = answer.json()["detail"]
    assert fault in detail, detail
    assert "nothing was stored" in detail
    assert "Traceback" not in answer.text


# -- PostgreSQL stopped and restarted under load ------------------------------------------


@dataclass
class Observed:
    """What the load loops saw: (sent, answered, status, detail or slug), time.monotonic()."""

    acked: set[str] = field(default_factory=set)
    ingest: list[tuple[float, float, int, str]] = field(default_factory=list)
    query: list[tuple[float, float, int, str]] = field(default_factory=list)
    ready: list[tuple[float, float, int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def ingest_loop(url: str, stop: threading.Event, seen: Observed) -> None:
    with httpx.Client(base_url=url, timeout=15) as client:
        for n in itertools.count():
            if stop.is_set():
                return
            records = batch(f"pg{n}", 20)
            sent = time.monotonic()
            try:
                answer = post(client, records)
            except httpx.TransportError as exc:
                seen.errors.append(f"ingest transport: {exc!r}")
                continue
            detail = answer.json().get("detail", "") if answer.status_code != 200 else ""
            seen.ingest.append((sent, time.monotonic(), answer.status_code, detail))
            if acknowledged(answer, records):
                seen.acked.update(r["call_id"] for r in records)
            time.sleep(0.02)


def query_loop(url: str, stop: threading.Event, seen: Observed) -> None:
    with httpx.Client(base_url=url, timeout=15) as client:
        while not stop.is_set():
            try:
                sent = time.monotonic()
                answer = client.post(QUERY_PATH, data=QUERY)
                slug = answer.json().get("error", "ok")
                seen.query.append((sent, time.monotonic(), answer.status_code, slug))
                sent = time.monotonic()
                ready = client.get("/readyz").status_code
                seen.ready.append((sent, time.monotonic(), ready, ""))
            except (httpx.TransportError, ValueError) as exc:
                seen.errors.append(f"query: {exc!r}")
            time.sleep(0.05)


Event = tuple[float, float, int, str]


def first_after(events: list[Event], since: float, ok: tuple[int, str]) -> float | None:
    """Seconds from ``since`` to the answer of the first request sent after it that got
    ``ok`` (status, detail)."""
    return next((e[1] - since for e in events if e[0] > since and e[2:] == ok), None)


def during(events: list[Event], start: float, end: float) -> list[Event]:
    """Requests sent and answered within [start, end]."""
    return [e for e in events if start < e[0] and e[1] < end]


@pytest.mark.postgres
def test_postgres_stopped_and_restarted_under_load(tmp_path: Path) -> None:
    pg = PostgresServer()  # its own server: the session's must not go down
    try:
        pg.start()
        cli = Cli(tmp_path, pg.create_database("voicecdr"))
        prepare(cli)
        server = Server(cli)
        seen = Observed()
        stop = threading.Event()
        loops = [
            threading.Thread(target=loop, args=(server.url, stop, seen))
            for loop in (ingest_loop, query_loop)
        ]
        try:
            server.wait_ready()
            for loop in loops:
                loop.start()
            time.sleep(1.5)
            pg.halt()
            down = time.monotonic()
            time.sleep(3)
            # The server accepts connections a moment before pg_ctl returns: the outage
            # is over when the restart begins, for the assertions below.
            restarting = time.monotonic()
            pg.resume()
            up = time.monotonic()
            deadline = up + 15
            while time.monotonic() < deadline and not all(
                first_after(events, up, ok) is not None
                for events, ok in (
                    (seen.ingest, (200, "")),
                    (seen.query, (200, "ok")),
                    (seen.ready, (200, "")),
                )
            ):
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            stop.set()
            for loop in loops:
                if loop.is_alive():
                    loop.join()
            server.stop()
        logs = server.logs()
        with psycopg.connect(cli.env["VOICECDR_DATABASE_URL"]) as conn:
            stored = {row[0] for row in conn.execute("SELECT call_id FROM cdrs")}
    finally:
        pg.stop()

    assert seen.errors == [], seen.errors[:5]
    # Every failure was a handled one: nothing reached the last-resort handler.
    assert "unhandled error" not in logs
    # Never a 5xx but the ingest 503 naming the fault; the query API always HTTP 200.
    assert {e[2] for e in seen.ingest} <= {200, 503}
    assert {e[2] for e in seen.query} == {200}
    assert {e[3] for e in seen.query} <= {"ok", "internal"}
    outage = during(seen.ingest, down, restarting)
    assert outage, "no ingest request was answered during the outage"
    for _, _, status, detail in outage:
        assert status == 503, outage
        assert "database server" in detail, detail
        assert "nothing was stored" in detail
    assert {e[3] for e in during(seen.query, down, restarting)} == {"internal"}
    assert {e[2] for e in during(seen.ready, down, restarting)} == {503}
    # Recovery by itself (stale pooled connections are replaced: pool_pre_ping).
    recovery = {
        "ingest": first_after(seen.ingest, up, (200, "")),
        "query": first_after(seen.query, up, (200, "ok")),
        "readyz": first_after(seen.ready, up, (200, "")),
    }
    assert all(r is not None and r < 5 for r in recovery.values()), recovery
    # Every acknowledged record is stored: lost = 0.
    assert len(seen.acked) > 0
    assert seen.acked - stored == set()
    print(
        f"\nPostgreSQL outage: {len(seen.ingest)} batches, {len(seen.acked)} records "
        f"acknowledged, {len(seen.acked - stored)} lost; {len(outage)} batches refused "
        f"with 503 while down; recovery after resume (s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in recovery.items() if v is not None)
    )


# -- SQLite on a read-only or full file system --------------------------------------------


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({mounted.stderr.strip()}); needs root/CAP_SYS_ADMIN"
        )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount(where: Path, option: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{option}", str(where)], check=True)


def integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def stored_call_ids(path: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return {row[0] for row in conn.execute("SELECT call_id FROM cdrs")}


def test_read_only_sqlite_keeps_reads_and_refuses_writes_clearly(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "16m") as disk:
        db = disk / "voicecdr.db"
        cli = Cli(tmp_path, f"sqlite:///{db}")
        prepare(cli)
        first = Server(cli)
        try:
            first.wait_ready()
            with httpx.Client(base_url=first.url, timeout=15) as client:
                records = batch("ro", 50)
                assert acknowledged(post(client, records), records)
            # A file system that turns read-only (ext4 errors=remount-ro, a full-disk
            # guard) does so under a running server, whose WAL and shared-memory files
            # stay. Linux refuses to remount read-only while a file is open for writing,
            # so the server is killed (no clean close that would remove those files)
            # and a new one started on the now read-only file system.
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.wait(timeout=10)
        finally:
            first.stop()
        remount(disk, "ro")
        server = Server(cli)
        try:
            server.wait_ready()
            with httpx.Client(base_url=server.url, timeout=15) as client:
                read = client.post(QUERY_PATH, data=QUERY)
                assert read.status_code == 200
                assert read.json()["code"] == "1", read.text
                assert read.json()["info"]["total"] == 50
                assert client.get("/readyz").status_code == 200
                for _ in range(3):
                    assert_clean_problem(post(client, batch("ro-late", 5)), "database is read-only")
            imported = tmp_path / "more.jsonl"
            imported.write_bytes(b"\n".join(orjson.dumps(r) for r in batch("ro-cli", 3)))
            result = cli("cdrs", "import", str(imported))
            assert result.code != 0
            assert "database is read-only" in result.err, result.err
            assert "Traceback" not in result.err
        finally:
            server.stop()
        assert "unhandled error" not in server.logs()
        remount(disk, "rw")
        assert integrity(db) == "ok"
        assert stored_call_ids(db) == {f"ro-{i}" for i in range(50)}


def test_full_disk_is_a_clear_error_and_recovers(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        db = disk / "voicecdr.db"
        cli = Cli(tmp_path, f"sqlite:///{db}")
        prepare(cli)
        ballast = disk / "ballast"
        ballast.write_bytes(b"\0" * (1024 * 1024))
        server = Server(cli, "--no-workers")
        acked: set[str] = set()
        try:
            server.wait_ready()
            with httpx.Client(base_url=server.url, timeout=15) as client:
                full = None
                for n in range(200):
                    records = batch(f"full{n}", 100)
                    answer = post(client, records)
                    if answer.status_code != 200:
                        full = answer
                        break
                    assert acknowledged(answer, records)
                    acked.update(r["call_id"] for r in records)
                assert full is not None, "the disk never filled"
                assert_clean_problem(full, "database or disk is full")
                assert len(acked) > 0
                # Still full: the CLI says so too, plainly.
                imported = tmp_path / "more.jsonl"
                imported.write_bytes(b"\n".join(orjson.dumps(r) for r in batch("cli", 200)))
                result = cli("cdrs", "import", str(imported))
                assert result.code != 0
                assert "database or disk is full" in result.err, result.err
                assert "Traceback" not in result.err
                # Reads go on while the disk is full.
                read = client.post(QUERY_PATH, data=QUERY).json()
                assert read["info"]["total"] == len(acked), read
                assert client.get("/readyz").status_code == 200
                ballast.unlink()
                records = batch("after", 100)
                assert acknowledged(post(client, records), records)
                acked.update(r["call_id"] for r in records)
        finally:
            server.stop()
        assert "unhandled error" not in server.logs()
        assert integrity(db) == "ok"
        assert acked <= stored_call_ids(db)
        print(f"\ndisk full after {len(acked) - 100} records acknowledged; lost 0")
