"""An app's CDRs in a time window, in (time, id) order, for any window length: read in
keyset pages (each starts after the last row of the one before), so memory stays at one
page per voice group however many rows there are. For the operator (``voicecdr cdrs
list``); the query API reads its pages in ``pages``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from operator import itemgetter

import sqlalchemy as sa

from ..models import Service, VoiceGroup
from . import schema
from .database import Database
from .engine import translated
from .pages import ROW_FIELDS, RowTuple

PAGE_ROWS = 1000
ROW_COLUMNS = [schema.cdrs.c[name] for name in ROW_FIELDS]  # a row's columns, to select
_PLACED, _ID = ROW_FIELDS.index("placed_at"), ROW_FIELDS.index("id")


def window_rows(
    db: Database,
    app_id: int,
    start: int,
    end: int,
    *,
    service: Service | None = None,
    group: VoiceGroup | None = None,
    messageid: str | None = None,
    where: Sequence[sa.ColumnElement[bool]] = (),
    page_rows: int = PAGE_ROWS,
) -> Iterator[RowTuple]:
    """Rows (``ROW_FIELDS``) of app ``app_id`` placed in ``[start, end]``, ordered by
    (time, id): of one ``service``, one voice ``group``, or both groups merged; only those
    meeting every condition in ``where`` (the console's search). Each page is read as the
    table is at that moment."""
    if service is not None:
        group = service.voice_group
    groups = list(VoiceGroup) if group is None else [group]
    streams = [
        _group_rows(db, app_id, g, start, end, service, messageid, where, page_rows) for g in groups
    ]
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=itemgetter(_PLACED, _ID))


def _group_rows(
    db: Database,
    app_id: int,
    group: VoiceGroup,
    start: int,
    end: int,
    service: Service | None,
    messageid: str | None,
    where: Sequence[sa.ColumnElement[bool]],
    page_rows: int,
) -> Iterator[RowTuple]:
    c = schema.cdrs.c
    # The query API's index (app_id, voice_group, placed_at, id) serves every page.
    query = (
        sa.select(*ROW_COLUMNS)
        .where(c.app_id == app_id, c.voice_group == int(group), c.placed_at <= end, *where)
        .order_by(c.placed_at, c.id)
        .limit(page_rows)
    )
    if service is not None:
        query = query.where(c.service == int(service))
    if messageid is not None:
        query = query.where(c.messageid == messageid)
    after = query.where(c.placed_at >= start)
    while True:
        with translated("list CDRs"), db.reader.connect() as conn:
            rows = conn.execute(after).all()
        yield from rows
        if len(rows) < page_rows:
            return
        last = rows[-1]
        after = query.where(sa.tuple_(c.placed_at, c.id) > sa.tuple_(last[_PLACED], last[_ID]))
