"""How far from now a CDR's times may lie: the one rule every ingest path applies to
``time``, ``start_time`` and ``end_time`` (the canonical validator, its two fast paths,
and so FreeSWITCH's epochs too).

Pure: :meth:`TimeLimits.bounds` turns the operator's limits and an injected ``now`` into
the two epochs a record's times must lie between; nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings

# Ten years back: imports load historic backlogs (migrations from another switch or
# billing system, mod_json_cdr error logs kept for years), and telecom record retention
# runs to several years; beyond that a time is a corrupt clock, not a call.
DEFAULT_MAX_AGE_DAYS = 3660
# A quarter hour ahead: room for a switch whose clock drifts, while a time written with
# the wrong UTC offset (whole hours off) is refused instead of stored as a future call.
DEFAULT_MAX_FUTURE_MINUTES = 15
LATEST_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z: Python's datetime ends there


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """The operator's limits: ``max_age_days`` back (0: any time since 1970) and
    ``max_future_minutes`` ahead of now."""

    max_age_days: int = DEFAULT_MAX_AGE_DAYS
    max_future_minutes: int = DEFAULT_MAX_FUTURE_MINUTES

    @classmethod
    def of(cls, settings: Settings) -> TimeLimits:
        return cls(settings.ingest_max_age_days, settings.ingest_max_future_minutes)

    def bounds(self, now: float) -> TimeBounds:
        """The bounds for records checked at ``now`` (Unix seconds)."""
        today = int(now)
        earliest = max(0, today - self.max_age_days * 86_400) if self.max_age_days else 0
        latest = min(LATEST_EPOCH, today + self.max_future_minutes * 60)
        return TimeBounds(earliest, latest, self.max_age_days, self.max_future_minutes)


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """Unix seconds a CDR's times must lie between, both included (picklable: the
    JSONL import's worker processes get it as is)."""

    earliest: int
    latest: int
    max_age_days: int
    max_future_minutes: int

    def problem(self, epoch: int) -> str | None:
        """What is wrong with ``epoch`` (the message after ``field: <value>``), or None."""
        if epoch < self.earliest:
            if not self.max_age_days or self.earliest == 0:
                return "is before 1970"
            return (
                f"is more than {self.max_age_days} days ago; to import older calls, "
                "raise VOICECDR_INGEST_MAX_AGE_DAYS"
            )
        if epoch > self.latest:
            if self.latest == LATEST_EPOCH:
                return "is after the year 9999"
            return (
                f"is more than {self.max_future_minutes} minutes in the future; check the "
                "sender's clock and UTC offset (VOICECDR_INGEST_MAX_FUTURE_MINUTES)"
            )
        return None


# Any time datetime can hold after 1970: for tools that load data of no particular date.
ANY_TIME = TimeBounds(0, LATEST_EPOCH, 0, 0)
