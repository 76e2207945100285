"""Kamailio acc exports as an operator makes them, for the tests.

The columns are those of Kamailio's schema (utils/kamctl/postgres/acc-create.sql and
mysql/acc-create.sql: acc and missed_calls have id, method, from_tag, to_tag, callid,
sip_code, sip_reason, time; acc_cdrs has id, start_time, end_time, duration) plus the
db_extra / cdr_extra columns docs/kamailio.md names. CSV is written as ``psql \\copy ...
CSV HEADER`` writes it (quotes only where needed), tab-separated as ``mysql --batch``
does (backslash escapes, NULL as ``NULL``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ACC_TABLE = ("id", "method", "from_tag", "to_tag", "callid", "sip_code", "sip_reason", "time")
CDRS_TABLE = ("id", "start_time", "end_time", "duration")
EXTRA = (
    "src_user",
    "dst_user",
    "country_code",
    "voicecdr_appkey",
    "voicecdr_service",
    "voicecdr_messageid",
)


def wall(epoch: int, tz: str) -> str:
    """A DATETIME cell: the wall time of ``epoch`` in ``tz``, as psql and mysql print it."""
    return datetime.fromtimestamp(epoch, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def extras(messageid: str, appkey: str = "app1", phone: str = "810022458") -> dict[str, str]:
    return {
        "src_user": "085944247",
        "dst_user": phone,
        "country_code": "91",
        "voicecdr_appkey": appkey,
        "voicecdr_service": "notification",
        "voicecdr_messageid": messageid,
    }


def acc_row(
    method: str,
    callid: str,
    code: int,
    reason: str,
    time: str,
    from_tag: str = "ft",
    to_tag: str = "tt",
    **extra: str,
) -> dict[str, str]:
    return {
        "method": method,
        "from_tag": from_tag,
        "to_tag": to_tag,
        "callid": callid,
        "sip_code": str(code),
        "sip_reason": reason,
        "time": time,
        **extra,
    }


def export(
    path: Path, header: Sequence[str], rows: Sequence[Mapping[str, str]], *, tsv: bool = False
) -> Path:
    """Write ``rows`` (missing cells empty, ``id`` numbered) under ``header``."""
    numbered = [{**row, "id": row.get("id", str(n))} for n, row in enumerate(rows, 1)]
    if tsv:
        lines = ["\t".join(header)]
        lines += ["\t".join(_tsv_cell(row.get(c, "")) for c in header) for row in numbered]
        path.write_text("\n".join(lines) + "\n")
        return path
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([row.get(c, "") for c in header] for row in numbered)
    path.write_text(out.getvalue())
    return path


def _tsv_cell(value: str) -> str:
    if value == "":
        return "NULL"
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
