"""The Citus tier's own set-up: the cluster the session starts and its databases."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.citus import WORKERS
from voicecdr.storage import Database, citus, migrate, schema

pytestmark = pytest.mark.citus


def test_each_test_gets_a_migrated_database_on_every_worker(citus_url: str) -> None:
    with psycopg.connect(citus_url) as conn:
        nodes = conn.execute(
            "SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND groupid > 0"
        ).fetchone()
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert nodes == (WORKERS,)
    assert version is not None


@pytest.mark.parametrize("round_", [1, 2])
def test_a_test_never_sees_another_tests_rows(citus_url: str, round_: int) -> None:
    with psycopg.connect(citus_url) as conn:
        assert conn.execute("SELECT count(*) FROM apps").fetchone() == (0,)
        conn.execute(
            "INSERT INTO apps (name, appkey, secret_hash, signing_secret, timezone, language, "
            "rate_limit, created_at, updated_at) VALUES (%s, %s, '', '', 'UTC', 'en', 1, 0, 0)",
            (f"app{round_}", f"key{round_}"),
        )


def test_db_upgrade_distributes_the_schema_by_app_once(citus_url: str) -> None:
    with psycopg.connect(citus_url) as conn:
        placed = dict(
            conn.execute(
                "SELECT logicalrelid::regclass::text, partmethod::text || ':' || colocationid "
                "FROM pg_dist_partition"
            ).fetchall()
        )
    reference = {t: placed.pop(t) for t in citus.REFERENCE}
    assert {m.split(":")[0] for m in reference.values()} == {"n"}  # reference tables
    distributed = {t: placed.pop(t) for t in citus.DISTRIBUTED}
    assert len(set(distributed.values())) == 1  # hash by app_id, all colocated
    assert next(iter(distributed.values())).startswith("h:")
    # Everything else (the day partitions aside) stays on the coordinator only.
    assert all(schema.is_partition(t) for t in placed)
    db = Database(citus_url)
    try:
        before, after = migrate.upgrade(db)  # again: nothing to do
    finally:
        db.close()
    assert before == after == migrate.head_revision()
