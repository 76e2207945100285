"""Versioned migrations with Alembic, run programmatically (``voicecdr db upgrade``).

The migration scripts live in ``voicecdr/storage/migrations`` and ship inside the package,
so an installed voicecdr can upgrade a database without a checkout or an alembic.ini.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ..errors import SchemaOutOfDate
from .engine import translated
from .store import Store

_SCRIPTS = Path(__file__).with_name("migrations")


def _config(store: Store) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["engine"] = store.writer
    return cfg


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(store: Store) -> str | None:
    with translated("read schema version"), store.writer.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(store: Store, revision: str = "head") -> tuple[str | None, str]:
    """Bring the schema to ``revision``; returns (before, after)."""
    before = current_revision(store)
    with translated("schema upgrade"):
        command.upgrade(_config(store), revision)
    after = current_revision(store)
    assert after is not None
    return before, after


def downgrade(store: Store, revision: str) -> None:
    """Step the schema back to ``revision`` (``base`` for empty): for tests and rollbacks."""
    with translated("schema downgrade"):
        command.downgrade(_config(store), revision)


def require_current(store: Store) -> None:
    """Raise SchemaOutOfDate unless the database is at this version's head."""
    current, head = current_revision(store), head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"database schema is at {current or 'nothing'}, this voicecdr needs {head}: "
            "run `voicecdr db upgrade`"
        )
