"""The shared rate-limit store: one atomic statement per request, no durable write.

PostgreSQL keeps the state in an UNLOGGED table (no WAL, shared by every host). SQLite
deployments keep it in a sidecar SQLite file in memory-backed storage (``/dev/shm`` when
present) with ``synchronous=OFF``, shared by every process on the host. Either way the
state is outside any one process, so ``--workers N`` cannot multiply a customer's limit.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine, make_url

from ..errors import ConfigError
from ..ratelimit import Decision, Quota
from .database import Database
from .engine import Pinned, sqlite_engine, translated
from .schema import rate_limit_state

_SQL = """
INSERT INTO rate_limit_state AS s (key, tat) VALUES (:key, :now + :interval)
ON CONFLICT (key) DO UPDATE SET tat = {greatest}(s.tat, :now) + :interval
WHERE {greatest}(s.tat, :now) - :now <= :tolerance
RETURNING tat
"""


# The query API's one statement per request: take a token for ``key`` unless one of the
# lock-out keys (failed authentications) is exhausted. No row back means refused, for
# either reason; :meth:`SharedRateLimiter.refused` then reads which.
_ADMIT_SQL = """
INSERT INTO rate_limit_state AS s (key, tat)
SELECT :key, :now + :interval WHERE NOT EXISTS (
    SELECT 1 FROM rate_limit_state AS f
    WHERE (f.key = :lock1 AND {greatest}(f.tat, :now) - :now > :tolerance1)
       OR (f.key = :lock2 AND {greatest}(f.tat, :now) - :now > :tolerance2)
)
ON CONFLICT (key) DO UPDATE SET tat = {greatest}(s.tat, :now) + :interval
WHERE {greatest}(s.tat, :now) - :now <= :tolerance
RETURNING tat
"""

# Requests are stamped with their time just before they reach the shared state, but at
# high rates concurrent requests (threads waiting for the GIL, processes, hosts with
# slightly different clocks) still reach it a little out of stamp order: one stamped
# earlier finds the TAT already moved by a later one. Ten milliseconds of slack absorbs
# that (and the ~0.2 us rounding of epoch doubles); at 1 request/second it lets a
# request in 1% early.
_SLACK = 0.010

# Seconds between prunings of keys past their TAT (a missing key means the same), done by
# :meth:`SharedRateLimiter.acquire` (failed authentications), never by a query's admission.
PRUNE_EVERY = 60.0


def default_state_path(database: str) -> Path:
    """A per-database file in a private, memory-backed directory.

    The directory is per user and mode 0700, so another local user can neither read nor
    plant the state (the base directories are world-writable).
    """
    digest = hashlib.sha256(os.path.abspath(database).encode()).hexdigest()[:16]
    shm = Path("/dev/shm")  # noqa: S108 - private 0700 subdirectory, checked below
    base = shm if shm.is_dir() else Path(tempfile.gettempdir())
    private = base / f"voicecdr-{os.getuid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    info = private.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ConfigError(
            f"{private} is not a private directory of this user: remove it, or set "
            "VOICECDR_RATE_LIMIT_STATE to a file in one"
        )
    return private / f"ratelimit-{digest}.sqlite"


@dataclass(frozen=True, slots=True)
class Admission:
    """One request's token under ``key`` (a ``pages.Token``): taken by :meth:`take`, or by
    a page statement that carries :attr:`carried_sql` (PostgreSQL, whose state is in the
    store's database; not Citus), either way stamped by ``clock`` right before it is sent;
    see :meth:`SharedRateLimiter.admit`."""

    key: str
    quota: Quota
    locks: Sequence[tuple[str, Quota]]
    carried_sql: str | None  # :name parameters; None when the state is in a sidecar file
    compiled: str  # the statement in the driver's parameter style
    params: dict[str, Any]
    clock: Callable[[], float]
    pinned: Pinned  # the state's connections
    begin: str | None  # sent before the statement (SQLite: take the sidecar's lock first)

    def stamp(self) -> dict[str, Any]:
        self.params["now"] = self.clock()
        return self.params

    def take(self) -> bool:
        """Take it with a statement of its own; whether it was."""
        return self.pinned.run(self._take, begin=self.begin)

    def _take(self, cursor: Any) -> bool:
        return cursor.execute(self.compiled, self.stamp()).fetchone() is not None

    @property
    def stamped(self) -> float:
        """The time it was last sent with."""
        now: float = self.params["now"]
        return now


class SharedRateLimiter:
    """Applies a GCRA quota per key against state shared by all server processes."""

    def __init__(self, store: Database, state_path: str | None = None) -> None:
        if store.dialect == "postgresql":
            self._engine: Engine = store.writer.execution_options(isolation_level="AUTOCOMMIT")
            self._pinned = store.pinned  # the store's: closed with it
            self._own_pinned = False
            greatest = "GREATEST"
        else:
            path = Path(state_path) if state_path else default_state_path(store.url.database or "")
            url = make_url(f"sqlite+pysqlite:///{path}")
            self._engine = sqlite_engine(url, writer=True, durable=False)
            with translated("rate limit setup"), self._engine.begin() as conn:
                rate_limit_state.create(conn, checkfirst=True)
            greatest = "max"
            self._pinned = Pinned(self._engine)
            self._own_pinned = True
        # SQLite: take the sidecar's write lock before stamping the request; its busy
        # handler sleeps in steps of milliseconds, and a stamp taken before that sleep
        # reaches the state late, behind requests stamped after it. (PostgreSQL holds a
        # row lock for the statement only, microseconds.)
        self._admit_begin = "BEGIN IMMEDIATE" if store.dialect == "sqlite" else None
        dialect = self._engine.dialect
        if dialect.name == "sqlite":
            dialect = sqlite.dialect(paramstyle="named")
        self._admit_sql = _ADMIT_SQL.format(greatest=greatest)
        self._admit = str(sa.text(self._admit_sql).compile(dialect=dialect))
        self._store = store
        self._upsert = sa.text(_SQL.format(greatest=greatest))
        self._read = sa.select(rate_limit_state.c.tat).where(
            rate_limit_state.c.key == sa.bindparam("key")
        )
        # Rows another statement holds are skipped (PostgreSQL): no waits, no deadlocks.
        expired = (
            sa.select(rate_limit_state.c.key)
            .where(rate_limit_state.c.tat < sa.bindparam("now"))
            .with_for_update(skip_locked=True)
        )
        self._prune = rate_limit_state.delete().where(
            rate_limit_state.c.key.in_(expired.scalar_subquery())
        )
        self._next_prune = 0.0

    def acquire(self, key: str, quota: Quota, now: float) -> Decision:
        params = {
            "key": key,
            "now": now,
            "interval": quota.interval,
            "tolerance": quota.tolerance + _SLACK,
        }
        with translated("rate limit"), self._engine.begin() as conn:
            if now >= self._next_prune:
                # Keys made by failed authentications (any address, any appkey) would
                # otherwise grow the state without bound.
                self._next_prune = now + PRUNE_EVERY
                conn.execute(self._prune, {"now": now})
            if conn.execute(self._upsert, params).first() is not None:
                return Decision(True)
        return self._refusal(key, quota, now)

    @functools.cached_property
    def _carried(self) -> bool:
        """Whether a page statement can carry the token: on PostgreSQL, whose state is in
        the page's database; not on Citus, where the state is the coordinator's own and a
        statement joining it is split into a step per subquery, each in its own snapshot."""
        return self._store.dialect == "postgresql" and not self._store.citus

    def admission(
        self,
        key: str,
        quota: Quota,
        locks: Sequence[tuple[str, Quota]],
        clock: Callable[[], float],
    ) -> Admission:
        """The token of :meth:`admit`, to take later; :meth:`refused` tells why not."""
        (lock1, quota1), (lock2, quota2) = locks
        params: dict[str, Any] = {
            "key": key,
            "interval": quota.interval,
            "tolerance": quota.tolerance + _SLACK,
            "lock1": lock1,
            "tolerance1": quota1.tolerance + _SLACK,
            "lock2": lock2,
            "tolerance2": quota2.tolerance + _SLACK,
        }
        carried = self._admit_sql if self._carried else None
        return Admission(
            key, quota, locks, carried, self._admit, params, clock, self._pinned, self._admit_begin
        )

    def admit(
        self,
        key: str,
        quota: Quota,
        locks: Sequence[tuple[str, Quota]],
        clock: Callable[[], float],
    ) -> Decision:
        """:meth:`acquire` for ``key``, unless one of the two ``locks`` (lock-out keys with
        their quotas) is exhausted: then a :meth:`lockout`, and no token taken. One
        statement when allowed, the common case. The request is stamped by ``clock`` right
        before that statement, with a connection (and on SQLite the lock) in hand, so
        concurrent requests reach the shared state in nearly the order of their stamps."""
        return self.take(self.admission(key, quota, locks, clock))

    def take(self, admission: Admission) -> Decision:
        """:meth:`admit` for an :meth:`admission`."""
        with translated("rate limit"):
            if admission.take():
                return Decision(True)
        return self.refused(admission)

    def refused(self, admission: Admission) -> Decision:
        """Why ``admission`` was refused: its :meth:`lockout`, else the quota's
        :class:`Decision`. Read apart (the state may have moved on since; the answer is
        still one that was true a moment ago)."""
        now = admission.stamped
        return self.lockout(admission.locks, now) or self._refusal(
            admission.key, admission.quota, now
        )

    def _refusal(self, key: str, quota: Quota, now: float) -> Decision:
        with translated("rate limit"), self._engine.connect() as conn:
            tat = conn.execute(self._read, {"key": key}).scalar_one_or_none()
        wait = (tat if tat is not None else now) - now - quota.tolerance
        return Decision(False, max(wait, 0.0))

    def lockout(self, checks: Sequence[tuple[str, Quota]], now: float) -> Decision | None:
        """If the next :meth:`acquire` of any of these keys would be refused, the refusal
        (``locked_out``, retry when all of them would pass), else None: one read for all
        of them, no write (a refused caller must not push its own window further out)."""
        quotas = dict(checks)
        query = sa.select(rate_limit_state.c.key, rate_limit_state.c.tat).where(
            rate_limit_state.c.key.in_(list(quotas))
        )
        with translated("rate limit"), self._engine.connect() as conn:
            rows = conn.execute(query).all()
        waits = [max(tat, now) - now - quotas[key].tolerance - _SLACK for key, tat in rows]
        over = [wait for wait in waits if wait > 0]
        return Decision(False, max(over), locked_out=True) if over else None

    def close(self) -> None:
        if self._own_pinned:
            self._pinned.close()
        self._engine.dispose()
