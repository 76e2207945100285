"""The client SDK against the real query API (ASGI app, SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from tests.support.client import (
    SHANGHAI,
    Hooked,
    count_by_group,
    load,
    price_everything,
    recent_records,
    window,
)
from tests.support.data import canonical, make_app
from voicecdr.api import QUERY_PATH, create_app
from voicecdr.client import (
    AsyncClient,
    AuthFailed,
    Client,
    GroupCallRecord,
    InvalidParameter,
    OutOfWindow,
    RangeTooLarge,
    Retry,
    TransportError,
    VoiceRecord,
    VoiceType,
)
from voicecdr.client._export import ExportError, ExportJob, export, file_sha256, sidecar
from voicecdr.client._timeutil import format_api_time
from voicecdr.config import Settings
from voicecdr.rating import parse_plan_csv
from voicecdr.storage import Database, RatingStore
from voicecdr.workers.rater import Rater

BASE = "http://testserver"
RECORDS = 300


@pytest.fixture
def records(db: Database) -> list[dict[str, object]]:
    make_app(db, "app1", secretkey="secret1")
    data = recent_records("app1", RECORDS)
    load(db, data)
    return data


@pytest.fixture
def asgi(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db)) as test_client:
        yield test_client


def client_for(
    asgi: TestClient, transport: httpx.BaseTransport | None = None, **options: object
) -> Client:
    options.setdefault("rate", None)  # the app allows 10,000/s; pacing is tested elsewhere
    # The TestClient's transport runs requests through the ASGI app in-process.
    return Client(
        "app1",
        "secret1",
        base_url=BASE,
        transport=transport or asgi._transport,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("voice_type", [VoiceType.GROUP_CALL, VoiceType.VERIFICATION_NOTIFICATION])
def test_every_record_of_a_three_day_window_comes_once_in_order(
    asgi: TestClient, records: list[dict[str, object]], voice_type: VoiceType
) -> None:
    start, end = window()
    with client_for(asgi, page_size=25) as client:
        assert len(client.split(start, end)) == 4  # three days and two minutes
        got = list(client.iter_records(voice_type, start, end))
    assert len(got) == count_by_group(records)[voice_type]
    assert len({r.id for r in got}) == len(got)
    assert [(r.time, r.id) for r in got] == sorted((r.time, r.id) for r in got)
    kind = GroupCallRecord if voice_type is VoiceType.GROUP_CALL else VoiceRecord
    assert all(isinstance(r, kind) for r in got)
    assert all(r.time.tzinfo == SHANGHAI for r in got)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_async_client_yields_the_same_records(
    settings: Settings, db: Database, records: list[dict[str, object]]
) -> None:
    start, end = window()
    transport = httpx.ASGITransport(app=create_app(settings, db))
    async with AsyncClient(
        "app1", "secret1", base_url=BASE, transport=transport, rate=None, page_size=40
    ) as client:
        got = [r async for r in client.iter_records(0, start, end, extended=True)]
        page = await client.query(1, start, start + timedelta(hours=24), page_size=1)
    assert len(got) == count_by_group(records)[0]
    assert len({r.id for r in got}) == len(got)
    assert all(r.cost_status == "pending" and r.cost == 0 for r in got)
    assert page.page_size == 1
    assert page.total >= len(page.records)


def test_records_arriving_during_the_export_are_each_yielded_once(
    asgi: TestClient, db: Database, records: list[dict[str, object]]
) -> None:
    start, end = window()
    first_span_start = start
    early = (first_span_start + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    late = (end - timedelta(minutes=1, seconds=30)).strftime("%Y-%m-%d %H:%M:%S")
    added: list[dict[str, object]] = []

    def arrive(n: int) -> None:
        # After the first page of the first span: records land in the part already read
        # (shifting every later page) and in a span not read yet.
        if n in (2, 3):
            batch = [
                canonical(f"late-{n}-{i}", appkey="app1", time=early if i < 4 else late)
                for i in range(5)
            ]
            load(db, batch)
            added.extend(batch)

    hooked = Hooked(asgi._transport, arrive)
    with client_for(asgi, hooked, page_size=10) as client:
        got = list(client.iter_records(VoiceType.GROUP_CALL, start, end))
    assert len(added) == 10
    assert len({r.id for r in got}) == len(got)
    assert len(got) == count_by_group(records)[0] + len(added)
    assert {r.messageid for r in got} >= {"m-1"}


def test_caller_errors_map_to_exceptions_and_are_not_retried(
    asgi: TestClient, records: list[dict[str, object]]
) -> None:
    start, _ = window(days=1)
    end = start + timedelta(hours=23)
    hooked = Hooked(asgi._transport)
    bad = Client("app1", "wrong", base_url=BASE, transport=hooked, rate=None)
    with pytest.raises(AuthFailed, match="incorrect"):
        bad.query(0, start, end)
    assert hooked.requests == 1
    with client_for(asgi) as client:
        with pytest.raises(InvalidParameter, match="page_size"):
            client.query(0, start, end, page_size=5000)
        with pytest.raises(RangeTooLarge, match="24 hours"):
            client.query(0, start, start + timedelta(hours=25))
        with pytest.raises(OutOfWindow, match="7 days"):
            client.query(0, start - timedelta(days=8), start - timedelta(days=7, hours=12))


def test_a_rate_limited_client_backs_off_and_still_gets_everything(
    settings: Settings, db: Database
) -> None:
    # A real GCRA limit at 4/s (4 at once) and a client that does not pace itself, with
    # more pages than that: the server answers rate_limited with Retry-After and the
    # client waits that long, then carries on.
    make_app(db, "slow", secretkey="secret1", rate_limit=4)
    load(db, recent_records("slow", 40, days=0.5))
    start, end = window(days=0.5)
    with TestClient(create_app(settings, db)) as asgi:
        hooked = Hooked(asgi._transport)
        with Client(
            "slow", "secret1", base_url=BASE, transport=hooked, rate=None, page_size=4
        ) as client:
            got = list(client.iter_records(1, start, end)) + list(
                client.iter_records(0, start, end)
            )
    assert len(got) == 40
    assert "rate_limited" in hooked.slugs


def stored_cost(database_url: str, voice_group: int) -> Decimal:
    """The server's own total of the costs it stored, read straight from the database."""
    url = database_url.replace("postgresql://", "postgresql+psycopg://")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        nanos = conn.execute(
            sa.text("SELECT SUM(cost_nanos) FROM cdrs WHERE voice_group = :g"), {"g": voice_group}
        ).scalar_one()
    engine.dispose()
    return Decimal(int(nanos)).scaleb(-9)


