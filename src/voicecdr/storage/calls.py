"""One stored call as the console shows it: every column of its CDR, the rate row that
priced it (and its plan's version), and its receipt's delivery record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..models import ReceiptStatus, Service
from . import schema
from .database import Database
from .engine import translated

c = schema.cdrs.c
rt = schema.rates.c
p = schema.rate_plans.c
r = schema.receipts.c


@dataclass(frozen=True, slots=True)
class RateRow:
    """The rate that priced a call: its service (None: ``*``), prefix, cycle and prices,
    and the version of the plan it belongs to."""

    plan_version: int
    service: int | None
    prefix: str
    cycle: int
    unit_price_nanos: int
    basic_price_nanos: int

    @property
    def service_name(self) -> str | None:
        return None if self.service is None else Service(self.service).wire_name


@dataclass(frozen=True, slots=True)
class Delivery:
    """A receipt's delivery record, as the outbox keeps it: the attempts made, the last
    one's HTTP status or error, when it was made, delivered, or is next tried."""

    webhook_id: str
    status: ReceiptStatus
    attempts: int
    created_at: int
    delivered_at: int | None
    next_attempt_at: float
    last_status: int | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Call:
    """A stored CDR (every column of ``cdrs``, by name), its rate row, its receipts."""

    columns: dict[str, Any]
    rate: RateRow | None
    receipts: list[Delivery]


def read_call(db: Database, app_id: int, cdr_id: int) -> Call | None:
    """App ``app_id``'s CDR ``cdr_id``; None if there is none, or it is another app's."""
    with translated("read a call"), db.reader.connect() as conn:
        row = conn.execute(
            sa.select(schema.cdrs).where(c.id == cdr_id, c.app_id == app_id)
        ).one_or_none()
        if row is None:
            return None
        columns = dict(row._mapping)
        rate = _rate(conn, columns)
        receipts = conn.execute(
            sa.select(
                r.webhook_id,
                r.status,
                r.attempts,
                r.created_at,
                r.delivered_at,
                r.next_attempt_at,
                r.last_status,
                r.last_error,
            )
            .where(r.cdr_id == cdr_id, r.app_id == app_id)
            .order_by(r.id)
        ).all()
    return Call(
        columns,
        rate,
        [Delivery(w, ReceiptStatus(s), *rest) for w, s, *rest in receipts],
    )


def _rate(conn: sa.Connection, cdr: dict[str, Any]) -> RateRow | None:
    """The plan's row with the stored prefix: the call's own service's if it has one
    (pricing consults those first), else the ``*`` row."""
    if cdr["rate_plan_id"] is None or cdr["rate_prefix"] is None:
        return None
    found = conn.execute(
        sa.select(
            p.version, rt.service, rt.prefix, rt.cycle, rt.unit_price_nanos, rt.basic_price_nanos
        )
        .join(schema.rate_plans, p.id == rt.plan_id)
        .where(
            rt.plan_id == cdr["rate_plan_id"],
            rt.prefix == cdr["rate_prefix"],
            sa.or_(rt.service == cdr["service"], rt.service.is_(None)),
        )
        .order_by(rt.service.is_(None), rt.id)
        .limit(1)
    ).first()
    return None if found is None else RateRow(*found)
