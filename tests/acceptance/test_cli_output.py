"""What the command line prints: tables with a header on a terminal, JSON when piped,
and a demo that says what it did to the demo app's secrets."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from tests.acceptance.conftest import Cli
from tests.support.data import canonical


def on_a_terminal(cli: Cli, *args: str) -> tuple[int, str]:
    """Run the CLI with stdout on a pseudo-terminal; its exit status and what it drew."""
    shown = cli.on_terminal(*args)
    return shown.code, shown.out


def test_apps_list_is_a_table_with_a_header_on_a_terminal_and_json_when_piped(
    fresh_cli: Cli,
) -> None:
    assert fresh_cli("db", "upgrade").code == 0
    code, drawn = on_a_terminal(fresh_cli, "apps", "list")
    assert (code, drawn.strip()) == (0, "no apps")
    created = fresh_cli("apps", "create", "--name", "Acme", "--appkey", "acme", "--rate-limit", "5")
    assert created.code == 0, created.err

    code, drawn = on_a_terminal(fresh_cli, "apps", "list")
    assert code == 0
    header, row = drawn.strip().splitlines()
    assert header.split() == [
        "APPKEY",
        "NAME",
        "TIMEZONE",
        "LANGUAGE",
        "RATE/S",
        "STATE",
        "CALLBACK",
        "URL",
    ]
    assert row.split() == ["acme", "Acme", "Asia/Shanghai", "en", "5", "enabled", "-"]
    assert row.index("Acme") == header.index("NAME")  # the columns line up

    piped = fresh_cli("apps", "list")
    assert [a["appkey"] for a in piped.json()] == ["acme"]
    code, drawn = on_a_terminal(fresh_cli, "apps", "list", "--json")
    assert [a["appkey"] for a in json.loads(drawn)] == ["acme"]


def test_receipts_list_has_a_header_on_a_terminal(fresh_cli: Cli) -> None:
    fresh_cli.env["VOICECDR_ALLOW_PRIVATE_CALLBACKS"] = "true"
    demo = fresh_cli("demo", "--count", "20", "--callback-url", "http://127.0.0.1:9/dr")
    assert demo.code == 0, demo.err
    code, drawn = on_a_terminal(fresh_cli, "receipts", "list", "--limit", "3")
    assert code == 0
    lines = drawn.strip().splitlines()
    assert lines[0].split()[:4] == ["ID", "APPKEY", "CDR", "STATUS"]
    assert len(lines) == 4
    assert all(line.split()[1] == "demo" for line in lines[1:])


def test_the_demo_keeps_the_signing_secret_of_an_existing_demo_app_and_says_so(
    fresh_cli: Cli,
) -> None:
    code, first = on_a_terminal(fresh_cli, "demo", "--count", "10")
    assert code == 0
    secret = fresh_cli("demo", "--count", "10").json()
    assert secret["signing_secret_kept"] is True
    assert f"receipt signing_secret={secret['signing_secret']} (new)" in first
    code, again = on_a_terminal(fresh_cli, "demo", "--count", "10")
    assert code == 0
    assert (
        f"receipt signing_secret={secret['signing_secret']} (kept from the existing demo app)"
        in again
    )


def test_rates_show_and_unpriced_are_tables_with_a_header_on_a_terminal(fresh_cli: Cli) -> None:
    assert fresh_cli("db", "upgrade").code == 0
    assert fresh_cli("apps", "create", "--name", "Acme", "--appkey", "acme").code == 0
    plan = fresh_cli.cwd / "plan.csv"
    plan.write_text("service,prefix,cycle,unit_price,basic_price\ngroup_call,,60,0.012,0\n")
    assert fresh_cli("rates", "import", "acme", str(plan)).code == 0

    code, drawn = on_a_terminal(fresh_cli, "rates", "show", "acme")
    assert code == 0
    title, header, row = drawn.strip().splitlines()
    assert title.startswith("plan version 1 (")
    assert header.split() == ["SERVICE", "PREFIX", "CYCLE/S", "UNIT", "PRICE", "BASIC", "PRICE"]
    assert row.split() == ["group_call", "(any)", "60", "0.012", "0"]
    assert row.index("0.012") == header.index("UNIT PRICE")  # the columns line up

    code, drawn = on_a_terminal(fresh_cli, "rates", "unpriced", "acme")
    assert (code, drawn.strip()) == (0, "0 unpriced")

    # A notification call: the plan prices group calls only, so it stays pending.
    placed = (datetime.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    record = canonical("n1", appkey="acme", service="notification", time=placed)
    calls = fresh_cli.cwd / "calls.jsonl"
    calls.write_text(json.dumps(record) + "\n")
    assert fresh_cli("cdrs", "import", str(calls)).code == 0
    assert fresh_cli("rate").code == 0
    code, drawn = on_a_terminal(fresh_cli, "rates", "unpriced", "acme")
    assert code == 0
    total, header, row = drawn.strip().splitlines()
    assert total == "1 unpriced"
    assert header.split() == ["ID", "TIME", "SERVICE", "NUMBER", "REASON"]
    assert row.split()[2:4] == ["notification", "91810022458"]
    assert row[header.index("REASON") :].startswith("no rate for notification calls")