def stored_prices(database_url: str, voice_group: int) -> set[Decimal]:
    """The distinct unit prices stored for the voice group's CDRs."""
    url = database_url.replace("postgresql://", "postgresql+psycopg://")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        nanos = conn.execute(
            sa.text("SELECT DISTINCT unit_price_nanos FROM cdrs WHERE voice_group = :g"),
            {"g": voice_group},
        ).scalars()
        found = {Decimal(int(n)).scaleb(-9).normalize() for n in nanos}
    engine.dispose()
    return found


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_writes_every_record_with_an_exact_manifest(
    asgi: TestClient,
    db: Database,
    database_url: str,
    records: list[dict[str, object]],
    tmp_path: Path,
    fmt: str,
) -> None:
    price_everything(db, "app1")  # the real rater, with the demo's rate plan
    start, end = window()
    job = ExportJob(BASE, "app1", 0, start, end, "Asia/Shanghai", fmt)
    output = tmp_path / f"calls.{fmt}"
    with client_for(asgi, page_size=50) as client:
        manifest = export(client, job, output)
    assert manifest.rows == count_by_group(records)[0]
    assert Decimal(manifest.cost_sum) == stored_cost(database_url, 0)
    assert Decimal(manifest.cost_sum) > 0
    assert manifest.sha256 == file_sha256(output)
    assert json.loads(sidecar(output, "manifest").read_text()) == manifest.to_dict()
    assert not sidecar(output, "checkpoint").exists()
    # The unit prices the rater stored for these calls (the demo plan has four for group
    # calls; the data changes with the clock, so not every one need occur).
    prices = {str(p) for p in stored_prices(database_url, 0)}
    assert prices <= {"0.05", "0.012", "0.02", "0.009"}
    lines = output.read_text(encoding="utf-8").splitlines()
    if fmt == "csv":
        with output.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        assert lines[0].split(",") == list(VoiceType.GROUP_CALL.fields)
        assert len(rows) == manifest.rows
        assert {r["customer_price"] for r in rows} == prices
    else:
        rows = [json.loads(line, parse_float=Decimal) for line in lines]
        assert len(rows) == manifest.rows
        assert list(rows[0]) == list(VoiceType.GROUP_CALL.fields)  # not the extended fields
        assert {r["customer_price"] for r in rows} == {Decimal(p) for p in prices}
        assert len({r["id"] for r in rows}) == len(rows)
    # Without `cost` (NXCloud's rows) the rule size x customer_price / basic_price gives
    # the same sum for these calls.
    with client_for(asgi) as client:
        derived = sum(
            (r.size * r.customer_price if r.connected else r.basic_price)  # type: ignore[attr-defined]
            for r in client.iter_records(0, start, end)
        )
    assert derived == Decimal(manifest.cost_sum)


