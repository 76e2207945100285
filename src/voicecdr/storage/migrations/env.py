"""Alembic environment: runs on the engine voicecdr hands over (never reads alembic.ini)."""

from __future__ import annotations

from alembic import context

from voicecdr.storage.schema import declared_name, metadata_for

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata_for(connection.dialect.name),
        include_name=declared_name,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
