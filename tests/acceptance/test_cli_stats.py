"""``voicecdr stats``, run as an operator runs it, on SQLite and PostgreSQL: the report in
each format, equal to the plain GROUP BY over the CDRs, ``--check`` catching drift, and
every bad option named."""

from __future__ import annotations

import csv
import io
import json
from contextlib import closing
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.acceptance.conftest import Cli
from tests.support.client import load_and_price
from tests.support.data import canonical, make_app
from voicecdr import analytics
from voicecdr.storage import AppStore, Database, ReportReader
from voicecdr.timefmt import zone

TZ = "Asia/Kolkata"  # +05:30: hours and days that do not start on a UTC hour
# Only calls to 91 have a rate: the call to 44 stays pending.
PLAN = "service,prefix,cycle,unit_price,basic_price\n*,91,6,0.012,0.001\n"
WINDOW = ("--from", "2026-12-01", "--to", "2026-12-03")


def _call(call_id: str, time: str, answer_after: int | None, **fields: Any) -> dict[str, Any]:
    """A call of app ``acme`` placed at ``time`` (Kolkata), answered ``answer_after``
    seconds later (None: not answered)."""
    record = canonical(
        call_id, appkey="acme", time=time, tz=TZ, connected=answer_after is not None, **fields
    )
    if answer_after is not None:
        answered = analytics.parse_time(time, zone(TZ), "time") + answer_after
        calendar = analytics.Calendar(zone(TZ))
        record["start_time"] = calendar.iso(answered)
        record["end_time"] = calendar.iso(answered + record["second"])
    return record


CALLS = [
    # answered after 5 s, talks 30 s: 5 cycles of 6 s at 0.012
    _call("c1", "2026-12-01 10:00:00", 5, second=30),
    # answered after 3 s, hung up at once: an answered call of 0 s, a short call, cost 0
    _call("c2", "2026-12-01 10:20:00", 3, second=0),
    # not answered: the basic price, 0.001
    _call("c3", "2026-12-01 11:00:00", None, service="verification"),
    # answered after 1 s, 4 s to a number no rate prices: pending, a short call
    _call("c4", "2026-12-02 09:00:00", 1, second=4, service="notification", country_code="44"),
    # before the window, for --compare previous
    _call("c5", "2026-11-30 23:59:59", None),
]


def _setup(cli: Cli) -> None:
    """The apps, calls and plans, stored and rated in this process: the commands that
    store them have tests of their own; these tests' subject is ``stats``."""
    records = list(CALLS)
    # Another app's call in the same window counts nowhere in acme's figures.
    records.append(canonical("x1", appkey="other", time="2026-12-01 12:00:00", tz=TZ))
    with closing(Database(cli.env["VOICECDR_DATABASE_URL"])) as db:
        for appkey, tz in (("acme", TZ), ("other", "UTC")):
            make_app(db, appkey, timezone=tz)
        load_and_price(db, records, {"acme": PLAN, "other": PLAN})


def _scan(database_url: str, params: dict[str, str]) -> Any:
    """What the plain GROUP BY over the CDRs reports, as the JSON the CLI prints."""
    db = Database(database_url)
    try:
        app = AppStore(db).get("acme")
        assert app is not None
        query = analytics.parse_query(params, zone(app.timezone))
        return json.loads(json.dumps(analytics.to_json(ReportReader(db).scan(app, query))))
    finally:
        db.close()


