"""Small builders for canonical CDRs and apps used across test tiers."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from voicecdr import apps
from voicecdr.apps import IssuedCredentials
from voicecdr.cdrfields import FIELDS, RECEIPT_FIELDS, ROW_NAMES
from voicecdr.ingest.canonical import validate
from voicecdr.ingest.timebounds import ANY_TIME
from voicecdr.models import Cdr, CostStatus, ReceiptCall, Service, VoiceGroup
from voicecdr.rating import Charge
from voicecdr.storage import AppStore, Database, Page, PageReader, PageRequest
from voicecdr.timefmt import zone


def make_app(db: Database, appkey: str = "app1", **options: Any) -> IssuedCredentials:
    options.setdefault("rate_limit", 10_000)
    # Test receivers listen on 127.0.0.1.
    options.setdefault("check_callback", apps.CallbackCheck(allow_private=True))
    return apps.create_app(
        AppStore(db),
        name=f"App {appkey}",
        appkey=appkey,
        default_timezone="Asia/Shanghai",
        **options,
    )


def local_iso(wall: str, tz: str = "Asia/Shanghai") -> str:
    """'2019-09-09 09:00:00' wall time in ``tz`` as ISO 8601 with its offset."""
    return datetime.strptime(wall, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone(tz)).isoformat()


def canonical(
    call_id: str,
    *,
    appkey: str = "app1",
    time: str = "2019-09-09 09:00:00",
    service: str = "group_call",
    connected: bool = True,
    second: int = 19,
    tz: str = "Asia/Shanghai",
    **extra: Any,
) -> dict[str, Any]:
    placed = datetime.strptime(time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone(tz))
    record: dict[str, Any] = {
        "call_id": call_id,
        "appkey": appkey,
        "service": service,
        "messageid": "m-1",
        "phone": "810022458",
        "country_code": "91",
        "show_phone": "085944247",
        "time": placed.isoformat(),
        "start_time": None,
        "end_time": None,
        "second": second if connected else 0,
        "connected": connected,
        "hangup_cause": "NORMAL_CLEARING" if connected else "NO_ANSWER",
        "hangup_disposition": "recv_bye" if connected else "recv_cancel",
    }
    if connected:
        start = placed.timestamp() + 1
        record["start_time"] = datetime.fromtimestamp(start, zone(tz)).isoformat()
        record["end_time"] = datetime.fromtimestamp(start + second, zone(tz)).isoformat()
    record.update(extra)
    return record


def cdr(call_id: str, **kwargs: Any) -> Cdr:
    return validate(canonical(call_id, **kwargs), ANY_TIME)


# A stored CDR as tests read it: a row of the query API's read (``ROW_FIELDS``) by the
# declared names (``ROW_NAMES``), with the service, connected flag and cost status as
# their types. (Through ``cast``: mypy takes only field names written out.)
StoredRow = cast(Any, namedtuple)("StoredRow", ROW_NAMES)


def stored_row(r: Sequence[Any]) -> Any:
    """The :data:`StoredRow` of a row tuple (``ROW_FIELDS``)."""
    row = StoredRow._make(r)
    return row._replace(
        service=Service(row.service),
        connected=bool(row.connected),
        cost_status=CostStatus(row.cost_status),
    )


_NAME = {f.column: f.name for f in FIELDS}


def receipt_call(row: Any) -> ReceiptCall:
    """What a receipt body tells of a :data:`StoredRow`'s call (``RECEIPT_FIELDS``)."""
    return cast(ReceiptCall, tuple(getattr(row, _NAME[column]) for column in RECEIPT_FIELDS))


def charged(row: Any) -> Charge | None:
    """What a :data:`StoredRow` is charged (None while pending)."""
    if row.cost_status is CostStatus.PENDING:
        return None
    return Charge(row.cycle, row.size, row.unit_price_nanos, row.basic_price_nanos, row.cost_nanos)


@dataclass(frozen=True, slots=True)
class CdrPage:
    total: int
    rows: list[Any]  # StoredRow


def read_cdrs(
    db: Database,
    app_id: int,
    group: VoiceGroup,
    start: int,
    end: int,
    *,
    messageid: str | None = None,
    offset: int = 0,
    limit: int = 100,
    reader: PageReader | None = None,
) -> CdrPage:
    """A page of the query API's read (``PageReader``) with its rows as ``StoredRow``."""
    reader = reader or PageReader(db)
    page: Page[None] = reader.read(PageRequest(app_id, group, start, end, offset, limit, messageid))
    return CdrPage(page.total, [stored_row(page.rows[stamp[0]]) for stamp in page.stamps])
