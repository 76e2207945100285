"""Totals and pages from bucket counts agree exactly with the rows, on both databases.

The reference is computed in Python from what was stored. Records arrive out of order, in
several batches, late into buckets already counted, repeated (duplicates and conflicts
must not count twice) and across bucket edges; windows and offsets are arbitrary.
"""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.data import cdr, make_app, read_cdrs
from voicecdr.models import Cdr, Service, VoiceGroup
from voicecdr.storage import CdrWriter, Database, Outcome, PageReader, counts, pages
from voicecdr.storage.pages import PageRequest, Placement

T0 = 1_795_700_100  # a bucket boundary (T0 % 300 == 0)
SPAN = 3 * 3600  # the stored calls' times: three hours, 36 buckets
SERVICES = list(Service)


def _call(call_id: str, placed: int, service: Service) -> Cdr:
    return cdr(call_id, connected=False)._replace(time=placed, service=service)


@pytest.fixture
def page_reader(db: Database) -> PageReader:
    """One reader for a whole test: what it learns of a window carries to the next read."""
    return PageReader(db)


@pytest.fixture
def stored(db: Database) -> tuple[Database, int, list[tuple[int, int, int]]]:
    """One app's 600 calls stored in shuffled batches (with repeats), plus another app's
    calls in the same buckets; yields (db, app_id, [(placed_at, service, id)])."""
    rng = random.Random(7)
    app_id = make_app(db, "big").app.id
    other = make_app(db, "other").app.id
    # Bunched times: many calls share a second, and the bucket edges are always hit.
    times = [T0 + rng.choice([0, 1, 299, 300, 301]) + 300 * rng.randrange(36) for _ in range(300)]
    times += [T0 + rng.randrange(SPAN) for _ in range(300)]
    calls = [_call(f"c{i}", t, rng.choice(SERVICES)) for i, t in enumerate(times)]
    order = list(range(len(calls)))
    rng.shuffle(order)  # out of order: late records land in buckets already counted
    for lo in range(0, len(order), 97):
        batch = [(app_id, calls[i]) for i in order[lo : lo + 97]]
        # Every batch repeats a few calls already stored (a retried delivery) and one
        # call with different content (a conflict): neither may be counted again.
        if lo:
            batch += [(app_id, calls[i]) for i in order[:3]]
            batch.append((app_id, calls[order[0]]._replace(second=99, content_hash="x")))
        CdrWriter(db).store(batch, now=1)
        CdrWriter(db).store([(other, _call(f"o{lo}", times[lo], Service.GROUP_CALL))], now=1)
    c = sa.table("cdrs", sa.column("placed_at"), sa.column("service"), sa.column("id"))
    with db.reader.connect() as conn:
        rows = conn.execute(
            sa.select(c.c.placed_at, c.c.service, c.c.id).where(sa.text(f"app_id = {app_id}"))
        ).all()
    assert len(rows) == 600
    return db, app_id, [(r[0], r[1], r[2]) for r in rows]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.integers(-400, SPAN + 400),
    length=st.integers(0, SPAN + 400),
    group=st.sampled_from(list(VoiceGroup)),
    limit=st.integers(1, 60),
    offset=st.integers(0, 700),
)
def test_total_and_page_match_the_rows(
    stored: tuple[Database, int, list[tuple[int, int, int]]],
    page_reader: PageReader,
    start: int,
    length: int,
    group: VoiceGroup,
    limit: int,
    offset: int,
) -> None:
    db, app_id, rows = stored
    lo, hi = T0 + start, T0 + start + length
    expected = sorted(
        (placed, id_)
        for placed, service, id_ in rows
        if lo <= placed <= hi and Service(service).voice_group is group
    )
    page = read_cdrs(db, app_id, group, lo, hi, offset=offset, limit=limit, reader=page_reader)
    assert page.total == len(expected)
    assert [(r.time, r.id) for r in page.rows] == expected[offset : offset + limit]

    # The stamped read of the same page: the same rows, and the whole rows of exactly
    # the stamps the caller did not know (here every other one).
    def odd(stamps: list[tuple[int, ...]]) -> list[int | None]:
        return [s[0] % 2 or None for s in stamps]

    reader = page_reader
    stamped = reader.read(PageRequest(app_id, group, lo, hi, offset, limit), odd)
    assert stamped.total == len(expected)
    assert [(s[1], s[0]) for s in stamped.stamps] == expected[offset : offset + limit]
    assert stamped.known == [s[0] % 2 or None for s in stamped.stamps]
    unknown = [s[0] for s in stamped.stamps if not s[0] % 2]
    assert sorted(stamped.rows) == sorted(unknown)
    assert all(stamped.rows[id_][0] == id_ for id_ in unknown)
    # Read whole at once instead: the same stamps, and the same rows.
    wholly = reader.read(PageRequest(app_id, group, lo, hi, offset, limit, whole=True), odd)
    assert (wholly.total, wholly.stamps, wholly.known) == (
        stamped.total,
        stamped.stamps,
        stamped.known,
    )
    assert {k: tuple(v) for k, v in wholly.rows.items()} == {
        k: tuple(v) for k, v in stamped.rows.items()
    }
    # And with every stamp known: nothing read whole.
    everything = reader.read(
        PageRequest(app_id, group, lo, hi, offset, limit), lambda s: [True] * len(s)
    )
    assert (everything.total, everything.stamps, everything.rows) == (
        stamped.total,
        stamped.stamps,
        {},
    )


