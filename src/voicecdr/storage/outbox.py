"""The receipt outbox: recording, claiming, completing, listing and replaying receipts.

A receipt row is inserted in the same transaction that makes its CDR final
(:func:`insert_receipts`, called by the rating store). Senders *claim* due receipts by
moving ``next_attempt_at`` forward by a lease in a conditional UPDATE: the condition makes
the claim atomic on both databases, and a sender that dies mid-delivery simply lets the
lease run out, after which the receipt is claimed again under the same ``webhook-id``.

A receipt row holds what its body is made of, not the body: its CDR's id and time, the
charge it reports, and its app's timezone and language when it was made
(``ReceiptContent``); a claim reads the call from the CDR (call data never changes after
ingest). That keeps the rows the rater writes in every transaction small. Receipts
recorded before schema ``0005`` keep their stored ``payload`` instead.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..cdrfields import RECEIPT_FIELDS
from ..models import Language, ReceiptCall, ReceiptContent, ReceiptStatus
from ..rating import Charge
from . import schema
from .database import Database
from .engine import translated

r = schema.receipts.c
c = schema.cdrs.c


@dataclass(frozen=True, slots=True)
class NewReceipt:
    """A receipt to record for the CDR ``cdr_id`` (placed at ``placed_at``), reporting
    ``charge``, in its app's ``timezone`` and ``language``."""

    app_id: int
    cdr_id: int
    placed_at: int
    webhook_id: str
    charge: Charge
    timezone: str
    language: Language


@dataclass(frozen=True, slots=True)
class DueReceipt:
    """A claimed receipt, with where and how to send it (read from its app now, so a
    corrected callback URL or a rotated signing secret applies to retries)."""

    id: int
    app_id: int
    webhook_id: str
    attempt: int
    callback_url: str | None
    signing_secret: str
    content: ReceiptContent | None
    payload: str | None = None  # the stored body of a receipt made before schema 0005


@dataclass(frozen=True, slots=True)
class ReceiptInfo:
    id: int
    appkey: str
    cdr_id: int
    webhook_id: str
    status: ReceiptStatus
    attempts: int
    next_attempt_at: float
    created_at: int
    delivered_at: int | None
    last_status: int | None
    last_error: str | None


# A new receipt as the outbox stores it, a plain tuple for the driver's bulk paths (the
# rater writes thousands per transaction), in the order of RECEIPT_COLUMNS.
ReceiptRow = tuple[int, int, int, str, int, int, int, int, str, str, float, int]
RECEIPT_COLUMNS = (
    "app_id, cdr_id, cdr_placed_at, webhook_id, cycle, size, unit_price_nanos, "
    "basic_price_nanos, timezone, language, next_attempt_at, created_at"
)
_SQLITE_INSERT = (
    f"INSERT INTO receipts ({RECEIPT_COLUMNS}, status, attempts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)"
)
# COPY: faster than INSERT .. SELECT FROM unnest(arrays) or an INSERT per receipt
# (docs/performance.md#rater-writes-on-postgresql).
_PG_COPY = f"COPY receipts ({RECEIPT_COLUMNS}) FROM STDIN"
# The call a receipt body tells of, in ReceiptCall's order.
_CALL_COLUMNS = [c[name] for name in RECEIPT_FIELDS]


def receipt_row(receipt: NewReceipt, now: int) -> ReceiptRow:
    x, ch = receipt, receipt.charge
    return (
        x.app_id,
        x.cdr_id,
        x.placed_at,
        x.webhook_id,
        ch.cycle,
        ch.size,
        ch.unit_price_nanos,
        ch.basic_price_nanos,
        x.timezone,
        str(x.language),
        float(now),
        now,
    )


def insert_receipts(conn: sa.Connection, receipts: Sequence[NewReceipt], now: int) -> None:
    write_receipt_rows(conn, [receipt_row(x, now) for x in receipts])


