"""SQL for rate plans, the rater and re-rating.

The rater's unit of work is one transaction: claim a batch of unrated CDRs (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, so parallel raters never wait for each other; SQLite's single
writer serializes them), let the caller price them, then write the prices and the new
receipts together. A CDR is therefore never final without its receipt, nor receipted
without being final.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, cast

import sqlalchemy as sa

from ..models import CostStatus, Service, UnratedCdr
from ..rating import Charge, Decision, Priced, Rate, RatePlan
from . import rollups, schema
from .database import Database
from .engine import translated
from .outbox import NewReceipt, ReceiptRow, insert_receipts, write_receipt_rows

c = schema.cdrs.c
p = schema.rate_plans.c
rt = schema.rates.c


@dataclass(frozen=True, slots=True)
class PlanInfo:
    id: int
    version: int
    source: str
    created_at: int
    rate_count: int


@dataclass(frozen=True, slots=True)
class RatedRow:
    """A stored CDR as re-rating reads it: what pricing needs, and its cost status, the
    charge stored with it (zeros while pending) and the plan that priced it."""

    cdr: UnratedCdr
    cost_status: CostStatus
    stored: Charge
    plan_id: int | None
    prefix: str | None  # of the rate that priced it (None while pending)

    @property
    def charged(self) -> Charge | None:
        """What the CDR is charged now: None while pending."""
        return None if self.cost_status is CostStatus.PENDING else self.stored


# What the rater writes for a batch, as plain tuples for the driver's bulk paths (see
# UnratedCdr for why not objects). A priced CDR: cycle, size, unit_price_nanos,
# basic_price_nanos, cost_nanos, rate_plan_id, rated_at, rate_prefix, id, placed_at.
PricedCdr = tuple[int, int, int, int, int, int, int, str, int, int]
# A CDR left pending: the reason, id, placed_at.
UnpricedCdr = tuple[str, int, int]


@dataclass(slots=True)
class RatedBatch:
    """The outcome of pricing one batch, written in one transaction."""

    priced: list[PricedCdr] = field(default_factory=list)
    unpriced: list[UnpricedCdr] = field(default_factory=list)
    receipts: list[ReceiptRow] = field(default_factory=list)


Price = Callable[[list[UnratedCdr]], RatedBatch]

_PENDING = int(CostStatus.PENDING)
_FINAL = int(CostStatus.FINAL)
# What pricing needs, in UnratedCdr's order; receipts are rendered later, by the sender.
UNRATED = (
    "id",
    "app_id",
    "placed_at",
    "service",
    "phone",
    "country_code",
    "billsec",
    "connected",
    "answered_at",
    "hangup_cause",
    "hangup_disposition",
    "region",
)
UNRATED_COLUMNS = ", ".join(UNRATED)
_UNRATED = [c[name] for name in UNRATED]
_N = len(UNRATED)
# The cost status and the stored charge, in Charge's order.
_STORED = (c.cost_status, c.cycle, c.size, c.unit_price_nanos, c.basic_price_nanos, c.cost_nanos)
# The rater's queue, in id order: the partial index ix_cdrs_unrated. SQLite is told to
# use it: with statistics from when most rows were pending it scans the table in id order
# instead, past every CDR already rated, so each batch took longer than the one before.
# UPDATEs name placed_at beside id, so that a cdrs table partitioned by placed_at is
# pruned to one partition.
_CLAIM = (
    "SELECT {columns} FROM cdrs {index} WHERE cost_status = {pending} "
    "AND pending_reason IS NULL{app} ORDER BY id LIMIT {p}"
)
_SET_PRICED_SQLITE = f"""
UPDATE cdrs SET cost_status = {_FINAL}, cycle = ?, size = ?, unit_price_nanos = ?,
  basic_price_nanos = ?, cost_nanos = ?, rate_plan_id = ?, rated_at = ?, rate_prefix = ?,
  pending_reason = NULL, revision = revision + 1
WHERE id = ? AND placed_at = ? AND cost_status = {_PENDING}
"""
_SET_UNPRICED_SQLITE = f"""
UPDATE cdrs SET pending_reason = ? WHERE id = ? AND placed_at = ? AND cost_status = {_PENDING}
"""
# PostgreSQL: one statement per batch, the rows' values as arrays: a round trip per CDR,
# even pipelined, costs more than the updates (docs/performance.md#rater-writes-on-postgresql).
_SET_PRICED_PG = f"""
UPDATE cdrs SET cost_status = {_FINAL}, cycle = r.cycle, size = r.size,
  unit_price_nanos = r.unit, basic_price_nanos = r.basic, cost_nanos = r.cost,
  rate_plan_id = r.plan_id, rated_at = r.rated_at, rate_prefix = r.prefix,
  pending_reason = NULL, revision = cdrs.revision + 1