def test_counts_equal_a_recount(stored: tuple[Database, int, list[tuple[int, int, int]]]) -> None:
    db = stored[0]
    recount = (
        f"SELECT app_id, voice_group, placed_at - placed_at % {counts.BUCKET_SECONDS}, count(*)"
        " FROM cdrs GROUP BY 1, 2, 3"
    )
    with db.reader.connect() as conn:
        kept = set(conn.exec_driver_sql("SELECT app_id, voice_group, bucket, n FROM cdr_counts"))
        assert kept == set(conn.execute(sa.text(recount)))


def test_concurrent_writers_of_the_same_buckets_count_each_row_once(
    db: Database, page_reader: PageReader
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    app_id = make_app(db).app.id
    # Four writers store overlapping sets of calls in the same buckets at once: every
    # call is offered by two of them, and exactly one of the two may count it.
    calls = [_call(f"c{i}", T0 + i % 600, Service.GROUP_CALL) for i in range(400)]

    def write(k: int) -> list[Outcome]:
        mine = [c for i, c in enumerate(calls) if i % 4 in (k, (k + 1) % 4)]
        return CdrWriter(db).store([(app_id, c) for c in mine], now=1)

    with ThreadPoolExecutor(4) as pool:
        outcomes = [o for batch in pool.map(write, range(4)) for o in batch]
    assert outcomes.count(Outcome.ACCEPTED) == 400
    page = read_cdrs(db, app_id, VoiceGroup.GROUP_CALL, T0, T0 + 600, limit=1, reader=page_reader)
    assert page.total == 400
    with db.reader.connect() as conn:
        assert conn.exec_driver_sql("SELECT sum(n) FROM cdr_counts").scalar_one() == 400


@pytest.mark.parametrize(
    ("start", "end", "lo", "hi"),
    [
        (0, 299, 0, 300),  # exactly one whole bucket
        (0, 298, 299, 299),  # one second short: counted row by row
        (1, 600, 300, 600),  # head [1, 300), body [300, 600), tail [600, 600]
        (301, 598, 599, 599),  # inside one bucket
        (300, 300, 301, 301),
    ],
)
def test_split(start: int, end: int, lo: int, hi: int) -> None:
    window = counts.split(start, end)
    assert (window.lo, window.hi) == (lo, hi)


def test_a_row_rerated_while_its_page_is_read_is_read_as_stamped(
    db: Database, page_reader: PageReader
) -> None:
    """The caller's lookup runs between reading the stamps and reading the unknown rows;
    here it re-rates a row meanwhile (another connection, committed). The rows handed back
    must still be those the stamps describe: from the same snapshot, or read again."""
    app_id = make_app(db).app.id
    calls = [_call(f"c{i}", T0 + i, Service.GROUP_CALL) for i in range(5)]
    CdrWriter(db).store([(app_id, c) for c in calls], now=1)
    rerated = []

    def lookup(stamps: list[tuple[int, ...]]) -> list[None]:
        if not rerated:
            rerated.append(stamps[2][0])
            with db.writer.begin() as conn:
                conn.execute(
                    # As every write of a charge does (storage/rating.py).
                    sa.text(
                        "UPDATE cdrs SET cost_nanos = 7, cost_status = 1, "
                        "revision = revision + 1 WHERE id = :id"
                    ),
                    {"id": stamps[2][0]},
                )
        return [None] * len(stamps)

    page = page_reader.read(PageRequest(app_id, VoiceGroup.GROUP_CALL, T0, T0 + 10, 0, 10), lookup)
    assert page.total == 5
    assert rerated
    cost, revision = pages.ROW_FIELDS.index("cost_nanos"), pages.STAMP_FIELDS.index("revision")
    for stamp in page.stamps:
        # The re-rated row, as re-rated (its stamp read again) or as before (never mixed).
        assert page.rows[stamp[0]][cost] == (7 if stamp[revision] == 1 else 0)
    assert [s[revision] for s in page.stamps] == [0, 0, 1, 0, 0]


def test_seeks_guess_from_what_a_full_seek_learned() -> None:
    seeks = pages.Seeks(windows=2)
    # Shallow pages are read from the window's start whatever is known.
    assert seeks.guess("w", 5, 0) == Placement(5, 0)
    assert seeks.guess("w", 5, pages.AT_ONCE_ROWS - 1) == Placement(5, 0)
    assert seeks.guess("w", 5, pages.AT_ONCE_ROWS) is None  # nothing learned yet
    # Head 350 rows; buckets at 600 (200 rows), 900 (none kept: 0), 1200 (100); tail from 1500.
    seeks.learn("w", pages.Learned.of(350, [(600, 200), (900, 0), (1200, 100)], 1500))
    assert seeks.guess("w", 5, 340) == Placement(5, 0)  # in the head
    assert seeks.guess("w", 5, 350) == Placement(600, 350)
    assert seeks.guess("w", 5, 549) == Placement(600, 350)
    assert seeks.guess("w", 5, 550) == Placement(1200, 550)  # past the empty bucket
    assert seeks.guess("w", 5, 649) == Placement(1200, 550)
    assert seeks.guess("w", 5, 650) == Placement(1500, 650)  # in the tail
    assert seeks.guess("w", 5, 10**6) == Placement(1500, 650)
    seeks.learn("x", pages.Learned.of(0, [], 300))
    seeks.learn("y", pages.Learned.of(0, [], 300))  # a third window: the two known are forgotten
    assert seeks.guess("w", 5, 400) is None
    assert seeks.guess("y", 5, 400) == Placement(300, 0)
    seeks.forget("y")
    assert seeks.guess("y", 5, 400) is None


def test_a_guessed_deep_page_is_exact_after_rows_arrive_before_and_after_it(
    db: Database, page_reader: PageReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deep page's start is guessed from the last full seek of its window; rows that
    arrive earlier in the window make that guess wrong, and the read must notice (its
    counts disagree) rather than answer from the old start. Rows that arrive later leave
    the guess right, and it is used."""
    app_id = make_app(db).app.id
    rng = random.Random(11)
    placed = [T0 + rng.randrange(2 * 3600) for _ in range(900)]
    calls = [_call(f"c{i}", t, Service.GROUP_CALL) for i, t in enumerate(placed)]
    CdrWriter(db).store([(app_id, c) for c in calls], now=1)
    start, end = T0 + 17, T0 + 2 * 3600 + 100  # a head, 23 whole buckets and a tail
    guessed: list[bool] = []
    real = pages._read_guessed

    def spy(*args: object, **kwargs: object) -> object:
        found = real(*args, **kwargs)  # type: ignore[arg-type]
        guessed.append(found is not None)
        return found

    monkeypatch.setattr(pages, "_read_guessed", spy)
    reader = page_reader

    def expected() -> list[int]:
        with db.reader.connect() as conn:
            return [
                r[0]
                for r in conn.exec_driver_sql(
                    f"SELECT id FROM cdrs WHERE app_id = {app_id} AND placed_at >= {start} "
                    f"AND placed_at <= {end} ORDER BY placed_at, id"
                )
            ]

    def check(offset: int, *, whole: bool = False) -> None:
        ids = expected()
        request = PageRequest(app_id, VoiceGroup.GROUP_CALL, start, end, offset, 20, whole=whole)
        page = reader.read(request, lambda stamps: [None] * len(stamps))
        assert page.total == len(ids)
        assert [s[0] for s in page.stamps] == ids[offset : offset + 20]
        assert sorted(page.rows) == sorted(ids[offset : offset + 20])

    check(500)  # nothing known: a full seek, which learns the window
    assert guessed == []
    check(500)
    check(610, whole=True)
    assert guessed == [True, True]
    # Rows early in the window: the guessed start is now 3 rows too late.
    late = [_call(f"early{i}", start + i, Service.GROUP_CALL) for i in range(3)]
    CdrWriter(db).store([(app_id, c) for c in late], now=1)
    # The guess is now 3 rows too late: the read notices (its counts disagree) and reads
    # the page in one snapshot instead, which learns the window again.
    check(500)
    assert guessed[-1] is False
    check(500)
    check(610, whole=True)  # learned again by the snapshot read just before
    assert guessed == [True, True, False, True, True]
    # Rows after the page leave its guessed start right.
    after = [_call(f"after{i}", end - i, Service.GROUP_CALL) for i in range(4)]
    CdrWriter(db).store([(app_id, c) for c in after], now=1)
    check(500)
    assert guessed[-1] is True
