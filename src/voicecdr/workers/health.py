"""Which background workers are failing, and why: what ``/readyz`` reports of them.

Each worker holds a :class:`Heartbeat`: it beats after every step that worked and reports
a step that failed; :func:`supervise` restarts a worker that crashed, with a growing pause,
and reports the crash until the worker's next good step. A step the database itself
failed (:class:`~voicecdr.errors.DatabaseUnavailable`: down, read-only, full) is only
retried: ``/readyz`` checks the database on its own, and reads may still be served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ..errors import DatabaseUnavailable, StorageError

log = logging.getLogger("voicecdr.workers")

RESTART_FIRST = 1.0  # seconds before the first restart; doubled per crash in a row
RESTART_MAX = 60.0
FAILING_AFTER = 3  # other storage errors in a row before a worker counts as failing


class WorkerHealth:
    """The failing workers of one process, by name, with the reason."""

    def __init__(self) -> None:
        self._failing: dict[str, str] = {}

    def failing(self) -> dict[str, str]:
        return dict(self._failing)

    def heartbeat(self, name: str) -> Heartbeat:
        return Heartbeat(self._failing, name)


class Heartbeat:
    """One worker's line to :class:`WorkerHealth`."""

    def __init__(self, failing: dict[str, str], name: str) -> None:
        self._failing = failing
        self.name = name
        self.crashes = 0  # in a row, since the last good step
        self.errors = 0  # storage errors in a row, since the last good step

    def ok(self) -> None:
        """A step worked: the worker is healthy again."""
        self.crashes = self.errors = 0
        self._failing.pop(self.name, None)

    def retrying(self, exc: StorageError) -> None:
        """A step failed in storage and will be retried. Not a fault of the database
        itself (a constraint, a value out of range), it is the worker failing once it
        repeats: a lock timeout under load does not flip readiness."""
        if isinstance(exc, DatabaseUnavailable):
            return
        self.errors += 1
        if self.errors >= FAILING_AFTER:
            self.failed(str(exc))

    def failed(self, reason: str) -> None:
        self._failing[self.name] = reason


def restart_delay(crashes: int) -> float:
    """Seconds before restarting a worker that crashed ``crashes`` times in a row."""
    return float(min(RESTART_MAX, RESTART_FIRST * 2 ** min(crashes - 1, 16)))


async def supervise(
    heart: Heartbeat, run: Callable[[], Awaitable[None]], stopping: asyncio.Event
) -> None:
    """Run a worker until ``stopping`` is set, restarting it whenever it crashes."""
    while not stopping.is_set():
        try:
            await run()
            return
        except Exception as exc:
            heart.crashes += 1
            delay = restart_delay(heart.crashes)
            heart.failed(f"{type(exc).__name__}: {exc}")
            log.exception(
                f"worker {heart.name} crashed; restarting it in {delay:g} s "
                f"({heart.crashes} in a row); /readyz answers 503 until it runs again",
                extra={"worker": heart.name, "crashes": heart.crashes, "restart_in": delay},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
