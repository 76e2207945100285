"""Rate plans, rating, re-rating and receipts from the operator's command line, on SQLite
and PostgreSQL; refusals made before anything is stored on SQLite alone."""

from __future__ import annotations

import json
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx

from tests.acceptance.conftest import Cli
from tests.support.data import canonical
from tests.support.receiver import receiving
from voicecdr.models import Service
from voicecdr.rating import Rate
from voicecdr.storage import AppStore, Database, RatingStore

PLAN = "service,prefix,cycle,unit_price,basic_price\ngroup_call,,20,0.05,0.005\n"


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def jsonl(path: Path, records: list[dict[str, Any]]) -> str:
    return write(path, "".join(json.dumps(r) + "\n" for r in records))


def test_rates_import_validates_the_whole_file_first(cli: Cli, tmp_path: Path) -> None:
    cli.store_app("app1")
    bad = write(tmp_path / "bad.csv", PLAN + "sms,1,6,0.1,0\n*,1,0,0.1,0\n")
    result = cli("rates", "import", "app1", bad)
    assert result.code == 1
    assert "nothing imported" in result.err
    assert "line 3: service must be" in result.err
    assert "line 4: cycle must be" in result.err
    missing = cli("rates", "show", "app1")
    assert missing.code == 1
    assert "has no rate plan" in missing.err

    good = write(tmp_path / "plan.csv", PLAN)
    assert cli("rates", "import", "app1", good).json() == {
        "appkey": "app1",
        "version": 1,
        "rates": 1,
    }
    assert cli("rates", "import", "app1", good).json()["version"] == 2
    shown = cli("rates", "show", "app1").json()
    assert shown["versions"] == [1, 2]
    assert shown["rates"] == [
        {
            "service": "group_call",
            "prefix": "",
            "cycle": 20,
            "unit_price": "0.05",
            "basic_price": "0.005",
        }
    ]
    assert cli("rates", "show", "app1", "--version", "9").code == 1
    assert "Traceback" not in cli("rates", "import", "nobody", good).err


def test_rate_unpriced_and_rerate(cli: Cli, tmp_path: Path) -> None:
    cli.store_app("app1")
    cli(
        "cdrs",
        "import",
        jsonl(
            tmp_path / "c.jsonl",
            [
                canonical("a", second=19),
                canonical("b", second=45, time="2019-09-09 09:10:00"),
                canonical("v", service="verification", second=3),
            ],
        ),
    )
    assert cli("rate").json() == {"priced": 0, "unpriced": 3}
    cli("rates", "import", "app1", write(tmp_path / "p.csv", PLAN))
    assert cli("rate").json() == {"priced": 2, "unpriced": 1}
    unpriced = cli("rates", "unpriced", "app1").json()
    assert unpriced["total"] == 1
    assert unpriced["cdrs"][0]["reason"].startswith("no rate for verification calls to 91")

    cli("rates", "import", "app1", write(tmp_path / "p2.csv", PLAN.replace("0.05", "0.04")))
    period = ["--from", "2019-09-09 00:00:00", "--to", "2019-09-09T23:59:59+08:00"]
    dry = cli("rerate", "app1", *period, "--dry-run").json()
    assert (dry["dry_run"], dry["records"], dry["changed"]) == (True, 3, 2)
    assert (dry["cost_before"], dry["cost_after"]) == ("0.2", "0.16")
    assert cli("rerate", "app1", *period).json()["changed"] == 2
    assert cli("rerate", "app1", *period, "--dry-run").json()["changed"] == 0
    bad = cli("rerate", "app1", "--from", "yesterday", "--to", "2019-09-09 00:00:00")
    assert bad.code == 2
    assert "neither yyyy-MM-dd HH:mm:ss nor ISO 8601" in bad.err


