"""What /readyz learns of the background workers (workers/health.py)."""

from __future__ import annotations

from voicecdr.errors import DatabaseUnavailable, StorageError
from voicecdr.workers.health import FAILING_AFTER, WorkerHealth, restart_delay


def test_restarts_wait_longer_after_each_crash_in_a_row_up_to_a_minute() -> None:
    assert [restart_delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert restart_delay(10_000) == 60


def test_a_failed_worker_is_healthy_again_after_its_next_good_step() -> None:
    health = WorkerHealth()
    rater, sender = health.heartbeat("rater"), health.heartbeat("sender")
    rater.failed("ValueError: boom")
    sender.ok()
    assert health.failing() == {"rater": "ValueError: boom"}
    rater.ok()
    assert health.failing() == {}


def test_repeated_storage_errors_make_a_worker_failing_but_database_faults_do_not() -> None:
    health = WorkerHealth()
    rater = health.heartbeat("rater")
    for _ in range(10):
        rater.retrying(DatabaseUnavailable("rate CDRs failed: database is read-only"))
    assert health.failing() == {}  # /readyz checks the database itself; reads go on
    for _ in range(FAILING_AFTER - 1):
        rater.retrying(StorageError("rate CDRs failed: NumericValueOutOfRange"))
    assert health.failing() == {}  # once or twice: a lock timeout under load, say
    rater.retrying(StorageError("rate CDRs failed: NumericValueOutOfRange"))
    assert health.failing() == {"rater": "rate CDRs failed: NumericValueOutOfRange"}
    rater.ok()
    assert health.failing() == {}
