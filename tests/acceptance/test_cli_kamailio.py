"""``voicecdr cdrs import --format kamailio-acc|kamailio-cdrs`` as an operator runs it, on
exports written as docs/kamailio.md makes them.

The files below are what ``psql \\copy (...) TO ... CSV HEADER`` and ``mysql --batch``
print for Kamailio's tables (columns from utils/kamctl/*/acc-create.sql: acc and
missed_calls have method, from_tag, to_tag, callid, sip_code, sip_reason, time; acc_cdrs
start_time, end_time, duration), with the db_extra / cdr_extra columns of docs/kamailio.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.conftest import Cli

EXTRAS = "src_user,dst_user,country_code,voicecdr_appkey,voicecdr_service,voicecdr_messageid"
ACC_HEADER = f"method,from_tag,to_tag,callid,sip_code,sip_reason,time,{EXTRAS}\n"


def line(method: str, tags: str, callid: str, reply: str, time: str, n: int = 0) -> str:
    """One acc / missed_calls row; ``n``: the call's number (its extras), 0: none (BYE)."""
    extras = f"085944247,81002245{n},91,app1,notification,m-{n}" if n else ",,,,,"
    return f"{method},{tags},{callid},{reply},{time},{extras}\n"


# Kamailio's host runs on India time: its DATETIME columns are IST wall times.
DAY = "2026-12-01"
DAY_ONE = ACC_HEADER + "".join(
    [
        line("INVITE", "as8f,b7c1", "a1@10.0.0.5", "200,OK", f"{DAY} 09:00:05", 1),
        line("INVITE", "kq2e,", "b2@10.0.0.5", "486,Busy Here", f"{DAY} 09:00:07", 2),
        line("INVITE", "b7c1,as8f", "a1@10.0.0.5", "200,OK", f"{DAY} 09:00:30"),  # re-INVITE
        line("BYE", "b7c1,as8f", "a1@10.0.0.5", "200,OK", f"{DAY} 09:01:05"),
        line("INVITE", "zz91,", "c3@10.0.0.5", "487,Request Terminated", f"{DAY} 09:02:00", 3),
        line("INVITE", "r4t5,y6u7", '"d4@10.0.0.5"', "200,OK", f"{DAY} 23:59:30", 4),
        line("INVITE", "e5,", "e5@10.0.0.5", "486,Busy Here", f"{DAY} 24:00:00", 5),
    ]
)
DAY_TWO = ACC_HEADER + line("BYE", "r4t5,y6u7", "d4@10.0.0.5", "200,OK", "2026-12-02 00:00:50")


def test_acc_rows_become_calls_and_a_call_across_two_exports_waits_for_both(
    cli: Cli, tmp_path: Path
) -> None:
    cli.store_app("app1")
    (tmp_path / "acc-2026-12-01.csv").write_text(DAY_ONE)
    (tmp_path / "acc-2026-12-02.csv").write_text(DAY_TWO)
    args = ("cdrs", "import", "--format", "kamailio-acc", "--source-timezone", "Asia/Kolkata")

    first = cli(*args, "--rejects", "r1.jsonl", "acc-2026-12-01.csv")
    assert first.code == 1, first.err
    summary = first.json()
    assert (summary["accepted"], summary["duplicates"], summary["rejected_total"]) == (3, 0, 2)
    assert [(r["file"], r["line"], r["errors"]) for r in summary["rejected"]] == [
        ("acc-2026-12-01.csv", 8, ["time: '2026-12-01 24:00:00' is not a date and time"]),
        (
            "acc-2026-12-01.csv",
            7,
            [
                "callid: incomplete call 'd4@10.0.0.5': no BYE; import this file together "
                "with the one holding its BYE"
            ],
        ),
    ]
    assert len((tmp_path / "r1.jsonl").read_text().splitlines()) == 2

    both = cli(*args, "--rejects", "r2.jsonl", "acc-2026-12-01.csv", "acc-2026-12-02.csv")
    summary = both.json()
    assert (summary["accepted"], summary["duplicates"], summary["rejected_total"]) == (1, 3, 1)

    listed = cli("cdrs", "list", "app1", "--from", "2026-12-01 00:00:00", "--to",
                 "2026-12-03 00:00:00", "--extended", "--json")  # fmt: skip
    rows = [json.loads(line) for line in listed.out.splitlines()]
    # The app's zone is Asia/Shanghai: IST + 2:30.
    assert [
        (r["messageid"], r["time"], r["end_time"], r["second"], r["hangup_cause"],
         r["hangup_disposition"])
        for r in rows
    ] == [
        ("m-1", "2026-12-01 11:30:05", "2026-12-01 11:31:05", 60, "NORMAL_CLEARING", "callee_bye"),
        ("m-2", "2026-12-01 11:30:07", "2026-12-01 11:30:07", 0, "USER_BUSY", "486 Busy Here"),
        ("m-3", "2026-12-01 11:32:00", "2026-12-01 11:32:00", 0, "ORIGINATOR_CANCEL",
         "487 Request Terminated"),
        ("m-4", "2026-12-02 02:29:30", "2026-12-02 02:30:50", 80, "NORMAL_CLEARING", "caller_bye"),
    ]  # fmt: skip


def test_acc_cdrs_from_mysql_batch_and_a_wrong_zone(cli: Cli, tmp_path: Path) -> None:
    cli.store_app("app1")
    header = "id\tstart_time\tend_time\tduration\tcallid\tsip_code\tsip_reason\t"
    rows = [
        "1\t2026-12-01 09:00:05\t2026-12-01 09:01:17\t71.802\ta1@10.0.0.5\tNULL\tNULL\t",
        "2\t2026-12-01 09:03:00\t2026-12-01 09:03:00\t0.000\tb2@10.0.0.5\t603\tDecline\t",
    ]
    extras = ["085944247\t810022458\t91\tapp1\tgroup_call\tm-1",
              "085944247\t810022459\t91\tapp1\tgroup_call\tm-2"]  # fmt: skip
    text = header + EXTRAS.replace(",", "\t") + "\n"
    text += "".join(row + extra + "\n" for row, extra in zip(rows, extras, strict=True))
    (tmp_path / "acc_cdrs.tsv").write_text(text)

    wrong = cli("cdrs", "import", "--format", "kamailio-cdrs", "--source-timezone", "Mars/Base",
                "acc_cdrs.tsv")  # fmt: skip
    assert wrong.code == 2
    assert "unknown IANA timezone 'Mars/Base'" in wrong.err

    done = cli("cdrs", "import", "--format", "kamailio-cdrs", "acc_cdrs.tsv")
    assert done.code == 0, done.err
    assert (done.json()["accepted"], done.json()["rejects_file"]) == (2, None)
    again = cli("cdrs", "import", "--format", "kamailio-cdrs", "acc_cdrs.tsv")
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 2)
    listed = cli("cdrs", "list", "app1", "--from", "2026-12-01 00:00:00", "--to",
                 "2026-12-02 00:00:00", "--extended", "--json")  # fmt: skip
    rows_out = [json.loads(line) for line in listed.out.splitlines()]
    assert [(r["time"], r["second"], r["hangup_cause"]) for r in rows_out] == [
        ("2026-12-01 17:00:05", 72, "NORMAL_CLEARING"),  # UTC by default; 71.802 s bills 72
        ("2026-12-01 17:03:00", 0, "CALL_REJECTED"),
    ]
