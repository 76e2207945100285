"""The query API's reads: a page of an app's CDRs with its exact total, from one snapshot
(see ``pages``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..models import CdrRow, VoiceGroup
from . import pages
from .cdrrow import cdr_row
from .database import Database
from .engine import on_driver, translated
from .pages import RowPage, Stamp, StampedPage

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    rows: list[CdrRow]


class PageReader:
    """Pages of CDRs for the query API, read from ``db``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._sql = {name: db.driver_sql(text) for name, text in pages.SQL.items()}
        self._seeks = pages.Seeks()
        self._admitting_sql: dict[str, dict[str, str]] = {}

    def query_cdrs(
        self,
        app_id: int,
        group: VoiceGroup,
        start: int,
        end: int,
        *,
        messageid: str | None,
        offset: int,
        limit: int,
    ) -> Page:
        """:meth:`query_rows` with each row as a :class:`CdrRow`."""
        page = self.query_rows(
            app_id, group, start, end, messageid=messageid, offset=offset, limit=limit
        )
        return Page(page.total, [cdr_row(r) for r in page.rows])

    def query_rows(
        self,
        app_id: int,
        group: VoiceGroup,
        start: int,
        end: int,
        *,
        messageid: str | None,
        offset: int,
        limit: int,
    ) -> RowPage:
        """One page of an app's CDRs in ``[start, end]`` ordered by (time, id), with the
        exact total; both read from one snapshot. Rows are driver tuples (``RowTuple``).

        The total comes from the bucket counts plus the rows of the two partial buckets
        at the window's edges, and the page starts at the bucket holding row ``offset``
        (see ``counts``): both cost about the same at any window size and any page. A
        messageid picks out a handful of rows through its own index instead.
        """
        params = pages.window_params(app_id, group, start, end, limit)
        key = (app_id, int(group), start, end)

        def read(cursor: Any) -> RowPage:
            return pages.read_page(
                cursor,
                self._sql,
                params,
                messageid=messageid,
                offset=offset,
                seeks=self._seeks,
                key=key,
            )

        return self._snapshot("query CDRs", read)

    def query_stamped(
        self,
        app_id: int,
        group: VoiceGroup,
        start: int,
        end: int,
        *,
        offset: int,
        limit: int,
        lookup: Callable[[list[Stamp]], list[_T | None]],
        whole: bool = False,
        admission: pages.Admission | None = None,
    ) -> StampedPage[_T]:
        """:meth:`query_rows` (without a messageid) for a caller that keeps what it makes
        of rows: the page as stamps (``pages.STAMP_FIELDS``, exact identities of a row's
        whole content), ``lookup`` of them (a value or None for each), and the whole rows
        only of the stamps it gave None for, all from one snapshot. ``whole`` reads every
        row whole at once: for a caller expecting to know few of them.

        A page whose start can be guessed (``pages.Seeks``) is read without a snapshot,
        its counts and stamps in one statement: on PostgreSQL that saves a transaction's
        two round trips and the seek's; on SQLite, a transaction and the seek.

        ``admission`` (PostgreSQL only) is the request's rate-limit token, taken first:
        by that one statement when there is one, else by a statement of its own. Raises
        ``pages.Refused``, having read nothing, if it is refused."""
        params = pages.window_params(app_id, group, start, end, limit)
        key = (app_id, int(group), start, end)
        guess = self._seeks.guess(key, start, offset)
        sql = self._sql
        if admission is not None:
            if guess is None:
                with translated("rate limit"):
                    if not self._db.pinned.run(admission.take):
                        raise pages.Refused
                admission = None
            else:
                sql = self._admitting(admission.sql)

        def read(cursor: Any) -> StampedPage[_T]:
            return pages.read_stamped(
                cursor,
                self._sql,
                params,
                offset=offset,
                lookup=lookup,
                whole=whole,
                seeks=self._seeks,
                key=key,
            )

        if guess is not None:
            guessed = functools.partial(
                pages.read_guessed,
                sql=sql,
                params=dict(params),
                offset=offset,
                guess=guess,
                lookup=lookup,
                whole=whole,
                admission=admission,
            )
            with translated("query CDRs"):
                found = self._db.pinned.run(guessed)
            if found is not None:
                return found
            self._seeks.forget(key)
        return self._snapshot("query CDRs", read)

    def _admitting(self, admission: str) -> dict[str, str]:
        """:attr:`_sql` with the counted statements taking a token by ``admission``
        (``pages.admitting``); made once per statement text (one per database)."""
        found = self._admitting_sql.get(admission)
        if found is None:
            found = self._admitting_sql[admission] = {
                **self._sql,
                **{
                    name: self._db.driver_sql(pages.admitting(text, admission))
                    for name, text in pages.GATED.items()
                },
            }
        return found

    def _snapshot(self, what: str, read: Callable[[Any], _T]) -> _T:
        # The bare driver: this is the query API's whole database work. One snapshot
        # (BEGIN on SQLite, the engine's REPEATABLE READ on PostgreSQL), and a commit at
        # the end rather than a rollback: psycopg forgets prepared statements on rollback.
        with translated(what):
            return on_driver(self._db.snapshots, read, begin=self._db.snapshot_begin)
