"""`voicecdr db prune`: retention from the operator's command line, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.acceptance.conftest import Cli
from tests.support.data import canonical


@pytest.fixture
def database_url(any_database_url: str) -> str:
    """SQLite, PostgreSQL and Citus (the reported failure was partitions on Citus)."""
    return any_database_url


PLAN = "service,prefix,cycle,unit_price,basic_price\ngroup_call,,20,0.05,0.005\n"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ninety", "is not a duration"),
        ("90", "is not a duration"),
        ("-5d", "is not a duration"),
        ("5y", "is not a duration"),
        ("\N{SUPERSCRIPT TWO}d", "is not a duration"),
        ("\N{FULLWIDTH DIGIT NINE}d", "is not a duration"),
        ("0d", "must be more than zero"),
    ],
)
def test_bad_durations_are_usage_errors(fresh_cli: Cli, value: str, message: str) -> None:
    """Refused before any database is opened (the one named does not exist)."""
    result = fresh_cli("db", "prune", "--older-than", value)
    assert result.code == 2
    assert "--older-than" in result.err
    assert message in result.err
    assert "Traceback" not in result.err


def test_db_upgrade_makes_the_coming_days_partitions(cli: Cli) -> None:
    cli.env["VOICECDR_PARTITIONS_AHEAD_DAYS"] = "2"
    result = cli("db", "upgrade")
    assert result.code == 0, result.err
    made = result.json()["partitions_created"]
    if cli.env["VOICECDR_DATABASE_URL"].startswith("postgresql"):
        today = datetime.now(UTC).date()
        assert made == [f"cdrs_p{today + timedelta(days=i):%Y%m%d}" for i in range(3)]
    else:
        assert made == []
    assert cli("db", "upgrade").json()["partitions_created"] == []


def test_older_than_is_required(fresh_cli: Cli) -> None:
    result = fresh_cli("db", "prune")
    assert result.code == 2
    assert "--older-than" in result.err


def test_prune_removes_old_cdrs_and_warns_about_undelivered_receipts(
    cli: Cli, tmp_path: Path
) -> None:
    cli.env["VOICECDR_ALLOW_PRIVATE_CALLBACKS"] = "true"
    created = cli("apps", "create", "--name", "A", "--appkey", "app1", "--timezone", "UTC")
    assert created.code == 0, created.err
    assert cli("apps", "update", "app1", "--callback-url", "http://127.0.0.1:9/dr").code == 0
    (tmp_path / "plan.csv").write_text(PLAN)
    assert cli("rates", "import", "app1", str(tmp_path / "plan.csv")).code == 0
    now = datetime.now(UTC)
    ages = [200, 120, 100, 3, 1]  # days
    records = [
        canonical(
            f"c{age}", time=(now - timedelta(days=age)).strftime("%Y-%m-%d %H:%M:%S"), tz="UTC"
        )
        for age in ages
    ]
    (tmp_path / "cdrs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert cli("cdrs", "import", str(tmp_path / "cdrs.jsonl")).json()["accepted"] == 5
    assert cli("rate").json() == {"priced": 5, "unpriced": 0}  # one pending receipt each

    dry = cli("db", "prune", "--older-than", "90d", "--dry-run")
    ran = datetime.now(UTC)  # the command's own "now" lies between `now` and this
    assert dry.code == 0, dry.err
    report = dry.json()
    assert (report["dry_run"], report["cdrs"], report["receipts"]) == (True, 3, 3)
    assert report["pending_receipts"] == 3
    assert "would be removed before delivery" in dry.err
    cutoff = datetime.fromisoformat(report["cutoff"])
    # Rounded down to its 5-minute bucket (SQLite) or UTC midnight (PostgreSQL), from a
    # "now" taken while the command ran.
    assert now - timedelta(days=91) < cutoff <= ran - timedelta(days=90)

    done = cli("db", "prune", "--older-than", "90d")
    assert done.code == 0, done.err
    removed = done.json()
    assert {k: removed[k] for k in ("dry_run", "cdrs", "receipts", "pending_receipts")} == {
        "dry_run": False,
        "cdrs": 3,
        "receipts": 3,
        "pending_receipts": 3,
    }
    assert removed["partitions"] == report["partitions"]
    if cli.env["VOICECDR_DATABASE_URL"].startswith("postgresql"):
        # The three old days' partitions, and on the Citus tier's shared database maybe
        # other tests' old days (it is emptied of rows, not of partitions): all before
        # the cutoff.
        days = {datetime.strptime(name, "cdrs_p%Y%m%d").date() for name in removed["partitions"]}
        assert {(now - timedelta(days=age)).date() for age in ages[:3]} <= days
        assert all(day < cutoff.date() for day in days), days
    assert "warning: 3 of the receipts were removed before delivery" in done.err
    left = {r["cdr_id"] for r in cli("receipts", "list").json()}
    assert len(left) == 2

    again = cli("db", "prune", "--older-than", "90d")
    assert again.json()["cdrs"] == 0
    assert again.err == ""
    # A call that arrives late, for a day already pruned, is stored again.
    (tmp_path / "late.jsonl").write_text(json.dumps(records[0]) + "\n")
    assert cli("cdrs", "import", str(tmp_path / "late.jsonl")).json()["accepted"] == 1
