"""One migrated PostgreSQL (or Citus) database reused by many tests or examples: emptied
before each use, since making one (CREATE DATABASE, or on Citus the extension and the nodes
on every node and the migrations) costs far more than emptying one.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

Shape = tuple[tuple[str, ...], list[tuple[str]]]

_TABLES = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
    "ORDER BY 1"
)
# (referencing table, referenced table) for every foreign key between public tables.
_REFERENCES = (
    "SELECT DISTINCT a.relname, b.relname FROM pg_constraint k "
    "JOIN pg_class a ON a.oid = k.conrelid JOIN pg_class b ON b.oid = k.confrelid "
    "JOIN pg_namespace n ON n.oid = a.relnamespace "
    "WHERE k.contype = 'f' AND n.nspname = 'public' AND a.oid <> b.oid"
)

_REFERENCE_TABLES = (
    "SELECT logicalrelid::regclass::text FROM pg_dist_partition WHERE partmethod = 'n'"
)


class SharedDatabase:
    """A database made by ``make`` (which returns the URL of a new migrated one) and
    dropped by ``drop``; :meth:`empty` hands it back with no rows, and makes it again
    when a test broke its schema."""

    def __init__(self, make: Callable[[], str], drop: Callable[[], None]) -> None:
        self._create = make
        self._drop = drop
        self.url = ""
        self._shape: Shape = ((), [])
        self._order: list[str] = []
        self._citus = False
        self._make()

    def _make(self) -> None:
        if self.url:
            self._drop()
        self.url = self._create()
        with psycopg.connect(self.url) as conn:
            self._shape = self._read_shape(conn)
            self._citus = bool(
                conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'").fetchall()
            )
            # Citus's reference tables after the distributed ones (none refers to those).
            replicated = conn.execute(_REFERENCE_TABLES).fetchall() if self._citus else []
            self._order = _children_first(self._shape[0], conn.execute(_REFERENCES).fetchall())
            self._order.sort(key=lambda table: (table,) in replicated)

    @staticmethod
    def _read_shape(conn: psycopg.Connection[tuple[str]]) -> Shape:
        """The tables there are, and the schema version."""
        tables = tuple(name for (name,) in conn.execute(_TABLES))
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        return (tables, version)

    def empty(self) -> str:
        """The database with every table emptied and its id sequences restarted."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            try:
                intact = self._read_shape(conn) == self._shape
            except psycopg.Error:
                intact = False
            if intact:
                # DELETE, not TRUNCATE: on nearly empty tables it is many times faster
                # (on Citus TRUNCATE locks and commits on every shard of every partition).
                with conn.transaction():
                    if self._citus:  # one connection per node, for the reference tables
                        conn.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
                    for table in self._order:
                        conn.execute(f"DELETE FROM {table}")
                    conn.execute(
                        "SELECT setval(format('%I.%I', schemaname, sequencename), 1, false) "
                        "FROM pg_sequences WHERE schemaname = 'public'"
                    )
                return self.url
        self._make()  # a test renamed or dropped a table, or moved the schema version
        return self.url


def _children_first(tables: tuple[str, ...], references: list[tuple[str, str]]) -> list[str]:
    """``tables`` but alembic_version, each after every table whose foreign keys refer to it."""
    left = [t for t in tables if t != "alembic_version"]
    order: list[str] = []
    while left:
        ready = [t for t in left if not any(b == t and a in left for a, b in references)]
        assert ready, f"foreign keys in a cycle among {left}"
        order += ready
        left = [t for t in left if t not in ready]
    return order