def test_rates_import_refuses_a_unit_price_whose_cost_could_not_be_stored(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    cli = sqlite_cli
    cli.store_app("app1")
    plan = write(tmp_path / "p.csv", PLAN + "group_call,1,1,999999.999999999,0\n")
    result = cli("rates", "import", "app1", plan)
    assert result.code == 1
    assert result.err.splitlines() == [  # one bad line: one line of error
        f"Error: {plan}: nothing imported: "
        "line 3: unit_price 999999.999999999 with cycle 1 makes a 86400 s call cost more than "
        "the largest storable cost 9223372036.854775807; with this cycle it can be at most "
        "106751.9911673"
    ]
    assert cli("rates", "show", "app1").code == 1  # nothing imported


def test_rate_sets_aside_a_cost_too_large_to_store_and_prices_the_rest(
    cli: Cli, tmp_path: Path
) -> None:
    for appkey in ("rich", "other"):
        cli.store_app(appkey)
        cli("rates", "import", appkey, write(tmp_path / "p.csv", PLAN))
    # A plan stored before import refused such prices.
    with closing(Database(cli.env["VOICECDR_DATABASE_URL"])) as db:
        app = AppStore(db).get("rich")
        assert app is not None
        top = Rate(Service.GROUP_CALL, "", 1, 999_999_999_999_999, 0)
        RatingStore(db).import_plan(app.id, [top], source="old.csv", now=1)
    records = [
        canonical("huge", appkey="rich", second=86_400),
        canonical("short", appkey="rich", second=2, time="2019-09-09 09:00:01"),
        canonical("o1", appkey="other", second=19),
        canonical("o2", appkey="other", second=45, time="2019-09-09 09:00:01"),
    ]
    cli("cdrs", "import", jsonl(tmp_path / "c.jsonl", records))
    result = cli("rate")
    assert (result.code, result.err) == (0, "")
    assert result.json() == {"priced": 3, "unpriced": 1}
    unpriced = cli("rates", "unpriced", "rich").json()
    assert unpriced["total"] == 1
    assert "is more than the largest storable cost" in unpriced["cdrs"][0]["reason"]
    assert cli("rates", "unpriced", "other").json()["total"] == 0
    assert cli("rate").json() == {"priced": 0, "unpriced": 0}


def test_prices_and_costs_print_as_exact_decimals_without_exponents(
    cli: Cli, tmp_path: Path
) -> None:
    cli.store_app("app1")
    plan = "service,prefix,cycle,unit_price,basic_price\ngroup_call,,20,10,0.0000001\n"
    cli("rates", "import", "app1", write(tmp_path / "p.csv", plan))
    (rate,) = cli("rates", "show", "app1").json()["rates"]
    assert (rate["unit_price"], rate["basic_price"]) == ("10", "0.0000001")
    cli("cdrs", "import", jsonl(tmp_path / "c.jsonl", [canonical("a", second=19)]))
    assert cli("rate").json() == {"priced": 1, "unpriced": 0}
    cli("rates", "import", "app1", write(tmp_path / "p2.csv", plan.replace(",10,", ",100,")))
    period = ["--from", "2019-09-09 00:00:00", "--to", "2019-09-09 23:59:59"]
    dry = cli("rerate", "app1", *period, "--dry-run").json()
    assert (dry["cost_before"], dry["cost_after"]) == ("10", "100")
    assert dry["samples"][0]["cost_before"] == "10"
    assert dry["samples"][0]["cost_after"] == "100"


def test_receipts_list_and_replay(cli: Cli, tmp_path: Path) -> None:
    cli.env["VOICECDR_ALLOW_PRIVATE_CALLBACKS"] = "true"
    cli.env["VOICECDR_RECEIPT_RETRY_SCHEDULE"] = "0"
    with receiving() as receiver:
        made = cli(
            "apps",
            "create",
            "--name",
            "A",
            "--appkey",
            "app1",
            "--callback-url",
            f"{receiver.url}/dr",
        )
        assert made.code == 0, made.err
        cli("rates", "import", "app1", write(tmp_path / "p.csv", PLAN))
        cli("cdrs", "import", jsonl(tmp_path / "c.jsonl", [canonical("a"), canonical("b")]))
        cli("rate")
        listed = cli("receipts", "list", "--status", "pending").json()
        assert len(listed) == 2
        assert {r["status"] for r in listed} == {"pending"}
        assert cli("receipts", "list", "--status", "dead").json() == []
        usage = cli("receipts", "replay")
        assert usage.code == 2
        assert "say which receipts" in usage.err
        replayed = cli("receipts", "replay", "--id", str(listed[0]["id"])).json()
        assert replayed == {"replayed": 1}
        assert cli(
            "receipts",
            "replay",
            "--app",
            "app1",
            "--from",
            "2000-01-01 00:00:00",
            "--to",
            "2999-01-01 00:00:00",
        ).json() == {"replayed": 2}
        assert cli("receipts", "replay", "--failed").json() == {"replayed": 0}


def test_private_callback_urls_are_refused_at_registration(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    result = cli("apps", "create", "--name", "A", "--callback-url", "http://127.0.0.1:9/dr")
    assert result.code == 2  # an option value the server refuses: a usage error
    assert "--callback-url: 127.0.0.1 resolves to a loopback address" in result.err
    # The refusal names the setting that allows it, so a closed network is one step away.
    assert "VOICECDR_ALLOW_PRIVATE_CALLBACKS=true" in result.err
    assert len(result.err.strip().splitlines()) == 1
    meta = cli("apps", "create", "--name", "B", "--callback-url", "http://169.254.169.254/")
    assert "link-local" in meta.err
    assert "VOICECDR_ALLOW_PRIVATE_CALLBACKS=true" in meta.err
    cli.env["VOICECDR_ALLOW_PRIVATE_CALLBACKS"] = "true"
    allowed = cli("apps", "create", "--name", "C", "--callback-url", "http://127.0.0.1:9/dr")
    assert allowed.code == 0, allowed.err


def test_serve_prices_new_cdrs_and_pushes_receipts(cli: Cli, serve: Any, tmp_path: Path) -> None:
    cli.env["VOICECDR_ALLOW_PRIVATE_CALLBACKS"] = "true"
    with receiving() as receiver:
        cli(
            "apps",
            "create",
            "--name",
            "A",
            "--appkey",
            "app1",
            "--secretkey",
            "s1",
            "--rate-limit",
            "50",
            "--callback-url",
            f"{receiver.url}/dr",
        )
        cli("rates", "import", "app1", write(tmp_path / "p.csv", PLAN))
        server = serve()
        now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 60))
        record = canonical("live", second=19)
        record.update(time=now, start_time=None, end_time=None, connected=False, second=0)
        cli("cdrs", "import", jsonl(tmp_path / "live.jsonl", [record]))
        deadline = time.monotonic() + 15
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(receiver.received) == 1, server.logs()
        local = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 8 * 3600))
        earlier = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 7 * 3600))
        body = httpx.post(
            f"{server.url}/api/voiceSms/getVoiceCdr",
            data={
                "appkey": "app1",
                "secretkey": "s1",
                "voiceType": "0",
                "start_time": earlier,
                "end_time": local,
                "page": "1",
                "page_size": "10",
                "extended": "1",
            },
        ).json()
        (row,) = body["info"]["rows"]
        assert (row["cost_status"], row["cost"], row["basic_price"]) == ("final", 0.005, 0.005)
        assert "voicecdr_receipt_attempts_total" in httpx.get(f"{server.url}/metrics").text
