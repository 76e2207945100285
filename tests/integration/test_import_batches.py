"""The JSONL import's chunked, batched path: the same summary and rejects, in the same
order, with batches stored in this thread or in the background."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEMPLATE
from tests.support.data import canonical, make_app
from tests.support.postgres import PostgresServer
from voicecdr.errors import StorageError
from voicecdr.ingest import files
from voicecdr.ingest.core import Ingestor, Item, Rejection, Summary
from voicecdr.ingest.fastjson import checked_chunks
from voicecdr.ingest.timebounds import TimeLimits
from voicecdr.storage import BULK_CACHE_MIB, AppStore, CdrWriter, Database, migrate


def mixed_file(path: Path) -> Path:
    """Valid records with, spread over several batches: bad JSON, invalid records, blank
    lines, an unknown app, repeats of earlier calls (same content and conflicting), and
    calls stored before the import."""
    lines: list[str] = []
    for i in range(40):
        lines.append(json.dumps(canonical(f"c{i}")))
        if i % 6 == 0:
            lines += ["{broken", "", "  ", json.dumps(canonical(f"bad{i}", phone="12a"))]
        if i % 9 == 0:
            lines.append(json.dumps(canonical(f"stranger{i}", appkey="nobody")))
        if i % 7 == 3:
            lines.append(json.dumps(canonical(f"c{i - 3}")))  # a duplicate
            lines.append(json.dumps(canonical(f"c{i - 2}", second=3)))  # a conflict
        if i % 11 == 5:
            lines.append(json.dumps(canonical("before", second=5)))  # conflicts with stored
    path.write_text("\n".join(lines) + "\n")
    return path


def import_with(
    url: str, source: Path, *, chunk_lines: int | None, batch: int, background: bool
) -> Any:
    """Import ``source`` into a database holding app1 and one call ("before"); chunked
    (the JSONL import's path) or, with ``chunk_lines`` None, Item by Item."""
    db = Database(url)
    try:
        make_app(db)
        Ingestor(AppStore(db), CdrWriter(db)).ingest(files.jsonl_items(_one_record(source.parent)))
        rejects: list[Rejection] = []
        summary = Summary(on_reject=rejects.append)
        ingestor = Ingestor(AppStore(db), CdrWriter(db), batch_size=batch, background=background)
        if chunk_lines is None:
            ingestor.ingest(files.jsonl_items(source), summary)
        else:
            chunks = checked_chunks(
                source, lambda _: None, TimeLimits().bounds(time.time()), chunk_lines
            )
            ingestor.ingest_chunks(chunks, summary)
    finally:
        db.close()
    return summary.accepted, summary.duplicates, [r.to_dict() for r in rejects]


def _one_record(directory: Path) -> Path:
    path = directory / "before.jsonl"
    path.write_text(json.dumps(canonical("before")) + "\n")
    return path


@pytest.fixture
def fresh_database(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], str]]:
    """Makes empty migrated databases of either kind, dropped at the end."""
    made: list[str] = []
    numbers = itertools.count()

    def make(kind: str) -> str:
        name = f"batches_{os.getpid()}_{next(numbers)}"
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path / (name + '.db')}"
            db = Database(url)
            try:
                migrate.upgrade(db)
            finally:
                db.close()
            return url
        server: PostgresServer = request.getfixturevalue("pg_server")
        made.append(name)
        return server.create_database(name, template=TEMPLATE)

    yield make
    if made:
        server = request.getfixturevalue("pg_server")
        for name in made:
            server.drop_database(name)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_chunks_and_background_change_nothing(
    tmp_path: Path, database: str, fresh_database: Callable[[str], str]
) -> None:
    source = mixed_file(tmp_path / "cdrs.jsonl")
    # The reference: Item by Item (as CSV and FreeSWITCH files go), in this thread.
    expected = import_with(
        fresh_database(database), source, chunk_lines=None, batch=4, background=False
    )
    accepted, duplicates, rejects = expected
    assert (accepted, duplicates) == (40, 6)
    errors = [e.partition(" (")[0] for r in rejects for e in r["errors"]]
    assert set(errors) == {
        "call_id: conflict: already stored with different content",
        "appkey: unknown app 'nobody'",
        "record: not valid JSON",
        "phone: must contain digits only",
    }
    # One line a chunk: the same batches; in the background too, the same summary in the
    # same order.
    for background in (False, True):
        url = fresh_database(database)
        got = import_with(url, source, chunk_lines=1, batch=4, background=background)
        assert got == expected, background
    # Other chunks end batches elsewhere, so conflicts are reported at other places
    # among the other rejections; what is reported is the same.
    for chunk_lines, batch, background in ((3, 4, False), (5, 2, True), (10_000, 9, True)):
        url = fresh_database(database)
        got = import_with(url, source, chunk_lines=chunk_lines, batch=batch, background=background)
        assert got[:2] == expected[:2]
        assert sorted(got[2], key=_index) == sorted(rejects, key=_index)


def _index(rejection: dict[str, Any]) -> int:
    return int(rejection["index"])


def test_an_error_storing_a_batch_in_a_thread_reaches_the_caller(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        make_app(db)
        broken = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
        broken.execute("DROP TABLE cdr_counts")
        broken.close()
        items = [Item(i, canonical(f"c{i}")) for i in range(5)]
        with pytest.raises(StorageError, match="store CDRs failed"):
            Ingestor(AppStore(db), CdrWriter(db), batch_size=2, background=True).ingest(items)
    finally:
        db.close()


def test_bulk_store_gives_the_sqlite_writer_a_bigger_page_cache(sqlite_url: str) -> None:
    for bulk, expected in ((False, -2000), (True, -BULK_CACHE_MIB * 1024)):
        db = Database(sqlite_url, bulk=bulk)
        try:
            with db.writer.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == expected
            with db.reader.connect() as conn:  # readers keep the default
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2000
        finally:
            db.close()


def test_an_import_into_sqlite_never_loads_the_postgresql_driver(
    tmp_path: Path, sqlite_url: str
) -> None:
    source = tmp_path / "cdrs.jsonl"
    source.write_text(json.dumps(canonical("c1")) + "\n{broken\n")
    db = Database(sqlite_url)
    make_app(db)
    db.close()
    script = (
        "import sys\n"
        "from voicecdr.cli import main\n"
        "try:\n"
        f"    main(['--database-url', {sqlite_url!r}, 'cdrs', 'import', {str(source)!r},"
        f" '--rejects', {str(tmp_path / 'r.jsonl')!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('psycopg' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert done.stderr.strip().splitlines()[-1] == "False", done.stderr
    assert json.loads(done.stdout)["accepted"] == 1
