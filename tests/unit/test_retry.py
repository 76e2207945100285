from __future__ import annotations

import random

import pytest

from voicecdr.retry import DEFAULT_SCHEDULE, RetryPolicy


def test_default_schedule_is_about_a_day_with_eight_attempts() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 8
    assert 24 * 3600 < sum(DEFAULT_SCHEDULE) < 30 * 3600


def test_delays_follow_the_schedule_with_bounded_jitter() -> None:
    policy = RetryPolicy((5, 300, 1800))
    rng = random.Random(1)
    for attempt, base in enumerate((5, 300, 1800), start=1):
        for _ in range(50):
            delay = policy.next_delay(attempt, rng=rng)
            assert delay is not None
            assert base <= delay <= base * 1.1


def test_jitter_spreads_retries() -> None:
    rng = random.Random(2)
    delays = {RetryPolicy((300,)).next_delay(1, rng=rng) for _ in range(20)}
    assert len(delays) == 20


def test_schedule_spent_means_dead() -> None:
    policy = RetryPolicy((1, 2))
    assert policy.next_delay(2) is not None
    assert policy.next_delay(3) is None


def test_retry_after_pushes_later_never_earlier() -> None:
    policy = RetryPolicy((5,), jitter=0)
    assert policy.next_delay(1, retry_after=120) == 120
    assert policy.next_delay(1, retry_after=1) == 5
    assert policy.next_delay(1, retry_after=10**9) == 86_400  # capped at a day


def test_attempts_start_at_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        RetryPolicy().next_delay(0)
