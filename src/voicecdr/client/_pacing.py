"""Pure pacing and retry policy: values in, delays out; no clock, no sleeping.

The client asks :class:`Pacer` how long to wait before each request and tells it when
one starts; after a failure it asks :class:`RetryState` how long to hold off (or gets the
error back when it must not retry) and hands that delay to the pacer. Tests drive both
with plain numbers.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ._exceptions import ClientError, IncompleteExport, RateLimited, ServerError, TransportError


@dataclass(frozen=True, slots=True)
class Retry:
    """How failures are retried.

    ``attempts`` bounds the retries of transient failures (network errors, timeouts,
    HTTP 5xx, ``internal``), each after an exponential backoff from ``backoff`` seconds,
    doubled per retry up to ``max_backoff``, with jitter so that many clients do not
    retry in step. ``rate_limited_attempts`` bounds the retries of ``rate_limited``
    answers, each after the server's ``Retry-After``. ``Retry(0, rate_limited_attempts=0)``
    never retries.
    """

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    rate_limited_attempts: int = 10

    def __post_init__(self) -> None:
        if self.attempts < 0 or self.rate_limited_attempts < 0:
            raise ValueError("retry attempts must not be negative")
        if self.backoff < 0 or self.max_backoff < self.backoff:
            raise ValueError("need 0 <= backoff <= max_backoff")

    def backoff_delay(self, retry: int, jitter: float) -> float:
        """Delay before the ``retry``-th retry (1-based); ``jitter`` in [0, 1) picks a
        point in the upper half of the exponential step ("equal jitter")."""
        ceiling = min(self.max_backoff, self.backoff * 2.0 ** (retry - 1))
        return ceiling / 2 + jitter * ceiling / 2


def is_transient(error: ClientError) -> bool:
    """Worth retrying: the same request may well succeed in a moment."""
    return isinstance(error, TransportError | ServerError)


def may_pass_later(error: ClientError) -> bool:
    """The same request may succeed later, after the retries gave up: the others are
    refusals of what was asked (wrong keys, a bad parameter or window, not the API)."""
    return is_transient(error) or isinstance(error, RateLimited | IncompleteExport)


class RetryState:
    """Counts the failures of one request and decides whether and when to retry."""

    def __init__(self, retry: Retry, jitter: Callable[[], float] = random.random) -> None:
        self._retry = retry
        self._jitter = jitter
        self.failures = 0
        self.limited = 0

    def delay_after(self, error: ClientError) -> float:
        """Seconds to wait before retrying after ``error``; raises ``error`` when the
        request must not (or may no longer) be retried."""
        if isinstance(error, RateLimited):
            self.limited += 1
            if self.limited > self._retry.rate_limited_attempts:
                raise error
            # Retry-After is the server's own answer to "when"; without one, a second is
            # NXCloud's default rate.
            return error.retry_after if error.retry_after is not None else 1.0
        if not is_transient(error):
            raise error
        self.failures += 1
        if self.failures > self._retry.attempts:
            raise error
        return self._retry.backoff_delay(self.failures, self._jitter())


class Pacer:
    """Minimum-interval pacing: a request starts at least ``1/rate + margin`` seconds after
    the previous one started *and* after the previous answer arrived, and never before a
    deadline set by :meth:`hold_off`.

    The server checks its limit somewhere between our send and its answer; a delayed send
    (a busy machine, a slow network) can land two checks closer together than our two
    sends. Counting the interval from the answer, which comes after the server's check,
    keeps the server's gap at least the interval whatever the delays. ``margin`` absorbs
    clock jitter. ``rate`` None disables the interval.
    """

    def __init__(self, rate: float | None = 1.0, margin: float = 0.05) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (or None for no pacing)")
        self.interval = 0.0 if rate is None else 1.0 / rate + margin
        self._not_before: float | None = None

    def wait(self, now: float) -> float:
        """Seconds to wait, at ``now``, before the next request may start."""
        return 0.0 if self._not_before is None else max(0.0, self._not_before - now)

    def started(self, now: float) -> None:
        """A request starts at ``now``."""
        self._push(now + self.interval)

    def finished(self, now: float) -> None:
        """The answer to a request arrived at ``now`` (or it failed then)."""
        self._push(now + self.interval)

    def hold_off(self, now: float, seconds: float) -> None:
        """No request before ``now + seconds`` (a back-off or a ``Retry-After``)."""
        self._push(now + seconds)

    def _push(self, deadline: float) -> None:
        if self._not_before is None or deadline > self._not_before:
            self._not_before = deadline
