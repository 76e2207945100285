"""The console's stored session-signing key: made by whichever process asks first."""

from __future__ import annotations

import secrets
import time

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from . import schema
from .database import Database
from .engine import translated

_ROW = 1  # one key for the whole deployment


def console_key(db: Database) -> str:
    """The stored key, made now if there is none; concurrent first callers agree, since
    only one insert wins and every caller reads the row back."""
    table = schema.console_keys
    insert = (postgresql.insert if db.dialect == "postgresql" else sqlite.insert)(table)
    made = insert.values(id=_ROW, key=secrets.token_urlsafe(48), created_at=int(time.time()))
    with translated("console key"), db.writer.begin() as conn:
        conn.execute(made.on_conflict_do_nothing(index_elements=["id"]))
        key: str = conn.execute(sa.select(table.c.key).where(table.c.id == _ROW)).scalar_one()
    return key
