from __future__ import annotations

import pytest

from voicecdr.workers.sender import SenderConfig, retry_after_seconds

NOW = 1_795_752_000.0  # Fri, 27 Nov 2026 04:00:00 GMT


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("Fri, 27 Nov 2026 04:02:00 GMT", 120.0),
        ("Fri, 27 Nov 2026 03:00:00 GMT", 0.0),  # in the past: now
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("\N{SUPERSCRIPT TWO}", None),  # isdigit() is true of it; float() refuses it
        ("\N{FULLWIDTH DIGIT FIVE}", None),  # delta-seconds are ASCII digits (RFC 9110)
    ],
)
def test_retry_after_forms(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, NOW) == seconds


def test_lease_outlasts_an_attempt() -> None:
    assert SenderConfig(timeout=10).lease == 30
    assert SenderConfig(timeout=1).lease > 2 * 1
