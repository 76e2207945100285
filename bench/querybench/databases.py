"""The databases under test: a fresh SQLite file and a fresh PostgreSQL database.

Each is set up the product's way (Alembic schema via ``storage.upgrade``, apps via
``voicecdr.apps.create_app``), then loaded through the product's own write path
(``CdrWriter.store`` in batches of ``LOAD_BATCH``, so whatever the storage layer derives
from the rows, such as bucket counts, idempotency keys and day partitions, is there as
ingest would leave it), then analyzed. :class:`RawQueries` is the
baseline: the PageReader's query as plain SQL on the raw driver, in the same kind of snapshot,
with the driver's defaults (psycopg prepares a statement from its sixth execution).
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol

import psycopg

from voicecdr import apps, storage

from .dataset import SECRETKEY, TIMEZONE, Dataset
from .workload import Case, PageResult, Target

LOAD_BATCH = 5_000

REPO_ROOT = Path(__file__).resolve().parents[2]
DATABASES = ("sqlite", "postgresql")
# Asked for by name only (``--databases postgresql,citus``): it needs Citus installed.
CITUS = "citus"


def each_database(names: Sequence[str], prefix: str) -> Iterator[tuple[str, Path, Any]]:
    """Each of ``names`` with a work directory of its own and where its databases are
    made: the throwaway PostgreSQL server, or for ``citus`` a throwaway Citus cluster
    (coordinator + 2 workers, ``tests/support/citus.py``); None for SQLite. Each starts
    once and stops when the loop ends."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, contextlib.ExitStack() as stack:
        servers: dict[str, Any] = {}
        if "postgresql" in names or CITUS in names:
            sys.path.insert(0, str(REPO_ROOT))  # tests.support is not part of the package
        if "postgresql" in names:
            from tests.support.postgres import running

            servers["postgresql"] = stack.enter_context(running())
        if CITUS in names:
            from tests.support import citus

            servers[CITUS] = stack.enter_context(citus.running())
        for name in names:
            work = Path(tmp) / name
            work.mkdir()
            yield name, work, servers.get(name)


_SELECT_LIST = ", ".join(column.name for column in storage.ROW_COLUMNS)


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What sqlite3 and psycopg connections have in common, as used here."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LoadTimes:
    schema_s: float  # migrations and apps, through the product
    insert_s: float  # bulk insert of every CDR, raw driver
    analyze_s: float

    def __str__(self) -> str:
        return (
            f"schema+apps {self.schema_s:.1f} s, insert {self.insert_s:.1f} s, "
            f"analyze {self.analyze_s:.1f} s"
        )


class Database(ABC):
    name: ClassVar[str]
    placeholder: ClassVar[str]  # the driver's parameter marker
    begin_sql: ClassVar[str]  # the snapshot the PageReader reads a page in

    def __init__(self, url: str) -> None:
        self.url = url

    @abstractmethod
    def connect(self) -> Connection:
        """A raw driver connection in autocommit mode."""

    @abstractmethod
    def version(self) -> str: ...

    @abstractmethod
    def _analyze(self) -> None: ...

    def leftovers(self) -> list[Path]:
        """Files the server creates outside the database itself."""
        return []

    def cleanup(self) -> None:
        for path in self.leftovers():
            path.unlink(missing_ok=True)

    def prepare(self, dataset: Dataset) -> LoadTimes:
        started = time.perf_counter()
        app_ids = self._schema_and_apps(dataset)
        schema_done = time.perf_counter()
        db = storage.Database(self.url)
        try:
            writer = storage.CdrWriter(db)
            for lo in range(0, len(dataset.cdrs), LOAD_BATCH):
                batch = dataset.cdrs[lo : lo + LOAD_BATCH]
                writer.store([(app_ids[cdr.appkey], cdr) for cdr in batch], now=dataset.now)
        finally:
            db.close()
        inserted = time.perf_counter()
        self._analyze()
        done = time.perf_counter()
        return LoadTimes(schema_done - started, inserted - schema_done, done - inserted)

    def _schema_and_apps(self, dataset: Dataset) -> dict[str, int]:
        db = storage.Database(self.url)
        try:
            storage.upgrade(db)
            return {key: self._create_app(storage.AppStore(db), key) for key in dataset.appkeys}
        finally:
            db.close()

    @staticmethod
    def _create_app(store: storage.AppStore, appkey: str) -> int:
        issued = apps.create_app(
            store,
            name=f"Bench {appkey}",
            appkey=appkey,
            secretkey=SECRETKEY,
            default_timezone=TIMEZONE,
            rate_limit=apps.MAX_RATE_LIMIT,  # the limiter runs, but never refuses
        )
        return issued.app.id


