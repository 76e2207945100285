"""Every wrong input to the command line answers one line on stderr, no traceback, and
exit status 2 for a wrong invocation or setting, 1 for a command that ran and failed."""

from __future__ import annotations

import json
import socket
import subprocess
from dataclasses import dataclass, field

import pytest

from tests.acceptance.conftest import Cli
from tests.support.data import canonical, make_app
from voicecdr.storage import Database

PLAN = "service,prefix,cycle,unit_price,basic_price\ngroup_call,,20,0.05,0.005\n"
DEAD_URL = "http://127.0.0.1:9"  # the discard port: nothing listens there
EXPORT = ("export", "--appkey", "a", "--secretkey", "s", "--voice-type", "0")
WINDOW = ("--from", "2026-12-01 00:00:00", "--to", "2026-12-01 01:00:00")
EVERY_YEAR = ("--from", "0001-01-01 00:00:00", "--to", "9999-12-31 23:59:59")


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    hidden: str = ""  # a value that must not be echoed


CASES = {
    # files
    "import of a file with an unknown suffix": Case(
        ("cdrs", "import", "{tmp}/calls.txt"),
        2,
        ("calls.txt", "cannot tell the format", "--format"),
    ),
    "import of a missing file": Case(
        ("cdrs", "import", "{tmp}/nope.jsonl"), 2, ("nope.jsonl", "does not exist")
    ),
    "import of a plain directory as CSV": Case(
        ("cdrs", "import", "--format", "csv", "{tmp}/dir"), 2, ("is a directory",)
    ),
    "rejects file in a missing directory": Case(
        ("cdrs", "import", "--rejects", "{tmp}/no/r.jsonl", "{tmp}/bad.jsonl"),
        1,
        ("cannot write the rejects file", "no/r.jsonl"),
    ),
    "plan file missing": Case(
        ("rates", "import", "app1", "{tmp}/nope.csv"), 2, ("does not exist",)
    ),
    "plan file is a directory": Case(("rates", "import", "app1", "{tmp}/dir"), 2, ("directory",)),
    "plan file not UTF-8": Case(("rates", "import", "app1", "{tmp}/latin1.csv"), 1, ("not UTF-8",)),
    "plan file empty": Case(
        ("rates", "import", "app1", "{tmp}/empty.csv"), 1, ("nothing imported", "empty")
    ),
    # options and arguments
    "unknown timezone": Case(
        ("apps", "create", "--name", "A", "--timezone", "Mars/Base"), 2, ("--timezone", "Mars/Base")
    ),
    "unknown language": Case(
        ("apps", "create", "--name", "A", "--language", "fr"), 2, ("--language", "'fr'")
    ),
    "rate limit not a number": Case(
        ("apps", "create", "--name", "A", "--rate-limit", "abc"), 2, ("--rate-limit", "abc")
    ),
    "rate limit too large": Case(
        ("apps", "create", "--name", "A", "--rate-limit", "2e6"),
        2,
        ("--rate-limit", "at most 1,000,000 requests/second"),
    ),
    # numbers: ASCII digits 0-9 only (int() and float() take every script's), finite only
    "rate limit in fullwidth digits": Case(
        ("apps", "create", "--name", "A", "--rate-limit", "\uff15"),
        2,
        ("--rate-limit", "'\uff15' is not a number written with ASCII digits 0-9"),
    ),
    "rate limit update in Arabic-Indic digits": Case(
        ("apps", "update", "app1", "--rate-limit", "\u0663"),
        2,
        ("--rate-limit", "'\u0663' is not a number written with ASCII digits 0-9"),
    ),
    "rate limit nan": Case(
        ("apps", "create", "--name", "A", "--rate-limit", "nan"),
        2,
        ("--rate-limit", "'nan' is not a finite number"),
    ),
    "replay id in fullwidth digits": Case(
        ("receipts", "replay", "--id", "\uff12"),
        2,
        ("--id", "'\uff12' is not a whole number written with ASCII digits 0-9"),
    ),
    "receipts limit in fullwidth digits": Case(
        ("receipts", "list", "--limit", "\uff15"), 2, ("--limit", "'\uff15'", "ASCII digits")
    ),
    "cdrs list limit in Arabic-Indic digits": Case(
        ("cdrs", "list", "app1", *WINDOW, "--limit", "\u0661"),
        2,
        ("--limit", "'\u0661' is not a whole number written with ASCII digits 0-9"),
    ),
    "import workers in fullwidth digits": Case(
        ("cdrs", "import", "--workers", "\uff11", "{tmp}/bad.jsonl"),
        2,
        ("--workers", "'\uff11'", "ASCII digits"),
    ),
    "unpriced limit in fullwidth digits": Case(
        ("rates", "unpriced", "app1", "--limit", "\uff11"),
        2,
        ("--limit", "'\uff11'", "ASCII digits"),
    ),
    "plan version in fullwidth digits": Case(
        ("rates", "show", "app1", "--version", "\uff11"),
        2,
        ("--version", "'\uff11'", "ASCII digits"),
    ),
    "demo days nan": Case(("demo", "--days", "nan"), 2, ("--days", "'nan' is not a finite number")),
    "demo days inf": Case(("demo", "--days", "inf"), 2, ("--days", "'inf' is not a finite number")),
    "demo count in fullwidth digits": Case(
        ("demo", "--count", "\uff13"), 2, ("--count", "'\uff13'", "ASCII digits")
    ),
    "demo seed in fullwidth digits": Case(
        ("demo", "--seed", "\uff17"), 2, ("--seed", "'\uff17'", "ASCII digits")
    ),
    "export rate nan": Case(
        (*EXPORT, *WINDOW, "--base-url", DEAD_URL, "--rate", "nan"),
        2,
        ("--rate", "'nan' is not a finite number"),
    ),
    "export rate inf": Case(
        (*EXPORT, *WINDOW, "--base-url", DEAD_URL, "--rate", "inf"),
        2,
        ("--rate", "'inf' is not a finite number"),
    ),
    "export rate too large to be finite": Case(
        (*EXPORT, *WINDOW, "--base-url", DEAD_URL, "--rate", "1e999"),
        2,
        ("--rate", "'1e999' is too large"),
    ),
    "export max span nan": Case(
        (*EXPORT, *WINDOW, "--base-url", DEAD_URL, "--max-span-hours", "NaN"),
        2,
        ("--max-span-hours", "'NaN' is not a finite number"),
    ),
    "export with negative retries": Case(
        (*EXPORT, *WINDOW, "--base-url", DEAD_URL, "--retries", "-1"),
        2,
        ("--retries", "-1 is not in the range 0<=x<=100"),
    ),
    "export page size in fullwidth digits": Case(
        (*EXPORT, *WINDOW, "--base-url", DEAD_URL, "--page-size", "\uff15"),
        2,
        ("--page-size", "'\uff15'", "ASCII digits"),
    ),
    "export voice type in Arabic-Indic digits": Case(
        (
            "export",
            "--appkey",
            "a",
            "--secretkey",
            "s",
            "--voice-type",
            "\u0660",
            *WINDOW,
            "--base-url",
            DEAD_URL,
        ),
        2,
        ("--voice-type", "'\u0660'", "ASCII digits"),
    ),
    "plan prices in other scripts' digits": Case(
        ("rates", "import", "app1", "{tmp}/digits.csv"),
        1,
        ("digits.csv: nothing imported", "line 2: unit_price must be written with ASCII digits"),
    ),
    "plan price with an exponent": Case(
        ("rates", "import", "app1", "{tmp}/exponent.csv"),
        1,
        ("exponent.csv: nothing imported", "line 2: unit_price", "without an exponent, not '1e3'"),
    ),
    "callback URL not http": Case(
        ("apps", "create", "--name", "A", "--callback-url", "ftp://x.example"),
        2,
        ("--callback-url",),
    ),
    "appkey taken": Case(("apps", "create", "--name", "A", "--appkey", "app1"), 1, ("taken",)),
    "unknown app": Case(("apps", "update", "nope", "--name", "B"), 1, ("no app", "'nope'")),
    "unknown app in rates show": Case(("rates", "show", "nope"), 1, ("'nope'",)),
    "plan version not a number": Case(
        ("rates", "show", "app1", "--version", "x"), 2, ("--version", "'x'")
    ),
    "impossible --from": Case(
        ("rerate", "app1", "--from", "2026-02-30 00:00:00", "--to", "2026-03-01 00:00:00"),
        2,
        ("--from", "'2026-02-30 00:00:00'", "not a real date and time"),
    ),
    "unreadable --to": Case(
        ("rerate", "app1", "--from", "2026-03-01 00:00:00", "--to", "tomorrow"),
        2,
        ("--to", "'tomorrow'"),
    ),
    "--from after --to": Case(
        ("rerate", "app1", "--from", "2026-03-02 00:00:00", "--to", "2026-03-01 00:00:00"),
        2,
        ("--from", "after --to"),
    ),
    "replay without a selector": Case(("receipts", "replay"), 2, ("say which receipts",)),
    "receipts limit zero": Case(("receipts", "list", "--limit", "0"), 2, ("--limit",)),
    "prune duration": Case(("db", "prune", "--older-than", "5x"), 2, ("--older-than", "5x")),
    "unknown command": Case(("frobnicate",), 2, ("frobnicate",)),
    "serve on a bad port": Case(("serve", "--port", "70000"), 2, ("--port",)),
    # settings
    "bad number setting": Case(
        ("apps", "list"),
        2,
        ("VOICECDR_MAX_PAGE_SIZE: must be a whole number between 1 and 100000 (got 'abc')",),
        env={"VOICECDR_MAX_PAGE_SIZE": "abc"},
    ),
    "bad boolean setting": Case(
        ("apps", "list"),
        2,
        ("VOICECDR_ALLOW_PRIVATE_CALLBACKS: must be true or false",),
        env={"VOICECDR_ALLOW_PRIVATE_CALLBACKS": "maybe"},
    ),
    "bad secret setting is not echoed": Case(
        ("apps", "list"),
        2,
        ("VOICECDR_INGEST_TOKEN: must be at least 16 characters",),
        env={"VOICECDR_INGEST_TOKEN": "hunter2-secret"},
        hidden="hunter2-secret",
    ),
    # databases
    "unsupported database URL": Case(
        ("--database-url", "mysql://u:pw-secret@x/db", "apps", "list"),
        2,
        ("unsupported database 'mysql'",),
        hidden="pw-secret",
    ),
    "unparsable database URL": Case(
        ("--database-url", "nonsense", "apps", "list"), 2, ("database URL is not valid",)
    ),
    "missing database file": Case(
        ("--database-url", "sqlite:///{tmp}/no/such.db", "apps", "list"),
        1,
        ("does not exist", "voicecdr db upgrade"),
    ),
    "database file that is not SQLite": Case(
        ("--database-url", "sqlite:///{tmp}/calls.txt", "apps", "list"),
        1,
        ("not an SQLite database",),
    ),
    "database in a missing directory": Case(
        ("--database-url", "sqlite:///{tmp}/no/such.db", "db", "upgrade"),
        2,
        ("{tmp}/no/such.db", "directory", "does not exist"),
    ),
    "in-memory database": Case(
        ("--database-url", "sqlite://", "demo"), 2, ("in-memory", "sqlite:///FILE")
    ),
    "database not upgraded": Case(
        ("--database-url", "sqlite:///{tmp}/empty.db", "apps", "list"), 1, ("voicecdr db upgrade",)
    ),
    # the client's export
    "export base URL not http": Case(
        (*EXPORT, "--base-url", "api.example.com", *WINDOW), 2, ("--base-url", "api.example.com")
    ),
    "export impossible --from": Case(
        (*EXPORT, "--from", "2026-02-30 00:00:00", "--to", "2026-03-01 00:00:00"),
        2,
        ("--from", "'2026-02-30 00:00:00'", "not a real date and time"),
    ),
    "export unknown timezone": Case(
        (*EXPORT, *WINDOW, "--timezone", "Mars/Base"), 2, ("--timezone", "Mars/Base")
    ),
    "export to a missing directory": Case(
        (*EXPORT, *WINDOW, "--base-url", DEAD_URL, "-o", "{tmp}/no/out.csv"),
        1,
        ("no/out.csv", "No such file or directory"),
    ),
    "export from an endpoint that is down": Case(
        (*EXPORT, *WINDOW, "--base-url", DEAD_URL, "--retries", "1", "-o", "{tmp}/out.csv"),
        1,
        ("127.0.0.1:9", "what was exported is kept: run the same command again to resume"),
    ),
    "export of every year there is": Case(
        (*EXPORT, *EVERY_YEAR, "--base-url", DEAD_URL, "--retries", "0", "-o", "{tmp}/all.csv"),
        1,
        ("127.0.0.1:9", "run the same command again to resume"),
    ),
    "export of the last two days there are": Case(
        (
            *EXPORT,
            "--from",
            "9999-12-30 00:00:00",
            "--to",
            "9999-12-31 23:59:59",
            "--base-url",
            DEAD_URL,
            "--retries",
            "0",
        ),
        1,
        ("127.0.0.1:9",),
    ),
    "export from before the first year in the app's timezone": Case(
        (*EXPORT, "--from", "0001-01-01T00:00:00+14:00", "--to", "0001-01-02 00:00:00"),
        2,
        ("--from", "'0001-01-01T00:00:00+14:00' is outside the years 0001-9999"),
    ),
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """One SQLite database with app1 and the files the cases name (SQLite is enough:
    these are the command line's answers, not storage's)."""
    tmp = tmp_path_factory.mktemp("cli-errors")
    url = f"sqlite:///{tmp / 'voicecdr.db'}"
    cli = Cli(tmp, url)
    assert cli("db", "upgrade").code == 0
    db = Database(url)
    make_app(db)
    db.close()
    (tmp / "calls.txt").write_text(json.dumps(canonical("c1")) + "\n")
    (tmp / "bad.jsonl").write_text("{broken\n")
    (tmp / "dir").mkdir()
    (tmp / "latin1.csv").write_bytes(PLAN.encode() + "*,,60,0.1,0 # caf\xe9\n".encode("latin-1"))
    (tmp / "empty.csv").write_text("")
    header = PLAN.splitlines()[0]
    (tmp / "digits.csv").write_text(
        f"{header}\n*,,60,\uff10.\uff10\uff15,\u0660.\u0660\u0660\uff11\n"
    )
    (tmp / "exponent.csv").write_text(f"{header}\n*,,60,1e3,0\n")
    (tmp / "empty.db").write_bytes(b"")
    return cli


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_wrong_input_answers_one_line(prepared: Cli, case: Case) -> None:
    tmp = str(prepared.cwd)
    prepared.env.update(case.env)
    try:
        result = prepared(*(a.replace("{tmp}", tmp) for a in case.args), timeout=60)
    finally:
        for name in case.env:
            del prepared.env[name]
    assert result.code == case.code, result.err
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("Error: "), result.err
    for words in case.says:
        assert words.replace("{tmp}", tmp) in lines[0], result.err
    if case.hidden:
        assert case.hidden not in result.err + result.out


def test_a_port_in_use_is_said_first_in_one_line(prepared: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            prepared.command("serve", "--port", str(port)),
            cwd=prepared.cwd,
            env=prepared.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"Error: port {port} on 127.0.0.1 is in use: stop what listens there or choose "
        "another --port"
    ]
