"""Rendering stored CDRs as NXCloud rows: exact field sets, JSON types and times."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from ..client import _models as client_models
from ..models import RESULT_TEXT, CdrRow, Language, VoiceGroup
from ..money import json_number
from ..timefmt import format_epoch

# The wire contract is written once, in the client SDK (which may not import the server);
# the server renders exactly the fields its own client reads.
GROUP_CALL_FIELDS = client_models.GROUP_CALL_FIELDS
VERIFICATION_FIELDS = client_models.VOICE_FIELDS
EXTENDED_FIELDS = client_models.EXTENDED_FIELDS


class RowRenderer:
    """Turns CdrRows into NXCloud row dicts for one app and voice type."""

    def __init__(
        self, group: VoiceGroup, tz: ZoneInfo, language: Language, *, extended: bool
    ) -> None:
        self._group = group
        self._tz = tz
        self._results = RESULT_TEXT[language]
        self._extended = extended

    def render(self, row: CdrRow) -> dict[str, Any]:
        tz = self._tz
        # A call never answered has no start (and may have no end): an empty string keeps
        # the field a string for strict clients.
        start, end = row.start_time, row.end_time
        out: dict[str, Any] = {
            "id": row.id,
            "result": self._results[row.connected],
            "cycle": row.cycle,
            "time": format_epoch(row.time, tz),
            "start_time": "" if start is None else format_epoch(start, tz),
            "end_time": "" if end is None else format_epoch(end, tz),
            "phone": row.phone,
        }
        if self._group is VoiceGroup.GROUP_CALL:
            out["basic_price"] = json_number(row.basic_price_nanos)
            out["second"] = row.second
        else:
            out["second"] = row.second
            out["voice_type"] = int(row.service)
        out["countryCode"] = row.country_code
        out["messageid"] = row.messageid
        out["customer_price"] = json_number(row.unit_price_nanos)
        out["show_phone"] = row.show_phone
        out["size"] = row.size
        if self._group is VoiceGroup.GROUP_CALL:
            out["ivr_result"] = row.ivr_result
        if self._extended:
            out["cost"] = json_number(row.cost_nanos)
            out["cost_status"] = row.cost_status.wire_name
            out["hangup_cause"] = row.hangup_cause
            out["hangup_disposition"] = row.hangup_disposition
            if row.record_url:
                out["record_url"] = row.record_url
        return out
