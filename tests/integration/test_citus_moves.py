"""On Citus, a query API page read in a snapshot reads one placement of its app: a shard
move's cutover waits for the read to end, so the page's total and its rows never come
from two placements (the torn page test_citus_grow.py once saw, 1 run in 5)."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from tests.integration.test_query_api import load
from tests.support.data import canonical, make_app
from voicecdr.models import VoiceGroup
from voicecdr.storage import Database
from voicecdr.storage.pages import PageReader, PageRequest, Stamp

pytestmark = pytest.mark.citus

WAIT = 30.0  # seconds: bounds every wait below, so a regression fails instead of hanging


def _placement(conn: psycopg.Connection[Any], app_id: int) -> tuple[int, str, int, str, int]:
    """The app's cdrs shard, the node holding it, and another worker to move it to."""
    shard, host, port = conn.execute(
        "SELECT s.shardid, p.nodename, p.nodeport FROM pg_dist_shard_placement p "
        "JOIN (SELECT get_shard_id_for_distribution_column('cdrs', %s) AS shardid) s "
        "USING (shardid)",
        (app_id,),
    ).fetchone()
    other_host, other_port = conn.execute(
        "SELECT nodename, nodeport FROM pg_dist_node "
        "WHERE shouldhaveshards AND noderole = 'primary' AND groupid > 0 "
        "AND (nodename, nodeport) <> (%s, %s) ORDER BY nodeport LIMIT 1",
        (host, port),
    ).fetchone()
    return shard, host, port, other_host, other_port


def _until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_shard_move_waits_for_a_page_read_of_its_app(citus_url: str) -> None:
    db = Database(citus_url)
    # The read stops inside its snapshot (the lookup runs between its statements) until
    # the test lets it go on.
    inside, go_on, moved = threading.Event(), threading.Event(), threading.Event()
    threads: list[threading.Thread] = []
    try:
        make_app(db, "app1", secretkey="secret1")
        with db.reader.connect() as conn:
            app_id = conn.exec_driver_sql("SELECT id FROM apps WHERE appkey = 'app1'").scalar_one()
        load(db, [canonical(f"c{n}", messageid=f"m{n}", second=n) for n in range(1, 4)])
        with psycopg.connect(citus_url, autocommit=True) as admin:
            shard, host, port, to_host, to_port = _placement(admin, app_id)

        def lookup(stamps: list[Stamp]) -> list[None]:
            inside.set()
            go_on.wait(WAIT)
            return [None] * len(stamps)

        # A messageid's page is always read in a snapshot (never guessed).
        request = PageRequest(
            app_id, VoiceGroup.GROUP_CALL, 0, 2**31, offset=0, limit=10, messageid="m2"
        )
        pages: list[Any] = []
        mover_pid: list[int] = []

        def move() -> None:
            with psycopg.connect(citus_url, autocommit=True) as conn:
                mover_pid.append(conn.info.backend_pid)
                conn.execute(
                    "SELECT citus_move_shard_placement(%s, %s, %s, %s, %s, "
                    "shard_transfer_mode => 'block_writes')",
                    (shard, host, port, to_host, to_port),
                )
            moved.set()

        threads.append(
            threading.Thread(target=lambda: pages.append(PageReader(db).read(request, lookup)))
        )
        threads[0].start()
        assert inside.wait(WAIT)
        # block_writes takes at once the lock that a rebalance's logical-replication move
        # takes at its cutover (BlockWritesToShardList in Citus's shard_transfer.c).
        threads.append(threading.Thread(target=move))
        threads[1].start()
        with psycopg.connect(citus_url, autocommit=True) as watch:

            def mover_waits() -> bool:
                assert not moved.is_set(), "the shard moved while a page read held its app"
                return (
                    bool(mover_pid)
                    and watch.execute(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted)",
                        (mover_pid[0],),
                    ).fetchone()[0]
                )

            _until(mover_waits, "the move to wait for the page read")
        go_on.set()
        for thread in threads:
            thread.join(WAIT)
        assert moved.is_set(), "the move did not finish after the read ended"
        assert [(p.total, len(p.rows)) for p in pages] == [(1, 1)]
        with psycopg.connect(citus_url, autocommit=True) as admin:
            assert _placement(admin, app_id)[1:3] == (to_host, to_port)
        assert PageReader(db).read(request).total == 1  # from the new placement
        with psycopg.connect(citus_url, autocommit=True) as admin:
            # The old placement now, not in the background later: the next test's
            # cleanup deletes apps, which the old placement's rows still reference.
            admin.execute("CALL citus_cleanup_orphaned_resources()")
    finally:
        go_on.set()
        for thread in threads:
            thread.join(WAIT)
        db.close()
