"""``voicecdr apps disable|enable`` and ``voicecdr cdrs list``, run as an operator runs
them: what is stored and listed on SQLite and PostgreSQL; the terminal's wording and the
usage errors, which no database shapes, on SQLite alone."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from tests.acceptance.conftest import Cli
from tests.support.client import load_and_price
from tests.support.data import canonical, make_app
from voicecdr.api import QUERY_PATH, create_app
from voicecdr.config import Settings
from voicecdr.storage import Database

PLAN = "service,prefix,cycle,unit_price,basic_price\n*,,20,0.036,0.0015\n"
# Three days of calls for app1, both voice groups interleaved, and one for app2.
DAYS = ("2019-09-08", "2019-09-09", "2019-09-10")
SERVICES = ("group_call", "verification", "notification")


def _setup(cli: Cli) -> None:
    """The apps, calls and priced plan, stored in this process: the commands that store
    them have tests of their own; these tests' subject is what is listed."""
    records = [
        canonical(
            f"{day}-{n}",
            time=f"{day} 0{n % 3}:00:0{n % 2}",
            service=SERVICES[n % 3],
            connected=n % 4 != 3,
            second=5 + n,
            record_url=f"https://r.example.com/{n}.wav" if n == 1 else None,
        )
        for day in DAYS
        for n in range(6)
    ]
    records.append(canonical("other", appkey="app2", time="2019-09-09 01:00:00"))
    with closing(Database(cli.env["VOICECDR_DATABASE_URL"])) as db:
        for appkey in ("app1", "app2"):
            make_app(db, appkey, secretkey="s3cr3t", rate_limit=1000)
        load_and_price(db, records, {"app1": PLAN})


def _api_rows(database_url: str, tmp_path: Path, voice_type: str, extended: bool) -> list[Any]:
    """What the query API answers app1 for each day, page after page, in order."""
    settings = Settings(
        database_url=database_url,
        rate_limit_state=str(tmp_path / "rl.sqlite"),
        max_age_days=0,
    )
    db = Database(database_url)
    rows: list[Any] = []
    try:
        with TestClient(create_app(settings, db)) as client:
            for day in DAYS:
                form = {
                    "appkey": "app1",
                    "secretkey": "s3cr3t",
                    "voiceType": voice_type,
                    "start_time": f"{day} 00:00:00",
                    "end_time": f"{day} 23:59:59",
                    "page": "1",
                    "page_size": "1000",
                    "extended": "1" if extended else "0",
                }
                answer = client.post(QUERY_PATH, data=form).json()
                assert answer["code"] == "1", answer
                rows += answer["info"]["rows"]
    finally:
        db.close()
    return rows