FROM unnest(%s::int[], %s::int[], %s::bigint[], %s::bigint[], %s::bigint[], %s::int[],
            %s::bigint[], %s::text[], %s::bigint[], %s::bigint[])
  AS r(cycle, size, unit, basic, cost, plan_id, rated_at, prefix, id, placed_at)
WHERE cdrs.id = r.id AND cdrs.placed_at = r.placed_at AND cdrs.cost_status = {_PENDING}
"""
_SET_UNPRICED_PG = f"""
UPDATE cdrs SET pending_reason = r.reason
FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS r(reason, id, placed_at)
WHERE cdrs.id = r.id AND cdrs.placed_at = r.placed_at AND cdrs.cost_status = {_PENDING}
"""
# Citus runs FOR UPDATE only in a statement routed to one shard, so there the rater claims
# app by app (RatingStore.rate_batch's app_id): the claim and the writes name the app, so
# every statement of the batch goes to the one node that holds the app.
_FOR_APP = " AND cdrs.app_id = %s"


# What the rater needs of every app before a batch, in one statement: its newest plan, and
# its callback URL, timezone and language (receipts). Building every App instead, and
# finding the newest plans by a grouped join, cost a few milliseconds per batch.
RaterApp = tuple[int, int | None, str | None, str, str]
_RATER_APPS = (
    "SELECT a.id, (SELECT p.id FROM rate_plans p WHERE p.app_id = a.id "
    "ORDER BY p.version DESC LIMIT 1), a.callback_url, a.timezone, a.language FROM apps a"
)


def _enforce_foreign_keys(conn: sa.Connection, driver: Any) -> None:
    """Turn SQLite's foreign key checks back on for ``driver``'s connection, or discard
    the connection (the pragma is silently ignored while a transaction is open)."""
    try:
        driver.execute("PRAGMA foreign_keys=ON")
        on = driver.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    except Exception:
        on = False
    if not on:
        conn.invalidate()


def _unrated(row: Sequence[Any]) -> UnratedCdr:
    """An :data:`UnratedCdr` of SQLAlchemy's row of ``_UNRATED`` columns."""
    return cast("UnratedCdr", tuple(row))


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


# An UnratedCdr's call, as the rollups take it (rollups.CALL_COLUMNS).
_FACT = itemgetter(*(UNRATED.index(n) for n in rollups.CALL_COLUMNS))


def _roll_up_priced(
    conn: sa.Connection,
    dialect: str,
    rows: list[UnratedCdr],
    priced: list[PricedCdr],
    distributed: bool,
) -> None:
    """Move the CDRs just priced from pending to priced in the rollups."""
    buckets = rollups.zones(conn, dialect, {row[1] for row in rows}, distributed=distributed)
    _tally(buckets, rows, priced).write(conn, dialect)


def _tally(
    buckets: dict[int, rollups.Buckets], rows: list[UnratedCdr], priced: list[PricedCdr]
) -> rollups.Tally:
    by_id = {row[0]: row for row in rows}
    tally = rollups.Tally(buckets)
    tally.charges(
        (_FACT(by_id[cdr_id]), prefix, cycle * size, cost)
        for cycle, size, _, _, cost, _, _, prefix, cdr_id, _ in priced
    )
    return tally


def priced_tally(
    timezones: dict[int, str], rows: list[UnratedCdr], priced: list[PricedCdr]
) -> None:
    """Tally, as the rater does, the rollups' changes for ``priced`` (a batch's priced
    CDRs, of ``rows``; ``timezones`` by app id), without writing them: for
    bench/rating_tally.py, which times it."""
    _tally({app: rollups.buckets_of(tz) for app, tz in timezones.items()}, rows, priced)


