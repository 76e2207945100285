"""docs/analytics.md defines what the code computes: each sum by the SQL of
``analytics.SUMMED``, each metric, dimension and limit by the code's own names and values."""

from __future__ import annotations

from pathlib import Path

from voicecdr.analytics import (
    MAX_GROUP_BY,
    MAX_GROUPS,
    MAX_WINDOW_DAYS,
    METRICS,
    SHORT_CALL_SECONDS,
    SUMMED,
    Dimension,
)

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "analytics.md").read_text()


def test_each_sum_is_shown_with_its_sql() -> None:
    for name, sql in SUMMED.items():
        assert f"| {name} | `{sql}` |" in PAGE, name


def test_each_metric_and_dimension_has_its_definition() -> None:
    for name in [*METRICS, *Dimension]:
        assert f"\n| `{name}` |" in PAGE, name


def test_the_limits_are_the_codes() -> None:
    assert f"`short_call_seconds` ({SHORT_CALL_SECONDS})" in PAGE
    assert f"| dimensions per report | {MAX_GROUP_BY}," in PAGE
    assert f"| window | {MAX_WINDOW_DAYS} days |" in PAGE
    assert f"| groups per report | {MAX_GROUPS:,} |" in PAGE