def _jsonl(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


def test_cdrs_list_renders_rows_exactly_as_the_query_api(
    cli: Cli, tmp_path: Path, database_url: str
) -> None:
    _setup(cli)
    window = ("--from", "2019-09-08 00:00:00", "--to", "2019-09-10 23:59:59")  # 72 h
    for voice_type in ("0", "1"):
        for extended in (False, True):
            args = ["cdrs", "list", "app1", *window, "--voice-type", voice_type]
            listed = cli(*args, *(["--extended"] if extended else []))
            assert listed.code == 0, listed.err
            expected = _api_rows(database_url, tmp_path, voice_type, extended)
            assert len(expected) == {"0": 6, "1": 12}[voice_type]
            assert _jsonl(listed.out) == expected


def test_cdrs_list_merges_both_groups_in_time_order_with_filters(cli: Cli) -> None:
    _setup(cli)
    window = ("--from", "2019-09-08T00:00:00+08:00", "--to", "2019-09-10 23:59:59")
    every = _jsonl(cli("cdrs", "list", "app1", *window).out)
    assert len(every) == 18
    times = [(r["time"], r["id"]) for r in every]
    assert times == sorted(times)
    assert {r.get("voice_type", 0) for r in every} == {0, 1, 2}
    notification = _jsonl(cli("cdrs", "list", "app1", *window, "--service", "notification").out)
    assert notification == [r for r in every if r.get("voice_type") == 2]
    assert _jsonl(cli("cdrs", "list", "app1", *window, "--limit", "4").out) == every[:4]
    one_day = ("--from", "2019-09-09 00:00:00", "--to", "2019-09-09 23:59:59")
    assert _jsonl(cli("cdrs", "list", "app1", *one_day).out) == every[6:12]
    app2 = _jsonl(cli("cdrs", "list", "app2", *window).out)
    assert [r["time"] for r in app2] == ["2019-09-09 01:00:00"]


def test_cdrs_list_on_a_terminal_is_a_table_with_a_header(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    _setup(cli)
    window = ("--from", "2019-09-09 00:00:00", "--to", "2019-09-09 23:59:59")
    out = _on_terminal(cli, "cdrs", "list", "app1", *window)
    lines = out.splitlines()
    assert lines[0].split() == [
        "id",
        "result",
        "cycle",
        "time",
        "start_time",
        "end_time",
        "phone",
        "basic_price",
        "second",
        "voice_type",
        "countryCode",
        "messageid",
        "customer_price",
        "show_phone",
        "size",
        "ivr_result",
    ]
    assert len(lines) == 7
    assert "0.036" in lines[1]
    assert "2019-09-09 00:00:00" in lines[1]
    json_out = _on_terminal(cli, "cdrs", "list", "app1", *window, "--json")
    assert len(_jsonl(json_out)) == 6
    empty = ("--from", "2019-09-01 00:00:00", "--to", "2019-09-01 23:59:59")
    assert _on_terminal(cli, "cdrs", "list", "app1", *empty).strip() == "no CDRs in that window"


def _on_terminal(cli: Cli, *args: str) -> str:
    """stdout of the command when it is a terminal (a pseudo-terminal here)."""
    shown = cli.on_terminal(*args)
    assert shown.code == 0, shown.err
    return shown.out


def test_cdrs_list_bad_input_is_one_line_with_status_2(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    assert cli("apps", "create", "--name", "app1", "--appkey", "app1").code == 0
    window = ["--from", "2019-09-09 00:00:00", "--to", "2019-09-09 23:59:59"]
    missing = cli("cdrs", "list", "nobody", *window)  # the command is right; the app is not
    assert missing.code == 1
    assert missing.err.strip().splitlines() == ["Error: no app with appkey 'nobody'"]
    cases = [
        (["app1", "--from", "2019-09-09 25:00:00", "--to", "2019-09-09 23:59:59"], "real date"),
        (["app1", "--from", "yesterday", "--to", "2019-09-09 23:59:59"], "yesterday"),
        (["app1", "--from", "2019-09-10 00:00:00", "--to", "2019-09-09 00:00:00"], "--from"),
        (["app1", *window, "--voice-type", "0", "--service", "verification"], "--service"),
    ]
    for args, message in cases:
        result = cli("cdrs", "list", *args)
        assert result.code == 2, (args, result.err)
        assert message in result.err, (args, result.err)
        assert len(result.err.strip().splitlines()) == 1, (args, result.err)
        assert result.out == ""


def test_apps_disable_and_enable(cli: Cli, tmp_path: Path) -> None:
    _setup(cli)
    window = ("--from", "2019-09-08 00:00:00", "--to", "2019-09-10 23:59:59")
    before = cli("cdrs", "list", "app1", *window).out

    disabled = cli("apps", "disable", "app1")
    assert disabled.code == 0, disabled.err
    state = disabled.json()
    assert (state["appkey"], state["enabled"], state["changed"]) == ("app1", False, True)
    assert state["disabled_at"].endswith("Z")
    again = cli("apps", "disable", "app1").json()
    assert (again["changed"], again["disabled_at"]) == (False, state["disabled_at"])
    listed = {a["appkey"]: a["enabled"] for a in cli("apps", "list").json()}
    assert listed == {"app1": False, "app2": True}

    # Its new CDRs are refused by name, another app's in the same file are stored.
    path = tmp_path / "more.jsonl"
    path.write_text(
        json.dumps(canonical("late", time="2019-09-09 05:00:00"))
        + "\n"
        + json.dumps(canonical("fine", appkey="app2", time="2019-09-09 05:00:00"))
        + "\n"
    )
    imported = cli("cdrs", "import", str(path))
    assert imported.code == 1
    summary = imported.json()
    assert summary["accepted"] == 1
    assert summary["rejected"][0]["errors"] == [
        "appkey: app 'app1' is disabled; its CDRs are refused until `voicecdr apps enable app1`"
    ]
    # The operator still reads its calls; nothing was lost or added.
    assert cli("cdrs", "list", "app1", *window).out == before

    enabled = cli("apps", "enable", "app1").json()
    assert (enabled["enabled"], enabled["changed"], enabled["disabled_at"]) == (True, True, None)
    assert cli("apps", "enable", "app1").json()["changed"] is False
    assert cli("cdrs", "import", str(path)).json()["accepted"] == 1
    assert len(_jsonl(cli("cdrs", "list", "app1", *window).out)) == 19

    for verb in ("disable", "enable"):
        missing = cli("apps", verb, "nobody")
        assert missing.code == 1
        assert "no app with appkey 'nobody'" in missing.err
        assert "Traceback" not in missing.err


def test_apps_disable_on_a_terminal_says_what_it_means(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    assert cli("apps", "create", "--name", "A", "--appkey", "app1").code == 0
    said = _on_terminal(cli, "apps", "disable", "app1")
    assert "app app1 disabled: its queries get auth_failed" in said
    assert "its data stays" in said
    assert "was already disabled" in _on_terminal(cli, "apps", "disable", "app1")
    assert "app app1 enabled" in _on_terminal(cli, "apps", "enable", "app1")
    listed = _on_terminal(cli, "apps", "list")
    assert " enabled " in listed


def test_demo_enables_a_disabled_demo_app_it_resets(fresh_cli: Cli) -> None:
    assert fresh_cli("demo", "--count", "5", "--seed", "1").code == 0
    assert fresh_cli("apps", "disable", "demo").code == 0
    again = fresh_cli("demo", "--count", "5", "--seed", "2")
    assert again.code == 0, again.err
    assert again.json()["accepted"] == 5
    assert fresh_cli("apps", "list").json()[0]["enabled"] is True
