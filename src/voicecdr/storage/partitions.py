"""The day partitions of ``cdrs`` on PostgreSQL: made ahead of time and on demand.

``cdrs`` is ``PARTITION BY RANGE (placed_at)`` with one partition per UTC day, named
``cdrs_pYYYYMMDD`` and covering ``[day, day + 86400)``. There is no DEFAULT partition: a
row with nowhere to go would land there, and a DEFAULT partition holding rows for a day
makes creating that day's partition later scan and lock it, then fail until the rows are
moved. Instead a partition exists for every day a row needs, made:

- ahead of time for today and the next ``VOICECDR_PARTITIONS_AHEAD_DAYS`` days, by ``db
  upgrade`` and every hour by the workers, so the live feed never waits for one;
- on demand, before an insert, for any day of the batch this process has not seen yet
  (late records for old days, clocks far ahead): :meth:`Partitions.ensure`.

Creation runs in its own short transaction under a transaction-scoped advisory lock, so
concurrent processes do not race on the catalog: the second one finds the partition made.
It creates a plain table and *attaches* it, which locks ``cdrs`` only in SHARE UPDATE
EXCLUSIVE mode (reads and writes go on); ``CREATE TABLE ... PARTITION OF`` would take an
ACCESS EXCLUSIVE lock and queue every query behind the slowest one running.
"""

from __future__ import annotations

import calendar
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import citus
from .engine import translated
from .schema import PARTITION_PREFIX

DAY = 86_400
# pg_advisory_xact_lock key for changes to the set of partitions (creation, retention):
# an arbitrary constant, "vcdrpart" in ASCII.
LOCK_KEY = 0x7663_6472_7061_7274

_BOUNDS = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")
_RETRY_STATES = frozenset({"23514", "40P01"})  # no partition for a row; deadlock


def day_of(placed_at: int) -> int:
    """The start (Unix seconds) of the UTC day holding ``placed_at``."""
    return placed_at - placed_at % DAY


def days_of(placed: Iterable[int]) -> set[int]:
    """The UTC days (their starts) of these ``placed_at`` values."""
    return {p - p % DAY for p in placed}


def partition_name(day: int) -> str:
    return PARTITION_PREFIX + time.strftime("%Y%m%d", time.gmtime(day))


def day_of_name(name: str) -> int:
    return calendar.timegm(time.strptime(name.removeprefix(PARTITION_PREFIX), "%Y%m%d"))


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    lo: int  # first placed_at it holds
    hi: int  # first placed_at it does not hold


def attached(conn: sa.Connection) -> list[Partition]:
    """The partitions of ``cdrs``, in time order."""
    rows = conn.exec_driver_sql(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'cdrs'::regclass"
    ).all()
    found = []
    for name, bound in rows:
        match = _BOUNDS.search(bound or "")
        if match:
            found.append(Partition(name, int(match.group(1)), int(match.group(2))))
    return sorted(found, key=lambda p: p.lo)


def lock(conn: sa.Connection) -> None:
    """Serialise changes to the set of partitions until ``conn``'s transaction ends."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def worth_retrying(exc: BaseException) -> bool:
    """Whether a failed insert may succeed once partitions are made again: a row found
    no partition (another process dropped one this process had seen), or a deadlock with
    retention dropping the partition the row was going to."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "sqlstate", None) in _RETRY_STATES:
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


class Partitions:
    """Makes the day partitions one process needs; remembers which it has seen."""

    def __init__(self, engine: Engine, distributed: Callable[[], bool] = lambda: False) -> None:
        """``distributed``: whether the database is Citus (asked when a partition is made)."""
        self._engine = engine
        self._distributed = distributed
        self._known: set[int] = set()
        self._mutex = threading.Lock()

    def ensure(self, days: set[int]) -> list[str]:
        """Make sure a partition exists for each day in ``days`` (day starts); returns
        the names of the partitions made. Costs nothing for days already seen."""
        missing = days - self._known
        if not missing:
            return []
        with self._mutex:  # one creating transaction per process at a time is plenty
            missing = days - self._known
            if not missing:
                return []
            made = self._create(missing)
            self._known |= missing
        return made

    def ahead(self, now: int, days_ahead: int) -> list[str]:
        """Make today's partition and the next ``days_ahead`` days' (UTC)."""
        today = day_of(now)
        return self.ensure({today + i * DAY for i in range(days_ahead + 1)})

    def forget(self) -> None:
        """Forget what was seen: partitions may have been dropped by another process."""
        with self._mutex:
            self._known.clear()

    def _create(self, days: set[int]) -> list[str]:
        made = []
        with translated("create CDR partitions"), self._engine.begin() as conn:
            if self._distributed():
                citus.sequential(conn)
            lock(conn)
            covered = attached(conn)
            for day in sorted(days):
                if any(p.lo <= day < p.hi for p in covered):
                    continue
                name = partition_name(day)
                conn.exec_driver_sql(
                    f"CREATE TABLE {name} (LIKE cdrs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                )
                conn.exec_driver_sql(
                    f"ALTER TABLE cdrs ATTACH PARTITION {name} "
                    f"FOR VALUES FROM ({day}) TO ({day + DAY})"
                )
                made.append(name)
        return made
