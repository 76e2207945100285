"""A throwaway Citus cluster for tests: a coordinator and two workers on 127.0.0.1.

Each node is a :class:`~tests.support.postgres.PostgresServer` (own directory, own free
port) started with ``shared_preload_libraries='citus'``. Citus keeps its metadata per
database, so :meth:`CitusCluster.create_database` makes the database and the extension on
every node, then registers the coordinator and the workers in it. Citus itself is not a
Python dependency: :func:`citus_installed` says whether the server has it. Work done on
every node (starting, stopping, making a database) is done on all of them at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from tests.support.postgres import PostgresServer, PostgresUnavailable, _bindir

# Citus's own settings for a test cluster: few shards (each is a table per node and per
# day partition, so many slow down schema changes), no telemetry, and a small cache.
NODE_OPTIONS = (
    "-c shared_preload_libraries=citus -c citus.shard_count=4 "
    "-c citus.enable_statistics_collection=off -c shared_buffers=64MB "
    "-c max_worker_processes=16 -c wal_level=logical -c max_replication_slots=10 "
    "-c max_wal_senders=10"
)
WORKERS = 2


class CitusUnavailable(RuntimeError):
    pass


def citus_installed() -> bool:
    """Whether the PostgreSQL server the tests run has the citus extension."""
    try:
        bindir = _bindir()
    except PostgresUnavailable:
        return False
    return Path(bindir.parent, "lib", "citus.so").exists()


class CitusCluster:
    """A coordinator and ``workers`` worker nodes, each its own server on 127.0.0.1."""

    def __init__(self, workers: int = WORKERS) -> None:
        if not citus_installed():
            raise CitusUnavailable("the citus extension is not installed in PostgreSQL")
        self.coordinator = _node()
        self.workers = [_node() for _ in range(workers)]
        self._databases: list[str] = []

    @property
    def nodes(self) -> list[PostgresServer]:
        return [self.coordinator, *self.workers]

    def start(self) -> None:
        _on_each(self.nodes, PostgresServer.start)

    def stop(self) -> None:
        _on_each(self.nodes, PostgresServer.stop)

    def url(self, database: str = "postgres") -> str:
        """The coordinator's URL: where voicecdr connects."""
        return self.coordinator.url(database)

    def create_database(self, name: str) -> str:
        """An empty database ``name`` with the citus extension on every node and the
        workers added to it; returns its URL on the coordinator."""
        _on_each(self.nodes, lambda node: _with_citus(node, name))
        self._databases.append(name)
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            conn.execute(
                "SELECT citus_set_coordinator_host('127.0.0.1', %s)", (self.coordinator.port,)
            )
            for worker in self.workers:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (worker.port,))
        return self.url(name)

    def add_worker(self) -> PostgresServer:
        """Start one more worker and add it to every database made so far (it holds no
        shards until they are rebalanced: ``citus_rebalance_start``)."""
        worker = _node()
        worker.start()
        self.workers.append(worker)
        for name in self._databases:
            _with_citus(worker, name)
            with psycopg.connect(self.url(name), autocommit=True) as conn:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (worker.port,))
        return worker

    def drop_database(self, name: str) -> None:
        # Workers first: the coordinator's metadata names the workers' shards.
        for node in reversed(self.nodes):
            node.drop_database(name)
        self._databases.remove(name)


def _on_each(nodes: list[PostgresServer], do: Callable[[PostgresServer], None]) -> None:
    """``do`` to every node at once; raises the first node's error, after all are done."""
    with ThreadPoolExecutor(len(nodes)) as pool:
        for done in [pool.submit(do, node) for node in nodes]:
            done.result()


def _with_citus(node: PostgresServer, name: str) -> None:
    node.create_database(name)
    node.execute("CREATE EXTENSION citus", database=name)


def _node() -> PostgresServer:
    return PostgresServer(options=NODE_OPTIONS, prefix="voicecdr-citus-")


@contextlib.contextmanager
def running(workers: int = WORKERS) -> Iterator[CitusCluster]:
    cluster = CitusCluster(workers)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
