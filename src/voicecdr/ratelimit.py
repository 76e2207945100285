"""The per-appkey rate limit policy: GCRA (the generic cell rate algorithm).

One number per key, the *theoretical arrival time* (TAT), is all the shared state. A
request at ``now`` is allowed when ``tat - now <= tau``; it then moves the TAT to
``max(tat, now) + interval``. With a rate of r/s, ``interval = 1/r`` and the burst
tolerance ``tau = interval * (burst - 1)``: ``burst`` requests at once, then one per
interval. An app's query limit (:meth:`Quota.per_second`) allows one second's worth at once.

This module is pure policy; the shared store (``voicecdr.storage.ratelimit``) applies it
atomically in one statement so every server process and host sees the same state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quota:
    """``rate`` requests per second with a burst of ``burst`` requests."""

    rate: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate must be positive and burst at least 1")

    @classmethod
    def per_second(cls, rate: float) -> Quota:
        """An app's query limit: ``ceil(rate)`` requests at once (one second's worth,
        as NXCloud clients fire a few pages in a row), then ``rate`` a second; at rate 1,
        exactly one request a second."""
        return cls(rate, burst=math.ceil(rate))

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    @property
    def tolerance(self) -> float:
        return self.interval * (self.burst - 1)


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a request may go ahead; if not, seconds until one may, and whether it is
    refused for failed authentications (locked out) rather than for its rate."""

    allowed: bool
    retry_after: float = 0.0
    locked_out: bool = False

    @property
    def retry_after_header(self) -> str:
        """Whole seconds for ``Retry-After``, never less than 1."""
        return str(max(1, math.ceil(self.retry_after)))


def step(tat: float | None, now: float, quota: Quota) -> tuple[Decision, float | None]:
    """One GCRA step: the decision and the new TAT (None when nothing changes)."""
    current = now if tat is None else max(tat, now)
    if current - now > quota.tolerance:
        return Decision(False, current - now - quota.tolerance), None
    return Decision(True), current + quota.interval
