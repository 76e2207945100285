"""Pure retry policy for receipts: when is the next attempt, if ever?

The default schedule follows the Standard Webhooks recommendation (5 s, 5 min, 30 min,
2 h, 5 h, 10 h, 10 h: about 28 hours in all, eight attempts). Each delay gets up to 10 %
of random jitter so that receipts failed by one outage do not return in one wave, and a
receiver's ``Retry-After`` can push an attempt later, never earlier.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_RETRY_AFTER = 86_400.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    schedule: tuple[int, ...] = DEFAULT_SCHEDULE
    jitter: float = 0.1

    def next_delay(
        self, attempts: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float | None:
        """Seconds until the next attempt after ``attempts`` failed ones, or None when the
        schedule is spent and the receipt is dead."""
        if attempts < 1:
            raise ValueError("attempts counts failed attempts and starts at 1")
        if attempts > len(self.schedule):
            return None
        delay = float(self.schedule[attempts - 1])
        delay += delay * self.jitter * (rng or random).random()
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return delay

    @property
    def max_attempts(self) -> int:
        return len(self.schedule) + 1
