"""``voicecdr cdrs import --format asterisk`` as an operator runs it, on a Master.csv.

The fixture (fixtures/asterisk-Master.csv) is what Asterisk's cdr_csv writes (cdr/cdr_csv.c,
``build_csv_record``) with cdr.conf ``[csv]`` loguniqueid=yes, loguserfield=yes,
newcdrcolumns=yes and usegmtime=no on a switch in Asia/Kolkata: 21 quoted columns, local
times, a fork (two records of linkedid pbx1-1764473700.102, the second answered), a
busy call whose caller id holds a comma and quotes, a line with a disposition Asterisk
never writes, and a call of an account code that is no app.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.acceptance.conftest import Cli

FIXTURE = Path(__file__).parent / "fixtures" / "asterisk-Master.csv"
OPTIONS = (
    "--format",
    "asterisk",
    "--source-timezone",
    "Asia/Kolkata",
    "--set",
    "service=notification",
    "--set",
    "country_code=91",
)


def test_a_master_csv_imports_once_whatever_the_replays(cli: Cli, tmp_path: Path) -> None:
    assert cli("apps", "create", "--name", "PBX", "--appkey", "app1").code == 0
    master = tmp_path / "Master.csv"
    shutil.copyfile(FIXTURE, master)

    first = cli("cdrs", "import", str(master), *OPTIONS, "--rejects", "rejects.jsonl")
    assert first.code == 1, first.err  # two lines rejected
    summary = first.json()
    assert (summary["accepted"], summary["duplicates"], summary["rejected_total"]) == (3, 0, 2)
    assert [(r["line"], r["errors"]) for r in summary["rejected"]] == [
        (
            5,
            [
                "disposition: unknown 'SOMETIMES' (one of ANSWERED, NO ANSWER, BUSY, "
                "CONGESTION, FAILED, CANCEL)"
            ],
        ),
        (6, ["accountcode: unknown app 'sales'"]),
    ]
    assert len((tmp_path / "rejects.jsonl").read_text().splitlines()) == 2

    listed = cli(
        "cdrs", "list", "app1", "--from", "2026-11-30 00:00:00", "--to", "2026-11-30 23:59:59",
        "--extended", "--json",
    )  # fmt: skip
    assert listed.code == 0, listed.err
    rows = [
        (
            r["messageid"], r["phone"], r["show_phone"], r["time"], r["start_time"],
            r["end_time"], r["second"], r["result"], r["hangup_cause"], r["hangup_disposition"],
        )
        for r in map(json.loads, listed.out.splitlines())
    ]  # fmt: skip
    # The app's timezone is Asia/Shanghai: 2h30 after the switch's Kolkata times.
    assert rows == [
        ("msg-1001", "810022458", "085944247", "2026-11-30 11:30:00", "2026-11-30 11:30:06",
         "2026-11-30 11:30:48", 42, "Successful connection", "NORMAL_CLEARING", "ANSWERED"),
        ("msg-1002", "810022459", "085944247", "2026-11-30 11:35:00", "2026-11-30 11:35:09",
         "2026-11-30 11:36:44", 95, "Successful connection", "NORMAL_CLEARING", "ANSWERED"),
        ("msg-1003", "810022461", 'Front desk, "main"', "2026-11-30 11:40:00", "",
         "2026-11-30 11:40:03", 0, "Unsuccessful connection", "USER_BUSY", "BUSY"),
    ]  # fmt: skip

    again = cli("cdrs", "import", str(master), *OPTIONS, "--rejects", "again.jsonl")
    assert again.code == 1
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 3)


@pytest.mark.parametrize("command", [("cdrs", "import"), ("watch", "--once")])
def test_asterisk_options_are_checked_before_anything_is_read(
    sqlite_cli: Cli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """One definition of the options: ``cdrs import`` and ``watch`` refuse the same
    (on SQLite alone: the refusals are option parsing, which no database shapes)."""
    cli = sqlite_cli
    master = tmp_path / "Master.csv"
    shutil.copyfile(FIXTURE, master)
    cases = [
        (
            ("--format", "asterisk"),
            "--format asterisk: cdr_csv records have no service: give it with "
            "--set service=VALUE (group_call, verification or notification) or "
            "--map service=COLUMN",
        ),
        (
            ("--format", "asterisk", "--set", "service=sales"),
            "--set service='sales': must be one of group_call, verification, notification",
        ),
        (
            ("--format", "asterisk", "--map", "service=context"),
            "--map 'service=context': 'context' is not a cdr_csv column",
        ),
        (
            ("--format", "asterisk", "--set", "service=notification", "--source-timezone", "IST"),
            "Invalid value for '--source-timezone': unknown IANA timezone 'IST'",
        ),
        (
            ("--format", "csv", "--set", "service=notification"),
            "--set: only for --format asterisk",
        ),
    ]  # fmt: skip
    if command[0] == "watch":  # it follows no Kamailio files: the zone is Asterisk's alone
        cases.append(
            (
                ("--format", "jsonl", "--source-timezone", "Asia/Kolkata"),
                "--source-timezone: only for --format asterisk",
            )
        )
    for args, message in cases:
        result = cli(*command, str(master), *args)
        assert result.code == 2, (args, result.err)
        assert f"Error: {message}" in result.err, result.err
    assert not list(tmp_path.glob("voicecdr-rejects-*"))
    assert cli("cdrs", "sources", "--json").json() == []  # watch read nothing


def test_a_cdr_csv_file_is_never_read_as_canonical_csv(sqlite_cli: Cli, tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    shutil.copyfile(FIXTURE, master)
    result = sqlite_cli("cdrs", "import", str(master))
    assert result.code == 2
    assert (
        f"Error: {master}: has no header of canonical fields but reads as Asterisk's cdr_csv; "
        "use --format asterisk (see docs/asterisk.md)"
    ) in result.err