def test_the_report_in_each_format_is_the_plain_group_by(cli: Cli, database_url: str) -> None:
    _setup(cli)

    piped = cli("stats", "acme", *WINDOW, "--by", "day,country")
    assert piped.code == 0, piped.err
    report = piped.json()  # JSON when stdout is not a terminal
    assert report["from"] == "2026-12-01T00:00:00+05:30"
    assert report["to"] == "2026-12-03T00:00:00+05:30"
    assert report["group_by"] == ["day", "country_code"]
    assert [g["key"] for g in report["groups"]] == [
        {"day": "2026-12-01", "country_code": "91"},
        {"day": "2026-12-02", "country_code": "44"},
    ]
    assert report["total"] == {
        "attempts": 4,
        "answered": 3,
        "asr": 0.75,
        "acd": 11.33,  # (30 + 0 + 4) / 3: the 0-second answered call counts
        "avg_answer_seconds": 3.0,  # (5 + 3 + 1) / 3
        "billable_seconds": 34,
        "billed_seconds": 30,  # 5 cycles of 6 s; nothing for the pending call
        "cost": "0.061",  # 0.06 + 0 + 0.001; the pending call's cost is unknown
        "priced": 3,
        "pending": 1,
        "short_calls": 2,
    }
    params = {"from": "2026-12-01", "to": "2026-12-03", "group_by": "day,country"}
    assert report == _scan(database_url, params)

    # Other dimensions, filters and the previous period: still the plain GROUP BY.
    asked = [
        ({"group_by": "hour", "compare": "previous"}, ("--by", "hour", "--compare", "previous")),
        ({"group_by": "prefix,service"}, ("--by", "prefix,service")),
        ({"group_by": "hangup_cause", "connected": "true"}, ("--by", "cause", "--connected")),
        (
            {"voice_type": "1", "cost_status": "pending"},
            ("--voice-type", "1", "--cost-status", "pending"),
        ),
        ({"country_code": "91", "connected": "false"}, ("--country-code", "91", "--not-connected")),
    ]
    answers = []
    for extra, options in asked:
        result = cli("stats", "acme", *WINDOW, *options, "--format", "json")
        assert result.code == 0, result.err
        answers.append(result.json())
        assert answers[-1] == _scan(database_url, {**params, "group_by": "", **extra}), options
    previous = answers[0]["previous"]
    assert previous["from"] == "2026-11-29T00:00:00+05:30"  # two days before, as long
    assert previous["to"] == report["from"]
    assert [g["key"] for g in previous["groups"]] == [{"hour": "2026-11-30T23:00+05:30"}]

    as_csv = cli("stats", "acme", *WINDOW, "--by", "day", "--format", "csv")
    assert as_csv.code == 0, as_csv.err
    rows = list(csv.reader(io.StringIO(as_csv.out)))
    assert rows[0] == ["day", *analytics.METRICS]
    assert [r[:3] for r in rows[1:]] == [
        ["2026-12-01", "3", "2"],
        ["2026-12-02", "1", "1"],
        ["total", "4", "3"],
    ]
    assert rows[-1][analytics.METRICS.index("cost") + 1] == "0.061"


def test_a_table_on_a_terminal(sqlite_url: str, tmp_path: Path) -> None:
    cli = Cli(tmp_path, sqlite_url)
    _setup(cli)
    shown = cli.on_terminal("stats", "acme", *WINDOW, "--by", "day", "--compare", "previous")
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0] == (
        "acme (Asia/Kolkata): calls placed from 2026-12-01T00:00:00+05:30 to "
        "2026-12-03T00:00:00+05:30 (excluded), by day"
    )
    assert [" ".join(line.split()) for line in lines[1:5]] == [
        "DAY ATTEMPTS ANSWERED ASR ACD/S ANSWER/S BILLABLE/S BILLED/S COST PRICED PENDING SHORT",
        "2026-12-01 3 2 66.67% 15.00 4.00 30 30 0.061 3 0 1",
        "2026-12-02 1 1 100.00% 4.00 1.00 4 0 0 0 1 1",
        "total 4 3 75.00% 11.33 3.00 34 30 0.061 3 1 2",
    ]
    assert lines[4].index("75.00%") == lines[1].index("ASR")  # the columns line up
    # The previous period after the current one.
    assert lines[6].startswith("previous period: from 2026-11-29T00:00:00+05:30 to ")
    assert lines[8].split()[:2] == ["2026-11-30", "1"]
    assert lines[9].split()[:2] == ["total", "1"]

    as_json = cli.on_terminal("stats", "acme", *WINDOW, "--json")
    assert json.loads(as_json.out)["total"]["attempts"] == 4


