"""Apps: creating, reading, listing and changing them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..errors import Conflict, NotFound
from ..models import App, Language
from . import citus, rollups, schema
from .database import Database
from .engine import translated

_APP_COLUMNS = list(schema.apps.c)


def _app(row: sa.Row[Any]) -> App:
    m = row._mapping
    return App(
        id=m["id"],
        name=m["name"],
        appkey=m["appkey"],
        secret_hash=m["secret_hash"],
        signing_secret=m["signing_secret"],
        timezone=m["timezone"],
        language=Language(m["language"]),
        callback_url=m["callback_url"],
        rate_limit=float(m["rate_limit"]),
        created_at=m["created_at"],
        disabled_at=m["disabled_at"],
    )


class AppStore:
    """The apps of ``db``, as :class:`App` values."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, values: dict[str, Any], *, now: int) -> App:
        with translated("create app"), self._db.writer.begin() as conn:
            taken = conn.execute(
                sa.select(schema.apps.c.id).where(schema.apps.c.appkey == values["appkey"])
            ).first()
            if taken:
                raise Conflict(f"appkey {values['appkey']!r} is already taken")
            row = conn.execute(
                schema.apps.insert()
                .values(**values, created_at=now, updated_at=now)
                .returning(*_APP_COLUMNS)
            ).one()
        return _app(row)

    def get(self, appkey: str) -> App | None:
        with translated("read app"), self._db.reader.connect() as conn:
            row = conn.execute(
                sa.select(*_APP_COLUMNS).where(schema.apps.c.appkey == appkey)
            ).first()
        return _app(row) if row else None

    def list(self) -> list[App]:
        with translated("list apps"), self._db.reader.connect() as conn:
            rows = conn.execute(sa.select(*_APP_COLUMNS).order_by(schema.apps.c.id)).all()
        return [_app(r) for r in rows]

    def update(self, appkey: str, changes: dict[str, Any], *, now: int) -> App:
        distributed = "timezone" in changes and self._db.citus
        with translated("update app"), self._db.writer.begin() as conn:
            if distributed:
                citus.hold_zones(conn, exclusive=True)
            row = conn.execute(
                schema.apps.update()
                .where(schema.apps.c.appkey == appkey)
                .values(**changes, updated_at=now)
                .returning(*_APP_COLUMNS)
            ).first()
            if row is not None and "timezone" in changes:
                # Its rollups are by local hour and day: made again in the new zone, in
                # this transaction (writers wait on the row lock the UPDATE holds).
                rollups.rebuild(conn, self._db.dialect, row.id, distributed=distributed)
        if row is None:
            raise NotFound(f"no app with appkey {appkey!r}")
        return _app(row)
