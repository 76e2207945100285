"""Fixtures shared by every tier: a clean environment, the databases, a test app."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.citus import CitusCluster, citus_installed
from tests.support.postgres import PostgresServer
from tests.support.shared_database import SharedDatabase
from voicecdr.config import Settings
from voicecdr.storage import Database, migrate

TEMPLATE = "voicecdr_template"
_db_names = itertools.count()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ambient VOICECDR_* variables must not change what a test sees."""
    for name in list(os.environ):
        if name.startswith("VOICECDR_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server per test session, with a migrated template database
    that each test clones (CREATE DATABASE … TEMPLATE is far faster than migrating)."""
    server = PostgresServer()
    try:
        server.start()
        url = server.create_database(TEMPLATE)
        db = Database(url)
        migrate.upgrade(db)
        db.close()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    name = f"voicecdr_test_{os.getpid()}_{next(_db_names)}"
    url = pg_server.create_database(name, template=TEMPLATE)
    yield url
    pg_server.drop_database(name)


CITUS_MISSING = (
    "Citus is not installed in this PostgreSQL: scripts/test builds it from "
    "../shared/vendor/citus when that folder exists; elsewhere install Citus Data's "
    "packages (https://docs.citusdata.com) or run its Docker image"
)


@pytest.fixture(scope="session")
def citus_required() -> None:
    """The Citus tier's rule: without Citus it skips, except in CI (CI=true), where it
    must run. Tests that start clusters of their own ask for it."""
    if not citus_installed():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the Citus tier cannot run: {CITUS_MISSING}")
        pytest.skip(CITUS_MISSING)


@pytest.fixture(scope="session")
def citus_cluster(citus_required: None) -> Iterator[CitusCluster]:
    """A real Citus cluster (coordinator + 2 workers) per test session."""
    cluster = CitusCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


class CitusDatabase(SharedDatabase):
    """The session's one migrated database on the cluster: making one costs seconds (the
    database and the extension on every node, the nodes added, the migrations), so tests
    share it, emptied before each, and it is made again after a test that broke it."""

    def __init__(self, cluster: CitusCluster) -> None:
        self.cluster = cluster
        self.name = f"voicecdr_citus_{os.getpid()}"
        super().__init__(self._migrated, lambda: cluster.drop_database(self.name))

    def _migrated(self) -> str:
        url = self.cluster.create_database(self.name)
        db = Database(url)
        migrate.upgrade(db)
        db.close()
        return url


@pytest.fixture(scope="session")
def citus_database(citus_cluster: CitusCluster) -> CitusDatabase:
    return CitusDatabase(citus_cluster)


@pytest.fixture
def citus_url(citus_database: CitusDatabase) -> str:
    """An empty, migrated database on the session's Citus cluster: a test never sees
    another's rows."""
    return citus_database.empty()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, made once per session (per xdist worker): migrating one
    from nothing costs ~50 ms, a copy ~1 ms."""
    path = tmp_path_factory.mktemp("template") / "voicecdr.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the file itself
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    target = tmp_path / "voicecdr.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database: the same test runs on SQLite and on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("citus", marks=pytest.mark.citus),
    ]
)
def any_database_url(request: pytest.FixtureRequest) -> str:
    """``database_url`` on Citus too: the modules that must hold on every database
    override ``database_url`` with this."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url", "citus": "citus_url"}
    return str(request.getfixturevalue(fixture[request.param]))


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        rate_limit_state=str(tmp_path / "ratelimit.sqlite"),
    )