def write_receipt_rows(conn: sa.Connection, rows: Sequence[ReceiptRow]) -> None:
    """Insert new receipts in ``conn``'s transaction, with the driver's bulk path."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_INSERT, rows)
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(_PG_COPY) as copy:
        write = copy.write_row
        for row in rows:
            write(row)


class Outbox:
    """SQL for the receipt sender and the ``voicecdr receipts`` commands."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim_due(
        self,
        *,
        now: float,
        limit: int,
        per_app: int,
        busy: dict[int, int],
        lease: float,
        app_id: int | None = None,
    ) -> list[DueReceipt]:
        """Claim up to ``limit`` due receipts, at most ``per_app`` per app minus what
        ``busy`` says that app already has in flight here, so one app's backlog can never
        take every slot; of the app ``app_id`` only if given (each statement then names
        it, so that Citus routes it to the app's node)."""
        own = () if app_id is None else (r.app_id == app_id,)
        ranked = (
            sa.select(
                r.id,
                r.app_id,
                sa.func.row_number()
                .over(partition_by=r.app_id, order_by=(r.next_attempt_at, r.id))
                .label("rank"),
            )
            .where(r.status == int(ReceiptStatus.PENDING), r.next_attempt_at <= now, *own)
            .subquery()
        )
        candidates = sa.select(ranked.c.id, ranked.c.app_id, ranked.c.rank).where(
            ranked.c.rank <= per_app
        )
        with translated("claim receipts"), self._db.writer.begin() as conn:
            chosen: list[int] = []
            for rid, app, rank in conn.execute(candidates.order_by(ranked.c.rank, ranked.c.id)):
                if rank <= per_app - busy.get(app, 0):
                    chosen.append(rid)
                if len(chosen) >= limit:
                    break
            if not chosen:
                return []
            claimed = conn.execute(
                schema.receipts.update()
                .where(
                    r.id.in_(chosen),
                    r.status == int(ReceiptStatus.PENDING),
                    r.next_attempt_at <= now,
                    *own,
                )
                .values(next_attempt_at=now + lease, attempts=r.attempts + 1)
                .returning(
                    r.id,
                    r.app_id,
                    r.webhook_id,
                    r.attempts,
                    r.payload,
                    r.cdr_id,
                    r.cdr_placed_at,
                    r.cycle,
                    r.size,
                    r.unit_price_nanos,
                    r.basic_price_nanos,
                    r.timezone,
                    r.language,
                )
            ).all()
            apps = {
                row.id: row
                for row in conn.execute(
                    sa.select(
                        schema.apps.c.id, schema.apps.c.callback_url, schema.apps.c.signing_secret
                    ).where(schema.apps.c.id.in_({x.app_id for x in claimed}))
                )
            }
            calls = _calls(conn, [x for x in claimed if x.payload is None], app_id)
        out = []
        for x in claimed:
            call = calls.get(x.cdr_id)
            content = None
            if x.payload is None and call is not None:
                content = ReceiptContent(
                    call,
                    x.cycle,
                    x.size,
                    x.unit_price_nanos,
                    x.basic_price_nanos,
                    x.timezone,
                    Language(x.language),
                )
            app = apps[x.app_id]
            out.append(
                DueReceipt(
                    x.id,
                    x.app_id,
                    x.webhook_id,
                    x.attempts,
                    app.callback_url,
                    app.signing_secret,
                    content,
                    x.payload,
                )
            )
        return out

    def apps_due(self, now: float) -> set[int]:
        """The apps with receipts due at ``now``: one statement, on every node on Citus
        (the sender's cheap look before it claims app by app)."""
        query = (
            sa.select(r.app_id)
            .where(r.status == int(ReceiptStatus.PENDING), r.next_attempt_at <= now)
            .distinct()
        )
        with translated("read apps with receipts due"), self._db.reader.connect() as conn:
            return set(conn.execute(query).scalars())

    def app_ids(self) -> list[int]:
        """Every app's id (the apps a sender claims for in turn on Citus)."""
        with translated("read apps"), self._db.reader.connect() as conn:
            return list(conn.execute(sa.select(schema.apps.c.id)).scalars())

    def delivered(
        self, receipt_id: int, *, status: int, now: int, app_id: int | None = None
    ) -> None:
        self._finish(
            receipt_id,
            app_id,
            status=int(ReceiptStatus.DELIVERED),
            delivered_at=now,
            last_status=status,
            last_error=None,
        )

    def failed(
        self,
        receipt_id: int,
        *,
        status: int | None,
        error: str,
        retry_at: float | None,
        app_id: int | None = None,
    ) -> None:
        """Record a failed attempt; ``retry_at`` None means the schedule is spent: dead.
        ``app_id``, the receipt's app, routes the update to its node on Citus."""
        values: dict[str, Any] = {"last_status": status, "last_error": error[:500]}
        if retry_at is None:
            values["status"] = int(ReceiptStatus.DEAD)
        else:
            values["next_attempt_at"] = retry_at
        self._finish(receipt_id, app_id, **values)

    def _finish(self, receipt_id: int, app_id: int | None, **values: Any) -> None:
        own = () if app_id is None else (r.app_id == app_id,)
        with translated("record receipt attempt"), self._db.writer.begin() as conn:
            conn.execute(
                schema.receipts.update()
                .where(r.id == receipt_id, r.status == int(ReceiptStatus.PENDING), *own)
                .values(**values)
            )

    def list(
        self,
        *,
        status: ReceiptStatus | None = None,
        failed_only: bool = False,
        app_id: int | None = None,
        ids: Collection[int] = (),
        limit: int = 100,
        offset: int = 0,
    ) -> list[ReceiptInfo]:
        """Newest first. ``failed_only``: pending receipts that have failed at least once."""
        query = (
            sa.select(
                r.id,
                schema.apps.c.appkey,
                r.cdr_id,
                r.webhook_id,
                r.status,
                r.attempts,
                r.next_attempt_at,
                r.created_at,
                r.delivered_at,
                r.last_status,
                r.last_error,
            )
            .join(schema.apps, schema.apps.c.id == r.app_id)
            .order_by(r.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if status is not None:
            query = query.where(r.status == int(status))
        if failed_only:
            query = query.where(r.status == int(ReceiptStatus.PENDING), r.last_error.is_not(None))
        if app_id is not None:
            query = query.where(r.app_id == app_id)
        if ids:
            query = query.where(r.id.in_(list(ids)))
        with translated("list receipts"), self._db.reader.connect() as conn:
            rows = conn.execute(query).all()
        return [ReceiptInfo(*row[:4], ReceiptStatus(row[4]), *row[5:]) for row in rows]

    def replay(
        self,
        *,
        now: float,
        ids: Collection[int] = (),
        app_id: int | None = None,
        created_from: int | None = None,
        created_to: int | None = None,
        dead_only: bool = False,
        failed_only: bool = False,
    ) -> int:
        """Send receipts again from the start of the schedule, under their own
        ``webhook-id`` (receivers deduplicate on it). Returns how many were queued."""
        query = schema.receipts.update().values(
            status=int(ReceiptStatus.PENDING), attempts=0, next_attempt_at=now, delivered_at=None
        )
        if ids:
            query = query.where(r.id.in_(list(ids)))
        if app_id is not None:
            query = query.where(r.app_id == app_id)
        if created_from is not None:
            query = query.where(r.created_at >= created_from)
        if created_to is not None:
            query = query.where(r.created_at <= created_to)
        states = []
        if dead_only:
            states.append(r.status == int(ReceiptStatus.DEAD))
        if failed_only:
            states.append(
                sa.and_(r.status == int(ReceiptStatus.PENDING), r.last_error.is_not(None))
            )
        if states:
            query = query.where(sa.or_(*states))
        # One statement for pending receipts (ix_receipts_due) and one for settled ones
        # (ix_receipts_app_settled, which leaves pending receipts out), so that each is
        # served by an index, pending first: the settled ones become pending. The
        # conditions are literal: a partial index is used only for a condition the
        # database can see implies the index's own.
        pending = sa.text(f"receipts.status = {int(ReceiptStatus.PENDING)}")
        settled = sa.text(f"receipts.{schema.SETTLED_RECEIPTS}")
        with translated("replay receipts"), self._db.writer.begin() as conn:
            return sum(int(conn.execute(query.where(part)).rowcount) for part in (pending, settled))

    def counts(self) -> dict[str, int]:
        """Receipts by state: pending (never tried), failed (pending, failed before),
        delivered and dead."""
        state = sa.case(
            (r.status == int(ReceiptStatus.DELIVERED), "delivered"),
            (r.status == int(ReceiptStatus.DEAD), "dead"),
            (r.last_error.is_not(None), "failed"),
            else_="pending",
        )
        with translated("count receipts"), self._db.reader.connect() as conn:
            rows = conn.execute(sa.select(state, sa.func.count()).group_by(state)).all()
        counts = dict.fromkeys(("pending", "failed", "delivered", "dead"), 0)
        counts.update((name, n) for name, n in rows)
        return counts

    def open_counts(self, app_id: int) -> dict[str, int]:
        """One app's receipts not delivered: pending (never tried), failed (pending,
        failed before) and dead. Delivered ones are left out, so that only the due index
        is read, however many an app has delivered."""
        state = sa.case(
            (r.status == int(ReceiptStatus.DEAD), "dead"),
            (r.last_error.is_not(None), "failed"),
            else_="pending",
        )
        query = (
            sa.select(state, sa.func.count())
            .where(
                r.app_id == app_id,
                r.status.in_([int(ReceiptStatus.PENDING), int(ReceiptStatus.DEAD)]),
            )
            .group_by(state)
        )
        with translated("count receipts"), self._db.reader.connect() as conn:
            rows = conn.execute(query).all()
        counts = dict.fromkeys(("pending", "failed", "dead"), 0)
        counts.update((name, n) for name, n in rows)
        return counts


def _calls(
    conn: sa.Connection, receipts: Sequence[sa.Row[Any]], app_id: int | None
) -> dict[int, ReceiptCall]:
    """The calls of ``receipts`` (all of ``app_id`` if given), by CDR id. Their times come
    along, so that PostgreSQL reads only the day partitions that hold them."""
    if not receipts:
        return {}
    own = () if app_id is None else (c.app_id == app_id,)
    query = sa.select(c.id, *_CALL_COLUMNS).where(
        c.id.in_({x.cdr_id for x in receipts}),
        c.placed_at.in_({x.cdr_placed_at for x in receipts}),
        *own,
    )
    return {row[0]: tuple(row[1:]) for row in conn.execute(query)}