def test_check_proves_the_rollups_and_names_what_drifted(cli: Cli, database_url: str) -> None:
    _setup(cli)
    checked = cli("stats", "acme", *WINDOW, "--by", "day,country", "--check")
    assert checked.code == 0, checked.err
    assert checked.err.strip() == "rollups match the CDRs"
    assert checked.json()["total"]["attempts"] == 4

    # A rollup row that no longer adds up (as if a write had skipped it).
    db = Database(database_url)
    try:
        app = AppStore(db).get("acme")
        assert app is not None
        app_id = app.id
        with db.writer.begin() as conn:
            changed = conn.execute(
                sa.text(
                    "UPDATE rollup_hours SET attempts = attempts + 2, billsec = billsec + 7 "
                    "WHERE app_id = :app AND bucket = (SELECT MIN(bucket) FROM rollup_hours "
                    "WHERE app_id = :app AND bucket >= :start)"
                ),
                {"app": app_id, "start": analytics.parse_time("2026-12-01", zone(TZ), "from")},
            )
            assert changed.rowcount == 1
    finally:
        db.close()
    drifted = cli("stats", "acme", *WINDOW, "--by", "day", "--check")
    assert drifted.code == 1
    assert drifted.json()["total"]["attempts"] == 6  # the report is still printed
    assert drifted.err.splitlines() == [
        "Error: rollups differ from the CDRs in 2 groups:",
        "day=2026-12-01: attempts 5 (rollups) vs 3 (CDRs), billsec 37 (rollups) vs 30 (CDRs)",
        "total: attempts 6 (rollups) vs 4 (CDRs), billsec 41 (rollups) vs 34 (CDRs)",
    ]


def test_bad_options_are_usage_errors_naming_the_option(sqlite_url: str, tmp_path: Path) -> None:
    cli = Cli(tmp_path, sqlite_url)
    made = cli("apps", "create", "--name", "Acme", "--appkey", "acme", "--timezone", TZ)
    assert made.code == 0, made.err
    cases: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
        (("--from", "yesterday", "--to", "2026-12-03"), ("--from 'yesterday' is not a time",)),
        (("--from", "2026-12-01", "--to", "2026-02-30"), ("--to '2026-02-30' is not a time",)),
        (("--from", "2026-12-03", "--to", "2026-12-01"), ("--to must be after from",)),
        (("--from", "2020-01-01", "--to", "2026-12-01"), ("--to: the window", "400 days")),
        (("--from", "", "--to", "2026-12-01"), ("--from is required",)),
        (
            ("--from", "0001-01-01T00:00:00+14:00", "--to", "2026-12-01"),
            ("--from '0001-01-01T00:00:00+14:00' is not between the years 1900 and 9000",),
        ),
        ((*WINDOW, "--by", "tenant"), ("--by 'tenant' is not a dimension", "hour, day")),
        ((*WINDOW, "--by", "day,hour"), ("--by takes at most one of hour, day",)),
        ((*WINDOW, "--by", "day,country,service"), ("--by takes at most 2",)),
        ((*WINDOW, "--by", "day,day"), ("--by names day twice",)),
        ((*WINDOW, "--service", "sms"), ("--service 'sms' is not one of group_call",)),
        ((*WINDOW, "--voice-type", "2"), ("--voice-type must be 0",)),
        ((*WINDOW, "--country-code", "+91"), ("--country-code must be 1 to 4 digits",)),
        ((*WINDOW, "--cost-status", "paid"), ("--cost-status must be pending or final",)),
        ((*WINDOW, "--compare", "last-year"), ("--compare takes one value: previous",)),
        ((*WINDOW, "--format", "xml"), ("'--format'", "'xml'")),
        ((*WINDOW, "--format", "csv", "--json"), ("--json and --format csv disagree",)),
        (("--to", "2026-12-03"), ("Missing option '--from'",)),
    ]
    for options, expected in cases:
        result = cli("stats", "acme", *options)
        assert result.code == 2, (options, result.err)
        assert result.out == ""
        error = result.err.strip()
        assert error.startswith("Error: "), error
        assert len(error.splitlines()) == 1, error
        for part in expected:
            assert part in error, (options, error)
        assert "(see `voicecdr stats --help`)" in error

    unknown = cli("stats", "nope", *WINDOW)
    assert (unknown.code, unknown.err.strip()) == (1, "Error: no app with appkey 'nope'")