def test_an_interrupted_export_resumes_where_it_stopped(
    asgi: TestClient, records: list[dict[str, object]], tmp_path: Path
) -> None:
    start, end = window()
    job = ExportJob(BASE, "app1", 1, start, end, "Asia/Shanghai", "jsonl")
    complete = tmp_path / "complete.jsonl"
    watched = Hooked(asgi._transport)
    with client_for(asgi, watched, page_size=20) as client:
        reference = export(client, job, complete)
    # Cut mid-way through a span after the first: at its second page. (Where the spans'
    # rows fall depends on the time of day the records were made for.)
    first_span = watched.forms[0]["start_time"]
    at = next(
        n
        for n, form in enumerate(watched.forms, 1)
        if form["start_time"] != first_span and form["page"] == "2"
    )

    def cut(n: int) -> None:
        if n == at:
            raise httpx.ConnectError("connection reset")

    output = tmp_path / "calls.jsonl"
    hooked = Hooked(asgi._transport, cut)
    with (
        client_for(asgi, hooked, page_size=20, retry=Retry(attempts=0)) as client,
        pytest.raises(TransportError, match="reset"),
    ):
        export(client, job, output)
    checkpoint = json.loads(sidecar(output, "checkpoint").read_text())
    assert checkpoint["done_through"] is not None
    assert 0 < checkpoint["rows"] < reference.rows
    assert not sidecar(output, "manifest").exists()

    with client_for(asgi, page_size=20) as client:
        resumed = export(client, job, output)
    assert output.read_bytes() == complete.read_bytes()
    assert (resumed.rows, resumed.cost_sum, resumed.sha256) == (
        reference.rows,
        reference.cost_sum,
        reference.sha256,
    )


def test_export_will_not_clobber_a_file_or_mix_two_jobs(
    asgi: TestClient, records: list[dict[str, object]], tmp_path: Path
) -> None:
    start, end = window(days=1)
    output = tmp_path / "calls.csv"
    output.write_text("precious\n")
    job = ExportJob(BASE, "app1", 0, start, end, "Asia/Shanghai")
    with client_for(asgi) as client:
        with pytest.raises(ExportError, match="exists"):
            export(client, job, output)
        assert output.read_text() == "precious\n"
        sidecar(output, "checkpoint").write_text(
            json.dumps({"version": 1, "job": {"appkey": "other"}, "bytes": 0})
        )
        with pytest.raises(ExportError, match="different export"):
            export(client, job, output)
        manifest = export(client, job, output, overwrite=True)
    assert manifest.rows == len(output.read_text().splitlines()) - 1


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_large_and_tiny_amounts_keep_every_digit_from_the_database_to_the_export(
    asgi: TestClient, db: Database, tmp_path: Path, fmt: str
) -> None:
    """86025 one-second cycles at 104620.74978204 cost 8999999999.999991 (16 significant
    digits: a float keeps 15); a basic price of 10^-9 is 1E-9 to a Decimal's str()."""
    app = make_app(db, "app1", secretkey="secret1").app
    plan = "service,prefix,cycle,unit_price,basic_price\n"
    plan += "group_call,,1,104620.74978204,0.000000001\n"
    RatingStore(db).import_plan(app.id, parse_plan_csv(plan), source="p.csv", now=1)
    _, end = window()
    start = end - timedelta(hours=24)  # the longest window; the long call ended before now
    placed = (start + timedelta(seconds=30)).strftime("%Y-%m-%d %H:%M:%S")
    missed = (end - timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M:%S")
    load(
        db,
        [
            canonical("long", time=placed, second=86_025),
            canonical("missed", time=missed, connected=False),
        ],
    )
    assert Rater(db).drain() == (2, 0)

    form = {
        "appkey": "app1",
        "secretkey": "secret1",
        "voiceType": "0",
        "start_time": format_api_time(start),
        "end_time": format_api_time(end),
        "page": "1",
        "page_size": "10",
        "extended": "1",
    }
    body = asgi.post(QUERY_PATH, data=form).content
    assert b'"customer_price":104620.74978204,' in body
    assert b'"cost":8999999999.999991,' in body
    assert b'"basic_price":0.000000001,' in body
    assert b'"cost":0.000000001,' in body

    with client_for(asgi) as client:
        long, short = client.iter_records(0, start, end, extended=True)
    assert (long.cost, long.customer_price) == (
        Decimal("8999999999.999991"),
        Decimal("104620.74978204"),
    )
    assert short.cost == Decimal("0.000000001")

    job = ExportJob(BASE, "app1", 0, start, end, "Asia/Shanghai", fmt, extended=True)
    output = tmp_path / f"calls.{fmt}"
    with client_for(asgi) as client:
        manifest = export(client, job, output)
    assert manifest.cost_sum == "8999999999.999991001"
    text = output.read_text(encoding="utf-8")
    assert "8999999999.999991" in text
    assert "0.000000001" in text
    assert "e-" not in text.lower()
    tiny = ExportJob(BASE, "app1", 0, end - timedelta(hours=1), end, "Asia/Shanghai", fmt)
    with client_for(asgi) as client:
        assert export(client, tiny, tmp_path / f"tiny.{fmt}").cost_sum == "0.000000001"
