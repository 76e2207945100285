"""Identically loaded databases for every timed run: one template per scenario, cloned.

A template is built once the product's way (``querybench``'s loader: Alembic schema,
``create_app``, a raw bulk insert of the CDRs, ANALYZE), then set up through the product
(callback URLs, ``RatingStore.import_plan`` of ``demo.DEMO_PLAN``). Every timed run, product
or baseline, gets its own clone, so each starts from exactly the same rows, statistics and
pending work: a file copy on SQLite, ``CREATE DATABASE .. TEMPLATE`` on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

from querybench.databases import (
    REPO_ROOT,
    CitusDatabase,
    Database,
    PostgresDatabase,
    SqliteDatabase,
)
from querybench.dataset import Dataset, _validated
from voicecdr import demo, storage
from voicecdr.rating import parse_plan_csv
from voicecdr.timefmt import Window

DAYS = 30


def dataset(appkeys: tuple[str, ...], cdrs: int, *, now: int, seed: int) -> Dataset:
    """``cdrs`` validated CDRs spread evenly over ``appkeys`` and 30 days, in time order."""
    started = time.perf_counter()
    records = demo.generate(appkeys, cdrs, now=now, days=DAYS, seed=seed)
    rows = _validated(records)
    return Dataset(now, appkeys, rows, Window(now - 86_400, now), time.perf_counter() - started)


class Cluster(ABC):
    """Where databases of one kind are created, cloned and dropped."""

    name: str

    def __init__(self) -> None:
        self._serial = count(1)

    def _label(self, prefix: str) -> str:
        return f"{prefix}_{next(self._serial)}"

    @abstractmethod
    def create(self, prefix: str) -> Database:
        """A new, empty database."""

    @abstractmethod
    def clone(self, template: Database, prefix: str) -> Database:
        """A copy of a settled template."""

    @abstractmethod
    def settle(self, database: Database) -> None:
        """Make a template ready to copy (all data in place, statistics current)."""

    @abstractmethod
    def drop(self, database: Database) -> None: ...

    def template(
        self,
        prefix: str,
        data: Dataset,
        *,
        callback_url: str | None,
        setup: Any = None,
    ) -> Database:
        """Schema, apps (with ``callback_url``), CDRs and the demo plan for every app;
        ``setup(db)`` may do more through the product before the template settles."""
        database = self.create(prefix)
        database.prepare(data)
        db = storage.Database(database.url)
        try:
            rates = parse_plan_csv(demo.DEMO_PLAN)
            ratings, app_store = storage.RatingStore(db), storage.AppStore(db)
            now = int(time.time())
            for app in app_store.list():
                if callback_url is not None:
                    app_store.update(app.appkey, {"callback_url": callback_url}, now=now)
                ratings.import_plan(app.id, rates, source="demo.DEMO_PLAN", now=now)
            if setup is not None:
                setup(db)
        finally:
            db.close()
        self.settle(database)
        return database

    @contextlib.contextmanager
    def copy(self, template: Database) -> Iterator[Database]:
        database = self.clone(template, "run")
        try:
            yield database
        finally:
            self.drop(database)


class SqliteCluster(Cluster):
    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self._dir = workdir

    def create(self, prefix: str) -> SqliteDatabase:
        return SqliteDatabase(self._dir / f"{self._label(prefix)}.db")

    def clone(self, template: Database, prefix: str) -> SqliteDatabase:
        assert isinstance(template, SqliteDatabase)
        database = self.create(prefix)
        shutil.copyfile(template.path, database.path)
        return database

    def settle(self, database: Database) -> None:
        with contextlib.closing(database.connect()) as conn:
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the copy is the main file only

    def drop(self, database: Database) -> None:
        assert isinstance(database, SqliteDatabase)
        for end in ("", "-wal", "-shm", "-journal"):
            Path(f"{database.path}{end}").unlink(missing_ok=True)


class PostgresCluster(Cluster):
    name = "postgresql"

    def __init__(self, server: Any) -> None:
        super().__init__()
        self._server = server
        self._names: dict[str, str] = {}  # url -> database name

    def create(self, prefix: str) -> PostgresDatabase:
        name = self._label(prefix)
        database = PostgresDatabase(self._server.create_database(name))
        self._names[database.url] = name
        return database

    def clone(self, template: Database, prefix: str) -> PostgresDatabase:
        name = self._label(prefix)
        database = PostgresDatabase(
            self._server.create_database(name, template=self._names[template.url])
        )
        self._names[database.url] = name
        return database

    def settle(self, database: Database) -> None:
        with contextlib.closing(database.connect()) as conn:
            conn.execute("VACUUM (ANALYZE)")

    def drop(self, database: Database) -> None:
        self._server.drop_database(self._names.pop(database.url))


class CitusCluster(PostgresCluster):
    """Databases on a Citus cluster (``tests/support/citus.py``). A Citus database cannot
    be a template (its shards are on the workers), so a clone is built afresh the way its
    template was: the same rows, plan and settings, then settled."""

    name = "citus"

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self._recipes: dict[str, tuple[Dataset, str | None, Any]] = {}  # template url ->

    def create(self, prefix: str) -> CitusDatabase:
        name = self._label(prefix)
        database = CitusDatabase(self._server.create_database(name))
        self._names[database.url] = name
        return database

    def template(
        self, prefix: str, data: Dataset, *, callback_url: str | None, setup: Any = None
    ) -> Database:
        database = super().template(prefix, data, callback_url=callback_url, setup=setup)
        self._recipes[database.url] = (data, callback_url, setup)
        return database

    def clone(self, template: Database, prefix: str) -> CitusDatabase:
        data, callback_url, setup = self._recipes[template.url]
        database = super().template(prefix, data, callback_url=callback_url, setup=setup)
        assert isinstance(database, CitusDatabase)
        return database


@contextlib.contextmanager
def cluster(name: str, workdir: Path) -> Iterator[Cluster]:
    """SQLite files in ``workdir``, or a throwaway PostgreSQL server (stopped on exit)."""
    if name == "sqlite":
        yield SqliteCluster(workdir)
        return
    sys.path.insert(0, str(REPO_ROOT))  # tests.support is not part of the installed package
    from tests.support.postgres import running

    with running() as server:
        yield PostgresCluster(server)
