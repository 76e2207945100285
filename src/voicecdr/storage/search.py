"""The console's call search: one page of an app's CDRs in a window, narrowed by a
:class:`CallFilter`, with the exact total.

Without a filter (or with a messageid alone) the page is the query API's
(``PageReader``): bucket counts give the total and place deep pages. A filter the bucket
counts do not know (phone, country code, connected, cost status) is counted per bucket
in one grouped statement over the window's rows; the page then starts at the bucket
holding its first row, so a deep page costs what page 1 costs. Both statements read one
snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..models import CostStatus, VoiceGroup
from . import schema
from .counts import BUCKET_SECONDS
from .database import Database
from .engine import translated
from .listing import ROW_COLUMNS
from .pages import Page, PageReader, PageRequest, RowTuple

c = schema.cdrs.c


@dataclass(frozen=True, slots=True)
class CallFilter:
    """What narrows a search besides the window and voice group: a phone number (stored
    digits, without the country code), or its prefix with ``phone_prefix``; a country
    code; connected or not; a cost status. None: any."""

    phone: str | None = None
    phone_prefix: bool = False
    country_code: str | None = None
    connected: bool | None = None
    cost_status: CostStatus | None = None

    @property
    def empty(self) -> bool:
        return (
            self.phone is None
            and self.country_code is None
            and self.connected is None
            and self.cost_status is None
        )

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        found: list[sa.ColumnElement[bool]] = []
        if self.phone is not None:
            found.append(
                c.phone.startswith(self.phone, autoescape=True)
                if self.phone_prefix
                else c.phone == self.phone
            )
        if self.country_code is not None:
            found.append(c.country_code == self.country_code)
        if self.connected is not None:
            found.append(c.connected.is_(self.connected))
        if self.cost_status is not None:
            found.append(c.cost_status == int(self.cost_status))
        return found


@dataclass(frozen=True, slots=True)
class Search:
    """App ``app_id``'s CDRs of voice group ``group`` placed in ``[start, end]`` (epoch
    seconds, inclusive), of one ``messageid`` if given, narrowed by ``filter``."""

    app_id: int
    group: VoiceGroup
    start: int
    end: int
    messageid: str | None = None
    filter: CallFilter = CallFilter()

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        """Every condition of the search, as the listing (and the CSV export) applies
        them besides the app, group and window."""
        extra = self.filter.conditions()
        if self.messageid is not None:
            extra.append(c.messageid == self.messageid)
        return extra


@dataclass(frozen=True, slots=True)
class Found:
    """A page of rows (``ROW_FIELDS``) in (time, id) order, and the search's exact total."""

    total: int
    rows: list[RowTuple]


class CallSearch:
    """Reads search pages from ``db``; thread-safe."""

    def __init__(self, db: Database, pages: PageReader | None = None) -> None:
        self._db = db
        self._pages = pages or PageReader(db)

    def page(self, search: Search, offset: int, limit: int) -> Found:
        if search.filter.empty:
            page: Page[None] = self._pages.read(
                PageRequest(
                    search.app_id,
                    search.group,
                    search.start,
                    search.end,
                    offset,
                    limit,
                    search.messageid,
                    whole=True,
                )
            )
            return Found(page.total, [page.rows[stamp[0]] for stamp in page.stamps])
        with translated("search CDRs"), self._db.snapshot(search.app_id) as conn:
            return _filtered(conn, search, offset, limit)


def _filtered(conn: sa.Connection, search: Search, offset: int, limit: int) -> Found:
    """The page from per-bucket counts of the matching rows, read in one snapshot."""
    where = [
        c.app_id == search.app_id,
        c.voice_group == int(search.group),
        c.placed_at >= search.start,
        c.placed_at <= search.end,
        *search.conditions(),
    ]
    bucket = (c.placed_at - c.placed_at % BUCKET_SECONDS).label("bucket")
    counted = conn.execute(
        sa.select(bucket, sa.func.count()).where(*where).group_by(bucket).order_by(bucket)
    ).all()
    since, before = _place(counted, search.start, offset)
    total = sum(n for _, n in counted)
    if offset >= total:
        return Found(total, [])
    rows = conn.execute(
        sa.select(*ROW_COLUMNS)
        .where(*where, c.placed_at >= since)
        .order_by(c.placed_at, c.id)
        .limit(limit)
        .offset(offset - before)
    ).all()
    return Found(total, list(rows))


def _place(counted: Sequence[Sequence[Any]], start: int, offset: int) -> tuple[int, int]:
    """Where the page at ``offset`` starts: the start of the bucket holding its first
    row (not before the window's start), and the matching rows before it."""
    since, before = start, 0
    for bucket, n in counted:
        if before + n > offset:
            break
        since, before = max(start, int(bucket) + BUCKET_SECONDS), before + int(n)
    return since, before
