"""kill -9 the worker at random moments while it rates and delivers: no receipt is lost,
and a receipt sent twice carries the same webhook-id and body both times."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

from tests.acceptance.conftest import Cli
from tests.support.data import canonical, read_cdrs
from tests.support.receiver import Answer, receiving
from voicecdr.models import CostStatus, ReceiptStatus, VoiceGroup
from voicecdr.storage import AppStore, Database, Outbox

CALLS = 150
PLAN = "service,prefix,cycle,unit_price,basic_price\n*,,20,0.05,0.005\n"


def test_kill_9_during_rating_and_delivery_loses_nothing(
    cli: Cli, tmp_path: Path, database_url: str
) -> None:
    rng = random.Random(1234)
    cli.env.update(
        VOICECDR_ALLOW_PRIVATE_CALLBACKS="true",
        VOICECDR_RECEIPT_TIMEOUT="2",  # a killed sender's lease runs out after 14 s
        # On a busy machine an attempt may time out: retry it soon, it is not the point here.
        VOICECDR_RECEIPT_RETRY_SCHEDULE="1,1,1,1,1,1,1,1",
        VOICECDR_RECEIPT_CONCURRENCY="8",
        VOICECDR_RECEIPT_CONCURRENCY_PER_APP="8",
        VOICECDR_RATER_BATCH_SIZE="10",  # many small rating transactions to land kills in
    )
    with receiving(lambda n, r: Answer(delay=rng.uniform(0.005, 0.03))) as receiver:
        assert (
            cli(
                "apps",
                "create",
                "--name",
                "A",
                "--appkey",
                "app1",
                "--callback-url",
                f"{receiver.url}/dr",
            ).code
            == 0
        )
        (tmp_path / "plan.csv").write_text(PLAN)
        cli("rates", "import", "app1", str(tmp_path / "plan.csv"))
        records = [
            canonical(f"c{i}", second=1 + i % 90, time=f"2019-09-09 09:{i % 60:02d}:00")
            for i in range(CALLS)
        ]
        (tmp_path / "cdrs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        assert cli("cdrs", "import", str(tmp_path / "cdrs.jsonl")).code == 0

        kills = 0
        for _ in range(6):
            worker = subprocess.Popen(
                cli.command("worker"),
                cwd=cli.cwd,
                env=cli.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.6, 1.6))
            if worker.poll() is None:
                worker.send_signal(signal.SIGKILL)
                kills += 1
            worker.wait()
        assert kills == 6

        db = Database(database_url)
        try:
            final = subprocess.Popen(
                cli.command("worker"),
                cwd=cli.cwd,
                env=cli.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    if Outbox(db).counts()["delivered"] == CALLS:
                        break
                    time.sleep(0.25)
            finally:
                final.terminate()
                final.wait(20)
            app = AppStore(db).get("app1")
            assert app is not None
            page = read_cdrs(
                db, app.id, VoiceGroup.GROUP_CALL, 0, 2**40, messageid=None, offset=0, limit=1000
            )
            receipts = Outbox(db).list(limit=10_000)
        finally:
            db.close()

    # Every CDR is final, with exactly one receipt, and that receipt was delivered.
    assert page.total == CALLS
    assert {row.cost_status for row in page.rows} == {CostStatus.FINAL}
    assert sorted(r.cdr_id for r in receipts) == sorted(row.id for row in page.rows)
    stuck = [(r.attempts, r.last_error) for r in receipts if r.status != ReceiptStatus.DELIVERED]
    assert stuck == []
    # The receiver saw every webhook-id; any repeat is byte-for-byte the same receipt.
    seen = receiver.by_webhook_id()
    assert set(seen) == {r.webhook_id for r in receipts}
    for copies in seen.values():
        assert len({c.body for c in copies}) == 1
    repeats = sum(len(c) - 1 for c in seen.values())
    print(f"{kills} kills, {len(receiver.received)} posts, {repeats} repeats")
