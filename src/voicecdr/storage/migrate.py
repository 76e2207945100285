"""Versioned migrations with Alembic, run programmatically (``voicecdr db upgrade``).

The migration scripts live in ``voicecdr/storage/migrations`` and ship inside the package,
so an installed voicecdr can upgrade a database without a checkout or an alembic.ini.

Alembic is imported only by what needs it: every command checks the schema version
first (:func:`require_current`), and importing Alembic costs a command like ``cdrs
import`` more start-up time than the check itself. So the check answers "current" from
one SELECT and the scripts' own ``revision``/``down_revision`` lines, and hands every
other case (older, newer, no table, a script it cannot read) to Alembic, which decides
and words the error exactly as before.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import SchemaOutOfDate
from . import citus
from .database import Database
from .engine import translated

if TYPE_CHECKING:
    from alembic.config import Config

_SCRIPTS = Path(__file__).with_name("migrations")
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.*?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"""^(?:"(\w+)"|'(\w+)')$""")


def _config(db: Database | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    if db is not None:
        cfg.attributes["engine"] = db.writer
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with translated("read schema version"), db.writer.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str]:
    """Bring the schema to ``revision``; returns (before, after)."""
    from alembic import command

    before = current_revision(db)
    with translated("schema upgrade"):
        command.upgrade(_config(db), revision)
    after = current_revision(db)
    assert after is not None
    if db.dialect == "postgresql" and after == head_revision():
        # Citus installed after the schema reached 0013 distributes it now (idempotent).
        with translated("distribute schema"), db.writer.begin() as conn:
            citus.distribute(conn)
    return before, after


def downgrade(db: Database, revision: str) -> None:
    """Step the schema back to ``revision`` (``base`` for empty): for tests and rollbacks."""
    from alembic import command

    with translated("schema downgrade"):
        command.downgrade(_config(db), revision)


def require_current(db: Database) -> None:
    """Raise SchemaOutOfDate unless the database is at this version's head."""
    if _quick_head() is not None and _quick_current(db) == _quick_head():
        return
    current, head = current_revision(db), head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"database schema is at {current or 'nothing'}, this voicecdr needs {head}: "
            "run `voicecdr db upgrade`"
        )


@lru_cache(maxsize=1)
def _quick_head() -> str | None:
    """The head revision read from the scripts' text, or None unless they form one plain
    chain (each names one revision and at most one parent): Alembic decides the rest."""
    parents: dict[str, str | None] = {}
    for script in (_SCRIPTS / "versions").glob("*.py"):
        text = script.read_text("utf-8")
        found = {m.group(1): m.group(2) for m in _REVISION_LINE.finditer(text)}
        revision = _QUOTED.match(found.get("revision", ""))
        down = found.get("down_revision", "")
        parent = None if down == "None" else _QUOTED.match(down)
        if revision is None or (down != "None" and parent is None):
            return None
        name = revision.group(1) or revision.group(2)
        if name in parents:
            return None
        parents[name] = None if parent is None else (parent.group(1) or parent.group(2))
    heads = set(parents) - set(parents.values())
    return heads.pop() if len(heads) == 1 else None


def _quick_current(db: Database) -> str | None:
    """The one revision in ``alembic_version``, or None for anything else (no table, no
    row, several rows): the cases Alembic itself must look at."""
    try:
        with db.writer.connect() as conn:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except sa.exc.DBAPIError:
        return None  # Alembic's own read follows, and reports a broken database as before
    return str(rows[0][0]) if len(rows) == 1 else None