class RatingStore:
    """Rate plans, the rater's batches and re-rating, on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @functools.cached_property
    def _claims(self) -> tuple[str, str]:
        """The claim of any app's CDRs, and of one app's."""
        claim = functools.partial(_CLAIM.format, columns=UNRATED_COLUMNS, pending=_PENDING)
        if self._db.dialect == "sqlite":
            index = "INDEXED BY ix_cdrs_unrated"
            return (
                claim(index=index, app="", p="?"),
                claim(index=index, app=" AND cdrs.app_id = ?", p="?"),
            )
        lock = " FOR UPDATE SKIP LOCKED"
        return (
            claim(index="", app="", p="%s") + lock,
            claim(index="", app=_FOR_APP, p="%s") + lock,
        )

    # -- plans -------------------------------------------------------------------------

    def import_plan(self, app_id: int, rates: Sequence[Rate], *, source: str, now: int) -> PlanInfo:
        """Store a new version of the app's plan, whole, and let CDRs that found no rate
        under the old one be tried again."""
        with translated("import rate plan"), self._db.writer.begin() as conn:
            latest = conn.execute(
                sa.select(sa.func.max(p.version)).where(p.app_id == app_id)
            ).scalar_one()
            version = (latest or 0) + 1
            plan_id = conn.execute(
                schema.rate_plans.insert()
                .values(app_id=app_id, version=version, source=source, created_at=now)
                .returning(p.id)
            ).scalar_one()
            conn.execute(
                schema.rates.insert(),
                [
                    {
                        "plan_id": plan_id,
                        "service": None if x.service is None else int(x.service),
                        "prefix": x.prefix,
                        "cycle": x.cycle,
                        "unit_price_nanos": x.unit_price_nanos,
                        "basic_price_nanos": x.basic_price_nanos,
                    }
                    for x in rates
                ],
            )
            conn.execute(
                schema.cdrs.update()
                .where(
                    c.app_id == app_id,
                    c.cost_status == int(CostStatus.PENDING),
                    c.pending_reason.is_not(None),
                )
                .values(pending_reason=None)
            )
        return PlanInfo(plan_id, version, source, now, len(rates))

    def current_plan_ids(self) -> dict[int, int]:
        """app_id -> id of its newest plan, for every app that has one."""
        newest = (
            sa.select(p.app_id, sa.func.max(p.version).label("version"))
            .group_by(p.app_id)
            .subquery()
        )
        query = sa.select(p.app_id, p.id).join(
            newest, sa.and_(newest.c.app_id == p.app_id, newest.c.version == p.version)
        )
        with translated("read rate plans"), self._db.reader.connect() as conn:
            return {app_id: plan_id for app_id, plan_id in conn.execute(query)}  # noqa: C416

    def load_plan(self, plan_id: int) -> RatePlan:
        with translated("read rate plan"), self._db.reader.connect() as conn:
            version = conn.execute(sa.select(p.version).where(p.id == plan_id)).scalar_one()
            rows = conn.execute(
                sa.select(
                    rt.service, rt.prefix, rt.cycle, rt.unit_price_nanos, rt.basic_price_nanos
                )
                .where(rt.plan_id == plan_id)
                .order_by(rt.id)
            ).all()
        rates = [
            Rate(None if s is None else Service(s), prefix, cycle, unit, basic)
            for s, prefix, cycle, unit, basic in rows
        ]
        return RatePlan(plan_id, version, rates)

    def rater_apps(self) -> list[RaterApp]:
        """Every app: (id, id of its newest plan or None, callback URL, timezone,
        language)."""
        with translated("read apps to rate"), self._db.reader.connect() as conn:
            return cast("list[RaterApp]", [tuple(r) for r in conn.exec_driver_sql(_RATER_APPS)])

    def current_plan(self, app_id: int) -> RatePlan | None:
        plan_id = self.current_plan_ids().get(app_id)
        return None if plan_id is None else self.load_plan(plan_id)

    def plans(self, app_id: int) -> list[PlanInfo]:
        counts = sa.select(rt.plan_id, sa.func.count().label("n")).group_by(rt.plan_id).subquery()
        query = (
            sa.select(p.id, p.version, p.source, p.created_at, counts.c.n)
            .join(counts, counts.c.plan_id == p.id)
            .where(p.app_id == app_id)
            .order_by(p.version)
        )
        with translated("list rate plans"), self._db.reader.connect() as conn:
            return [PlanInfo(*row) for row in conn.execute(query)]

    # -- the rater ---------------------------------------------------------------------

    def rate_batch(self, limit: int, price: Price, *, app_id: int | None = None) -> tuple[int, int]:
        """Claim up to ``limit`` unrated CDRs (``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
        of the app ``app_id`` only if given (what Citus can route),
        price them with ``price`` and store the outcome and the receipts in the same
        transaction. Returns (priced, unpriced).

        Plain SQL on the driver, each write one bulk statement: SQLAlchemy's per-row
        result and parameter handling cost more than the database's own work here."""
        with translated("rate CDRs"), self._batch_transaction() as conn:
            cursor = conn.connection.cursor()
            try:
                any_app, one_app = self._claims
                if app_id is None:
                    cursor.execute(any_app, (limit,))
                else:
                    cursor.execute(one_app, (app_id, limit))
                # Both drivers return a list of plain tuples.
                rows = cast("list[UnratedCdr]", cursor.fetchall())
            finally:
                cursor.close()
            if not rows:
                return 0, 0
            batch = price(rows)
            if self._db.dialect == "sqlite":
                if batch.priced:
                    conn.exec_driver_sql(_SET_PRICED_SQLITE, batch.priced)
                if batch.unpriced:
                    conn.exec_driver_sql(_SET_UNPRICED_SQLITE, batch.unpriced)
            else:
                driver = conn.connection.driver_connection
                assert driver is not None
                app = () if app_id is None else (app_id,)
                where = "" if app_id is None else _FOR_APP
                with driver.cursor() as pg:
                    if batch.priced:
                        pg.execute(_SET_PRICED_PG + where, [*_columns(batch.priced), *app])
                    if batch.unpriced:
                        pg.execute(_SET_UNPRICED_PG + where, [*_columns(batch.unpriced), *app])
            write_receipt_rows(conn, batch.receipts)
            if batch.priced:
                _roll_up_priced(conn, self._db.dialect, rows, batch.priced, self._db.citus)
        return len(batch.priced), len(batch.unpriced)

    @contextlib.contextmanager
    def _batch_transaction(self) -> Iterator[sa.Connection]:
        """The rater's write transaction. On SQLite it runs without foreign key checks,
        which were an eighth of the CPU time of its writes (two parent lookups per
        receipt, one per priced CDR): every reference it writes is to a row it read in
        the same transaction (the CDR, and the CDR's app) or to a rate plan, and neither
        apps nor plans are ever deleted. The pragma can change only outside a
        transaction; it is set back before the connection returns to the pool, and a
        connection on which that fails is discarded."""
        if self._db.dialect != "sqlite":
            with self._db.writer.begin() as conn:
                yield conn
            return
        with self._db.writer.connect() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            driver.execute("PRAGMA foreign_keys=OFF")
            try:
                with conn.begin():
                    yield conn
            finally:
                _enforce_foreign_keys(conn, driver)

    def apps_waiting(self) -> set[int]:
        """The apps with CDRs waiting for the rater: one statement, on every node on Citus
        (the rater's cheap look before it claims app by app)."""
        query = (
            sa.select(c.app_id)
            .where(c.cost_status == int(CostStatus.PENDING), c.pending_reason.is_(None))
            .distinct()
        )
        with translated("read apps to rate"), self._db.reader.connect() as conn:
            return set(conn.execute(query).scalars())

    def lag(self, now: float) -> float:
        """Seconds since the oldest CDR still waiting for the rater was ingested."""
        query = sa.select(sa.func.min(c.ingested_at)).where(
            c.cost_status == int(CostStatus.PENDING), c.pending_reason.is_(None)
        )
        with translated("read rating lag"), self._db.reader.connect() as conn:
            oldest = conn.execute(query).scalar_one()
        return 0.0 if oldest is None else max(0.0, now - oldest)

    def unpriced(self, app_id: int, *, limit: int) -> tuple[int, list[tuple[UnratedCdr, str]]]:
        """CDRs the rater could not price, with the reason: (how many, the first ones)."""
        where = (
            c.app_id == app_id,
            c.cost_status == int(CostStatus.PENDING),
            c.pending_reason.is_not(None),
        )
        with translated("list unpriced CDRs"), self._db.reader.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(schema.cdrs).where(*where)
            ).scalar_one()
            rows = conn.execute(
                sa.select(*_UNRATED, c.pending_reason).where(*where).order_by(c.id).limit(limit)
            ).all()
        return total, [(_unrated(r[:-1]), r[-1]) for r in rows]

    # -- re-rating ---------------------------------------------------------------------

    def window(self, app_id: int, start: int, end: int, *, chunk: int) -> Iterator[list[RatedRow]]:
        """An app's CDRs placed in [start, end], in (time, id) order, chunk by chunk
        (keyset paging: constant memory however long the period)."""
        after: tuple[int, int] | None = None
        while True:
            query = (
                sa.select(*_UNRATED, *_STORED, c.rate_plan_id, c.rate_prefix)
                .where(c.app_id == app_id, c.placed_at >= start, c.placed_at <= end)
                .order_by(c.placed_at, c.id)
                .limit(chunk)
            )
            if after is not None:
                query = query.where(sa.tuple_(c.placed_at, c.id) > sa.tuple_(*after))
            with translated("read CDRs to re-rate"), self._db.reader.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            batch = [
                RatedRow(_unrated(r[:_N]), CostStatus(r[_N]), Charge(*r[_N + 1 : -2]), r[-2], r[-1])
                for r in rows
            ]
            yield batch
            last_id, _, last_placed, *_ = batch[-1].cdr
            after = (last_placed, last_id)

    def apply_rerate(
        self,
        changes: Sequence[tuple[RatedRow, Decision]],
        receipts_for: Callable[[RatedRow, Priced], NewReceipt | None],
        *,
        now: int,
    ) -> int:
        """Write re-rated charges, each only if the CDR still holds what was read (a
        concurrent rater or re-rate wins otherwise), with receipts for those written.
        Returns how many CDRs changed."""
        written = 0
        receipts: list[NewReceipt] = []
        dialect = self._db.dialect
        with translated("re-rate CDRs"), self._db.writer.begin() as conn:
            apps = {r.cdr[1] for r, _ in changes}
            tally = rollups.Tally(rollups.zones(conn, dialect, apps, distributed=self._db.citus))
            for rated, decision in changes:
                cdr_id, app_id, placed, *_ = rated.cdr
                stored = rated.stored
                unchanged = sa.and_(
                    c.id == cdr_id,
                    c.placed_at == placed,
                    c.app_id == app_id,  # routes the update to the app's shard on Citus
                    c.cost_status == int(rated.cost_status),
                    c.cost_nanos == stored.cost_nanos,
                    c.cycle == stored.cycle,
                    c.unit_price_nanos == stored.unit_price_nanos,
                    c.basic_price_nanos == stored.basic_price_nanos,
                    c.size == stored.size,
                    c.rate_prefix.is_(None)
                    if rated.prefix is None
                    else (c.rate_prefix == rated.prefix),
                )
                values: dict[str, object]
                if isinstance(decision, Priced):
                    ch = decision.charge
                    values = {
                        "cost_status": int(CostStatus.FINAL),
                        "cycle": ch.cycle,
                        "size": ch.size,
                        "unit_price_nanos": ch.unit_price_nanos,
                        "basic_price_nanos": ch.basic_price_nanos,
                        "cost_nanos": ch.cost_nanos,
                        "rate_plan_id": decision.plan_id,
                        "rated_at": now,
                        "rate_prefix": decision.prefix,
                        "pending_reason": None,
                    }
                else:
                    values = {
                        "cost_status": int(CostStatus.PENDING),
                        "cycle": 0,
                        "size": 0,
                        "unit_price_nanos": 0,
                        "basic_price_nanos": 0,
                        "cost_nanos": 0,
                        "rate_plan_id": None,
                        "rate_prefix": None,
                        "pending_reason": decision.reason,
                    }
                # A new charge is a new revision (the query API's kept rows, pages.py).
                values["revision"] = c.revision + 1
                done = conn.execute(schema.cdrs.update().where(unchanged).values(**values))
                if done.rowcount != 1:
                    continue
                written += 1
                # The rollups follow the charge: out of the old one, into the new.
                fact = _FACT(rated.cdr)
                if rated.cost_status is CostStatus.FINAL:
                    billed = stored.cycle * stored.size
                    tally.charges([(fact, rated.prefix, billed, stored.cost_nanos)], -1)
                if isinstance(decision, Priced):
                    ch = decision.charge
                    tally.charges([(fact, decision.prefix, ch.cycle * ch.size, ch.cost_nanos)])
                if isinstance(decision, Priced):
                    receipt = receipts_for(rated, decision)
                    if receipt is not None:
                        receipts.append(receipt)
            insert_receipts(conn, receipts, now)
            tally.write(conn, dialect)
        return written