class SqliteDatabase(Database):
    name = "sqlite"
    placeholder = "?"
    begin_sql = "BEGIN"

    def __init__(self, path: Path) -> None:
        super().__init__(f"sqlite:///{path}")
        self.path = path

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None)

    def version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    def _analyze(self) -> None:
        with contextlib.closing(self.connect()) as conn:
            conn.execute("ANALYZE")
            # Fold the WAL into the file so readers do not wade through a huge WAL.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def leftovers(self) -> list[Path]:
        """The rate-limit sidecar the server keeps in /dev/shm (or the temp dir)."""
        state = storage.default_state_path(str(self.path))
        return [state.with_name(state.name + end) for end in ("", "-wal", "-shm", "-journal")]


class PostgresDatabase(Database):
    name = "postgresql"
    placeholder = "%s"
    begin_sql = "BEGIN ISOLATION LEVEL REPEATABLE READ"

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)

    def version(self) -> str:
        with self.connect() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0].split()[0] if row else '?'}"

    def _analyze(self) -> None:
        # VACUUM too: it sets the visibility map, as autovacuum would have long since done
        # on a live system, so COUNT can use an index-only scan.
        with self.connect() as conn:
            conn.execute("VACUUM (ANALYZE)")


class CitusDatabase(PostgresDatabase):
    """A database on a Citus coordinator, distributed by ``storage.upgrade``."""

    name = CITUS

    def version(self) -> str:
        with self.connect() as conn:
            row = conn.execute(
                "SELECT current_setting('server_version'), "
                "(SELECT extversion FROM pg_extension WHERE extname = 'citus'), "
                "(SELECT count(*) FROM pg_dist_node WHERE groupid > 0)"
            ).fetchone()
        assert row is not None
        return f"PostgreSQL {row[0].split()[0]}, Citus {row[1]}, {row[2]} workers"


@contextlib.contextmanager
def opened(name: str, workdir: Path) -> Iterator[Database]:
    """A fresh, empty database of kind ``name``; PostgreSQL runs only inside this block."""
    if name == "sqlite":
        yield SqliteDatabase(workdir / "bench.db")
        return
    sys.path.insert(0, str(REPO_ROOT))  # tests.support is not part of the installed package
    from tests.support.postgres import running

    with running() as server:
        yield PostgresDatabase(server.create_database("voicecdr_bench"))


class RawQueries:
    """The baseline: the PageReader's count and page queries as plain SQL, one snapshot each."""

    def __init__(self, database: Database) -> None:
        self._conn = database.connect()
        self._begin = database.begin_sql
        self._p = p = database.placeholder
        where = f"app_id = {p} AND voice_group = {p} AND placed_at >= {p} AND placed_at <= {p}"
        self._count = f"SELECT count(*) FROM cdrs WHERE {where}"
        self._page = (
            f"SELECT {_SELECT_LIST} FROM cdrs WHERE {where} "
            f"ORDER BY placed_at, id LIMIT {p} OFFSET {p}"
        )

    def close(self) -> None:
        self._conn.close()

    def page(self, target: Target, case: Case) -> PageResult:
        """As ``PageReader.read`` does: the page is read only when the offset is below
        the total."""
        where = (target.app_id, target.voice_group, target.window.start, target.window.end)
        self._conn.execute(self._begin)
        total = int(self._conn.execute(self._count, where).fetchone()[0])
        rows = []
        if case.offset < total:
            rows = self._conn.execute(self._page, (*where, case.page_size, case.offset)).fetchall()
        self._conn.execute("COMMIT")
        return PageResult(total, [row[0] for row in rows])

    def target(self, dataset: Dataset) -> Target:
        """The biggest tenant, its voiceType with the most rows, and the row counts."""
        p = self._p
        app_id, tenant_rows = self._one(
            "SELECT app_id, count(*) FROM cdrs GROUP BY app_id ORDER BY 2 DESC, 1 LIMIT 1"
        )
        (group,) = self._one(
            f"SELECT voice_group FROM cdrs WHERE app_id = {p} "
            "GROUP BY voice_group ORDER BY count(*) DESC, 1 LIMIT 1",
            app_id,
        )
        (appkey,) = self._one(f"SELECT appkey FROM apps WHERE id = {p}", app_id)
        (total_rows,) = self._one("SELECT count(*) FROM cdrs")
        target = Target(app_id, appkey, group, dataset.window, total_rows, tenant_rows, 0)
        return replace(target, window_rows=self.page(target, Case("count", 1, 1)).total)

    def _one(self, sql: str, *params: Any) -> tuple[Any, ...]:
        return tuple(self._conn.execute(sql, params).fetchone())
