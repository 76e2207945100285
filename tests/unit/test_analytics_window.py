"""A window's bounds stay inside the calendar: a time beyond it is refused naming the
parameter (not an OverflowError, which the endpoint would answer with a 500), and every
local unit around the bounds that are accepted is a date in any timezone."""

from __future__ import annotations

import pytest

from voicecdr.analytics import EARLIEST, LATEST, AnalyticsError, Calendar, Dimension, parse_query
from voicecdr.timefmt import zone


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01",
        "9999-12-31 23:59:59",
        "1899-12-31T23:59:59Z",
        "9000-01-02",
    ],
)
def test_a_time_beyond_the_calendar_is_refused_naming_it(text: str) -> None:
    with pytest.raises(AnalyticsError) as caught:
        parse_query({"from": text, "to": "2026-12-01"}, zone("Pacific/Kiritimati"))
    assert caught.value.parameter == "from"
    assert "is not between the years 1900 and 9000" in str(caught.value)


def test_a_previous_period_before_the_calendar_is_refused() -> None:
    params = {"from": "1900-01-02T00:00:00Z", "to": "1900-01-05T00:00:00Z", "compare": "previous"}
    with pytest.raises(AnalyticsError) as caught:
        parse_query(params, zone("UTC"))
    assert caught.value.parameter == "compare"
    del params["compare"]
    assert parse_query(params, zone("UTC")).start > EARLIEST


@pytest.mark.parametrize("name", ["Pacific/Kiritimati", "Etc/GMT+12", "Pacific/Pago_Pago", "UTC"])
def test_every_unit_around_the_bounds_is_a_date(name: str) -> None:
    calendar = Calendar(zone(name))
    for epoch in (EARLIEST, LATEST):
        calendar.iso(epoch)
        for unit in Dimension:
            if unit.is_time:
                calendar.label(unit, calendar.start(unit, epoch))
