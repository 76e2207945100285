"""``storage.listing``: an app's rows of any window in (time, id) order, read in keyset
pages, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.data import canonical, make_app
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.models import Service, VoiceGroup
from voicecdr.storage import ROW_FIELDS, AppStore, CdrWriter, Database, window_rows
from voicecdr.timefmt import parse_cli_time, zone

SERVICES = ("group_call", "verification", "notification")
ID, SERVICE, PLACED = (ROW_FIELDS.index(f) for f in ("id", "service", "placed_at"))


def _seconds(wall: str) -> int:
    return parse_cli_time(wall, zone("Asia/Shanghai"))


@pytest.fixture
def loaded(db: Database) -> int:
    app = make_app(db, "app1").app
    make_app(db, "other")
    records = []
    # Days apart (PostgreSQL: several partitions), many calls sharing one second (page
    # boundaries fall inside a run of equal times), all three services interleaved.
    for day in (8, 9, 12):
        for n in range(7):
            second = "00" if n < 5 else f"0{n}"
            records.append(
                canonical(
                    f"d{day}n{n}",
                    time=f"2019-09-{day:02} 09:00:{second}",
                    service=SERVICES[(n + day) % 3],
                )
            )
    records.append(canonical("x", appkey="other", time="2019-09-09 09:00:00"))
    records.reverse()  # ids no longer follow time
    summary = Ingestor(AppStore(db), CdrWriter(db)).ingest(
        Item(i, r) for i, r in enumerate(records)
    )
    assert summary.accepted == len(records)
    return app.id


@pytest.mark.parametrize("page_rows", [1, 2, 3, 1000])
def test_rows_come_in_time_and_id_order_across_pages_and_groups(
    db: Database, loaded: int, page_rows: int
) -> None:
    start, end = _seconds("2019-09-08 00:00:00"), _seconds("2019-09-12 23:59:59")
    rows = list(window_rows(db, loaded, start, end, page_rows=page_rows))
    keys = [(r[PLACED], r[ID]) for r in rows]
    assert len(keys) == 21 == len(set(keys))
    assert keys == sorted(keys)
    assert {r[SERVICE] for r in rows} == {0, 1, 2}


def test_filters_and_window_edges(db: Database, loaded: int) -> None:
    start, end = _seconds("2019-09-09 09:00:00"), _seconds("2019-09-09 09:00:05")
    every = list(window_rows(db, loaded, start, end, page_rows=2))
    assert len(every) == 6  # the sixth call at :05 is in (inclusive end), :06 is not
    groups = [list(window_rows(db, loaded, start, end, group=g, page_rows=2)) for g in VoiceGroup]
    assert sorted(map(tuple, every)) == sorted(map(tuple, groups[0] + groups[1]))
    assert {r[SERVICE] for r in groups[0]} == {0}
    notification = list(
        window_rows(db, loaded, start, end, service=Service.NOTIFICATION, page_rows=1)
    )
    assert notification
    assert {r[SERVICE] for r in notification} == {2}
    assert notification == [r for r in every if r[SERVICE] == 2]
    assert [r[PLACED] for r in window_rows(db, loaded, end + 1, end + 1)] == [end + 1]
    empty = _seconds("2019-09-10 00:00:00"), _seconds("2019-09-11 23:59:59")
    assert list(window_rows(db, loaded, *empty)) == []


def test_rows_are_read_a_page_at_a_time_as_they_are_taken(db: Database, loaded: int) -> None:
    # Streaming: taking the first row reads one page per voice group, not the window.
    statements: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("SELECT"):
            statements.append(statement)

    sa.event.listen(db.reader, "before_cursor_execute", note)
    start, end = _seconds("2019-09-08 00:00:00"), _seconds("2019-09-12 23:59:59")
    rows = window_rows(db, loaded, start, end, page_rows=2)
    next(rows)
    assert len(statements) == 2
    assert sum(1 for _ in rows) == 20
    assert len(statements) > 10
