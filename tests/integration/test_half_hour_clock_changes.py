"""Hours across a 30-minute clock change (Lord Howe Island: +11:00 in summer, +10:30 in
winter) are one partition of time, so the rollups and the plain GROUP BY agree on them.

Before the fix, the half hour repeated when the clocks went back was given an hour that
began inside the hour before it; the rollups then filed its calls under the earlier hour
and the GROUP BY under a later one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tests.support.data import cdr, make_app
from voicecdr.analytics import AnalyticsQuery, Calendar, Dimension, to_json
from voicecdr.storage import CdrWriter, Database, ReportReader
from voicecdr.storage.rollups import Buckets

LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
# 2026-04-05 02:00 +11:00 becomes 01:30 +10:30 (at 15:00 UTC); 2026-10-04 02:00 +10:30
# becomes 02:30 +11:00 (at 15:30 UTC).
BACK = int(datetime(2026, 4, 4, 15, 0, tzinfo=UTC).timestamp())
FORWARD = int(datetime(2026, 10, 3, 15, 30, tzinfo=UTC).timestamp())


def test_an_hour_starts_within_itself_and_the_rollups_agree() -> None:
    calendar, buckets = Calendar(LORD_HOWE), Buckets(LORD_HOWE)
    for change in (BACK, FORWARD):
        starts = []
        for epoch in range(change - 3 * 3600, change + 3 * 3600, 60):
            start = calendar.start(Dimension.HOUR, epoch)
            assert start <= epoch
            assert calendar.start(Dimension.HOUR, start) == start, epoch
            assert buckets(epoch)[0] == start, epoch
            starts.append(start)
        assert starts == sorted(starts)
    # The repeated half hour is an hour of its own, from the change.
    assert calendar.start(Dimension.HOUR, BACK + 600) == BACK
    assert calendar.label(Dimension.HOUR, BACK) == "2026-04-05T01:30+10:30"
    assert calendar.start(Dimension.HOUR, BACK - 600) == BACK - 3600


def test_report_equals_the_group_by_across_the_changes(db: Database) -> None:
    app = make_app(db, "howe", timezone="Australia/Lord_Howe").app
    times = [c + d for c in (BACK, FORWARD) for d in range(-5400, 5400, 450)]
    CdrWriter(db).store(
        [(app.id, cdr(f"c{i}")._replace(time=t)) for i, t in enumerate(times)], now=1
    )
    reader = ReportReader(db)
    for change in (BACK, FORWARD):
        for lo, hi in ((change - 7200, change + 7200), (change - 1000, change + 1000)):
            query = AnalyticsQuery(lo, hi, (Dimension.HOUR,))
            report = to_json(reader.report(app, query))
            assert report == to_json(reader.scan(app, query))
            assert report["total"]["attempts"] == sum(lo <= t < hi for t in times)
