"""The operator's command line, end to end, on SQLite and PostgreSQL (usage errors,
which no database shapes, on SQLite alone)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.conftest import Cli
from tests.support.data import canonical
from voicecdr.storage import migrate


def test_db_upgrade_creates_then_reports_current(fresh_cli: Cli) -> None:
    first = fresh_cli("db", "upgrade")
    assert first.code == 0, first.err
    head = migrate.head_revision()
    assert first.json() == {"from": None, "to": head, "partitions_created": []}
    assert fresh_cli("db", "upgrade").json() == {"from": head, "to": head, "partitions_created": []}


def test_commands_refuse_an_unmigrated_database(fresh_cli: Cli) -> None:
    result = fresh_cli("apps", "list")
    assert result.code == 1
    assert "run `voicecdr db upgrade`" in result.err
    assert "Traceback" not in result.err


def test_unsupported_database_url_is_explained(tmp_path: Path) -> None:
    result = Cli(tmp_path, "mysql://x@localhost/db")("apps", "list")
    assert result.code == 2  # a wrong setting: fix the invocation
    assert "unsupported database 'mysql'" in result.err


def test_apps_lifecycle(cli: Cli) -> None:
    created = cli(
        "apps",
        "create",
        "--name",
        "Acme",
        "--timezone",
        "Asia/Kolkata",
        "--language",
        "zh",
        "--rate-limit",
        "2",
    )
    assert created.code == 0, created.err
    issued = created.json()
    assert set(issued) == {
        "name",
        "appkey",
        "timezone",
        "language",
        "callback_url",
        "rate_limit",
        "enabled",
        "disabled_at",
        "secretkey",
        "signing_secret",
    }
    assert len(issued["appkey"]) == 32
    assert len(issued["secretkey"]) >= 43
    assert issued["signing_secret"].startswith("whsec_")
    assert (issued["timezone"], issued["language"], issued["rate_limit"]) == (
        "Asia/Kolkata",
        "zh",
        2.0,
    )

    listed = cli("apps", "list").json()
    assert [a["appkey"] for a in listed] == [issued["appkey"]]
    text = json.dumps(listed)
    assert issued["secretkey"] not in text
    assert issued["signing_secret"] not in text

    updated = cli(
        "apps",
        "update",
        issued["appkey"],
        "--callback-url",
        "https://acme.example.com/dr",
        "--rate-limit",
        "5",
    ).json()
    assert (updated["callback_url"], updated["rate_limit"]) == ("https://acme.example.com/dr", 5.0)
    cleared = cli("apps", "update", issued["appkey"], "--callback-url", "").json()
    assert cleared["callback_url"] is None

    rotated = cli("apps", "rotate-secret", issued["appkey"]).json()
    assert rotated["secretkey"] not in (None, issued["secretkey"])
    assert rotated["signing_secret"] == issued["signing_secret"]
    signing = cli("apps", "rotate-secret", issued["appkey"], "--signing-secret").json()
    assert signing["secretkey"] is None  # the secretkey from the rotation above still works
    assert signing["signing_secret"] != issued["signing_secret"]
    both = cli(
        "apps",
        "rotate-secret",
        issued["appkey"],
        "--signing-secret",
        "--secretkey",
        "chosen-secret",
    ).json()
    assert both["secretkey"] == "chosen-secret"
    assert both["signing_secret"] != signing["signing_secret"]


def test_apps_create_with_given_keys_and_conflicts(cli: Cli) -> None:
    made = cli("apps", "create", "--name", "Seed", "--appkey", "asdf", "--secretkey", "qwer")
    assert made.code == 0
    assert made.json()["secretkey"] == "qwer"
    again = cli("apps", "create", "--name", "Other", "--appkey", "asdf")
    assert again.code == 1
    assert "appkey 'asdf' is already taken" in again.err


def test_apps_bad_input_is_named(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    # Status 2: the command line is wrong; 1: it is right but the app does not exist.
    cases = [
        (
            ["apps", "create", "--name", "X", "--timezone", "Mars/Base"],
            2,
            "--timezone: unknown IANA timezone 'Mars/Base'",
        ),
        (
            ["apps", "create", "--name", "X", "--callback-url", "ftp://x"],
            2,
            "--callback-url: must be an http:// or https:// URL",
        ),
        (
            ["apps", "create", "--name", "X", "--rate-limit", "0"],
            2,
            "--rate-limit: must be more than 0",
        ),
        (["apps", "create", "--name", "X", "--appkey", "bad key"], 2, "--appkey: appkey must be"),
        (
            ["apps", "create", "--name", "X", "--secretkey", " x"],
            2,
            "--secretkey: secretkey must be",
        ),
        (["apps", "update", "nobody", "--rate-limit", "2"], 1, "no app with appkey 'nobody'"),
        (["apps", "update", "nobody"], 2, "nothing to change"),
        (["apps", "rotate-secret", "nobody"], 1, "no app with appkey 'nobody'"),
    ]
    for args, code, message in cases:
        result = cli(*args)
        assert result.code == code, (args, result.out)
        assert message in result.err, (args, result.err)
        assert len(result.err.strip().splitlines()) == 1, (args, result.err)
        assert "Traceback" not in result.err


def test_cdrs_import_reports_every_line_and_keeps_the_good(cli: Cli, tmp_path: Path) -> None:
    assert cli("apps", "create", "--name", "A", "--appkey", "app1").code == 0
    lines = [
        json.dumps(canonical("c1")),
        "",
        "{not json",
        json.dumps(canonical("c2", phone="12a3")),
        json.dumps(canonical("c3", appkey="ghost")),
        json.dumps(canonical("c1")),
        json.dumps(canonical("c4", service="notification", second=5)),
    ]
    path = tmp_path / "cdrs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = cli("cdrs", "import", str(path))
    assert result.code == 1
    summary = result.json()
    assert (summary["accepted"], summary["duplicates"]) == (2, 1)
    rejected = {r["line"]: r for r in summary["rejected"]}
    assert set(rejected) == {3, 4, 5}
    assert rejected[3]["errors"][0].startswith("record: not valid JSON")
    assert rejected[4] == {
        "index": 2,
        "call_id": "c2",
        "errors": ["phone: must contain digits only"],
        "file": str(path),
        "line": 4,
    }
    assert rejected[5]["errors"] == ["appkey: unknown app 'ghost'"]

    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(canonical("c1")) + "\n" + json.dumps(canonical("c5")) + "\n")
    again = cli("cdrs", "import", str(good))
    assert again.code == 0, again.err
    assert again.json() == {
        "accepted": 1,
        "duplicates": 1,
        "rejected": [],
        "rejected_total": 0,
        "rejects_file": None,
    }

    conflict = tmp_path / "conflict.jsonl"
    conflict.write_text(json.dumps(canonical("c1", second=7)) + "\n")
    clash = cli("cdrs", "import", str(conflict)).json()
    assert clash["rejected"][0]["errors"] == [
        "call_id: conflict: already stored with different content"
    ]


def test_cdrs_import_missing_file_is_a_usage_error(sqlite_cli: Cli) -> None:
    result = sqlite_cli("cdrs", "import", "nope.jsonl")
    assert result.code == 2
    assert "does not exist" in result.err


def test_demo_prints_keys_and_a_working_curl(fresh_cli: Cli) -> None:
    result = fresh_cli("demo", "--count", "300", "--seed", "5")
    assert result.code == 0, result.err
    data = result.json()
    assert (data["appkey"], data["secretkey"], data["accepted"]) == ("demo", "demo-secret", 300)
    assert data["try"].startswith("curl -s -X POST http://127.0.0.1:8000/api/voiceSms/getVoiceCdr")
    assert data["console"] == "http://127.0.0.1:8000/console"
    # Running it again keeps the app, resets its demo secret and adds fresh calls.
    assert fresh_cli("demo", "--count", "10", "--seed", "6").json()["accepted"] == 10
    assert len(fresh_cli("apps", "list").json()) == 1


def test_secretkeys_are_not_stored_in_plaintext(fresh_cli: Cli, tmp_path: Path) -> None:
    fresh_cli("db", "upgrade")
    secret = fresh_cli("apps", "create", "--name", "A").json()["secretkey"]
    for file in tmp_path.glob("fresh.db*"):
        assert secret.encode() not in file.read_bytes()
