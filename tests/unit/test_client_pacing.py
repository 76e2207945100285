"""The client's pacing and retry policy, driven with plain numbers (no sleeping)."""

from __future__ import annotations

import httpx
import pytest

from voicecdr.client import (
    AuthFailed,
    InvalidParameter,
    Pacer,
    RateLimited,
    Retry,
    ServerError,
    TransportError,
)
from voicecdr.client._pacing import RetryState
from voicecdr.client._protocol import retry_after


def test_pacer_spaces_request_starts_by_the_interval_plus_margin() -> None:
    pacer = Pacer(rate=1.0, margin=0.05)
    assert pacer.wait(100.0) == 0.0
    pacer.started(100.0)
    assert pacer.wait(100.4) == pytest.approx(0.65)
    assert pacer.wait(101.05) == 0.0
    pacer.started(101.05)
    assert pacer.wait(101.06) == pytest.approx(1.04)


def test_pacer_counts_the_interval_from_the_answer_too() -> None:
    # Sent at 100.0, answered at 100.7 (slow server or network): the server may have
    # checked its limit as late as 100.7, so the next start waits until 101.75.
    pacer = Pacer(rate=1.0, margin=0.05)
    pacer.started(100.0)
    pacer.finished(100.7)
    assert pacer.wait(101.05) == pytest.approx(0.7)
    assert pacer.wait(101.75) == 0.0


def test_pacer_at_two_per_second_and_without_pacing() -> None:
    fast = Pacer(rate=2.0, margin=0.0)
    fast.started(10.0)
    assert fast.wait(10.0) == pytest.approx(0.5)
    unpaced = Pacer(rate=None)
    unpaced.started(10.0)
    assert unpaced.wait(10.0) == 0.0


def test_hold_off_only_ever_pushes_the_deadline_later() -> None:
    pacer = Pacer(rate=1.0, margin=0.0)
    pacer.started(0.0)
    pacer.hold_off(0.2, 3.0)  # Retry-After: 3 after a rate_limited answer
    assert pacer.wait(0.2) == pytest.approx(3.0)
    pacer.hold_off(0.3, 0.1)  # a shorter hold-off does not shorten the wait
    assert pacer.wait(0.3) == pytest.approx(2.9)


def test_pacer_refuses_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(rate=0)


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    retry = Retry(attempts=10, backoff=0.5, max_backoff=4.0)
    assert [retry.backoff_delay(n, 0.0) for n in range(1, 6)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert [retry.backoff_delay(n, 0.999999) for n in range(1, 6)] == pytest.approx(
        [0.5, 1.0, 2.0, 4.0, 4.0]
    )


def test_transient_failures_are_retried_a_bounded_number_of_times() -> None:
    state = RetryState(Retry(attempts=2, backoff=1.0, max_backoff=8.0), jitter=lambda: 0.5)
    assert state.delay_after(ServerError("boom")) == pytest.approx(0.75)
    assert state.delay_after(TransportError("reset")) == pytest.approx(1.5)
    with pytest.raises(ServerError):
        state.delay_after(ServerError("again"))


def test_rate_limited_waits_for_retry_after_and_has_its_own_bound() -> None:
    state = RetryState(Retry(attempts=0, rate_limited_attempts=2))
    assert state.delay_after(RateLimited("appkey access rate limit", retry_after=3)) == 3
    assert state.delay_after(RateLimited("appkey access rate limit")) == 1.0
    with pytest.raises(RateLimited):
        state.delay_after(RateLimited("appkey access rate limit", retry_after=1))


@pytest.mark.parametrize(
    "error", [AuthFailed("appkey or secretkey is incorrect"), InvalidParameter("page")]
)
def test_caller_errors_are_never_retried(error: Exception) -> None:
    state = RetryState(Retry(attempts=100))
    with pytest.raises(type(error)):
        state.delay_after(error)  # type: ignore[arg-type]


def test_retry_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="negative"):
        Retry(attempts=-1)
    with pytest.raises(ValueError, match="backoff"):
        Retry(backoff=5, max_backoff=1)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("inf", None),  # float() takes it: a wait for ever
        ("nan", None),
        ("1e999", None),
        ("\uff13", None),  # float() takes every script's digits
        ("-1", None),
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),
    ],
)
def test_retry_after_is_a_plain_number_of_seconds(header: str, seconds: float | None) -> None:
    # As bytes off the wire: httpx decodes a UTF-8 header value to text.
    answer = httpx.Response(429, headers=[(b"retry-after", header.encode())])
    assert retry_after(answer) == seconds
