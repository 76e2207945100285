from __future__ import annotations

import pytest

from voicecdr.ratelimit import Decision, Quota


def test_quota_interval_and_tolerance() -> None:
    assert Quota(1).interval == 1.0
    assert Quota(4).interval == 0.25
    assert Quota(1).tolerance == 0
    assert Quota(2, burst=3).tolerance == 1.0


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_quota_refuses_nonsense(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        Quota(rate, burst)


@pytest.mark.parametrize(("wait", "header"), [(0.01, "1"), (0.99, "1"), (1.0, "1"), (1.2, "2")])
def test_retry_after_is_whole_seconds_at_least_one(wait: float, header: str) -> None:
    assert Decision(False, wait).retry_after_header == header


@pytest.mark.parametrize(
    ("rate", "burst"), [(1, 1), (0.2, 1), (5, 5), (2.5, 3), (1_000_000, 1_000_000)]
)
def test_an_apps_quota_allows_one_seconds_worth_at_once(rate: float, burst: int) -> None:
    quota = Quota.per_second(rate)
    assert (quota.rate, quota.burst) == (rate, burst)
