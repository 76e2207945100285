"""Rendering stored CDRs as NXCloud rows: exact field sets, JSON types and times."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from .client import _models as client_models
from .models import RESULT_TEXT, CostStatus, Language, VoiceGroup
from .money import json_number
from .storage import Stamp
from .timefmt import EpochFormatter

# The wire contract is written once, in the client SDK (which may not import the server);
# the server renders exactly the fields its own client reads.
GROUP_CALL_FIELDS = client_models.GROUP_CALL_FIELDS
VERIFICATION_FIELDS = client_models.VOICE_FIELDS
EXTENDED_FIELDS = client_models.EXTENDED_FIELDS


class RowRenderer:
    """Turns stored rows into NXCloud row dicts for one app and voice type.

    It reads the PageReader's row tuples (``storage.pages.RowTuple``, in ``ROW_FIELDS`` order)
    rather than objects: the query API renders up to 1,000 rows per
    request, and unpacking a tuple into locals is the cheapest way there is to read them.
    Each column renders as the field ``cdrfields.RENDERED`` names
    (``tests/unit/test_cdrfields.py`` holds the unpacking to both).
    """

    def __init__(
        self, group: VoiceGroup, tz: ZoneInfo, language: Language, *, extended: bool
    ) -> None:
        self.group = group
        self._tz = tz
        self._results = RESULT_TEXT[language]
        self._extended = extended
        # Everything besides the row that decides what a row renders to.
        self.key = (group, tz.key, language, extended)

    def fragments(self, rows: Iterable[Sequence[Any]]) -> list[orjson.Fragment]:
        """:meth:`render_all`, each row already JSON: what :class:`RowCache` keeps.

        Copied to bytes of their own: orjson hands back its whole output buffer (8 KB
        for a 360-byte row, measured with tracemalloc), which a kept row would hold."""
        return [
            orjson.Fragment(bytes(memoryview(orjson.dumps(row)))) for row in self.render_all(rows)
        ]

    def render_all(self, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
        fmt, results, extended = EpochFormatter(self._tz), self._results, self._extended
        group_call = self.group is VoiceGroup.GROUP_CALL
        out = []
        for (
            id_,
            service,
            messageid,
            phone,
            country_code,
            show_phone,
            placed,
            answered,
            ended,
            second,
            connected,
            cause,
            disposition,
            ivr,
            record_url,
            cost_status,
            cycle,
            size,
            unit_nanos,
            basic_nanos,
            cost_nanos,
        ) in rows:
            # A call never answered has no start (and may have no end): an empty string
            # keeps the field a string for strict clients.
            row: dict[str, Any] = {
                "id": id_,
                "result": results[connected],
                "cycle": cycle,
                "time": fmt(placed),
                "start_time": "" if answered is None else fmt(answered),
                "end_time": "" if ended is None else fmt(ended),
                "phone": phone,
            }
            if group_call:
                row["basic_price"] = json_number(basic_nanos)
                row["second"] = second
            else:
                row["second"] = second
                row["voice_type"] = service
            row["countryCode"] = country_code
            row["messageid"] = messageid
            row["customer_price"] = json_number(unit_nanos)
            row["show_phone"] = show_phone
            row["size"] = size
            if group_call:
                row["ivr_result"] = ivr
            if extended:
                row["cost"] = json_number(cost_nanos)
                row["cost_status"] = _COST_STATUS_NAMES[cost_status]
                row["hangup_cause"] = cause
                row["hangup_disposition"] = disposition
                if record_url:
                    row["record_url"] = record_url
            out.append(row)
        return out


_COST_STATUS_NAMES = {int(status): status.wire_name for status in CostStatus}


_COLD_KEYS = 4096  # renderer keys whose last page is remembered; forgotten all at once
_PROBE = 4  # of a cold key's pages, one in this many is kept (see RowCache.plan)


class RowCache:
    """Rendered rows (JSON fragments) by renderer key and row stamp; at most ``size``.

    A stamp (``storage.pages.STAMP_FIELDS``) changes whenever anything the row renders
    from changes, and the renderer key covers the rest (voice type, timezone, language,
    ``extended``), so a fragment found here is byte for byte what rendering the row
    again would give. Two generations bound the size: entries go into the young one;
    when it is full it becomes the old one (the previous old one is dropped), and an old
    entry that is used again moves back to the young one. Thread-safe in the sense that
    matters: every dict operation is atomic, and a lost entry is only rendered again.
    """

    def __init__(self, size: int) -> None:
        self._generation = max(size // 2, 1)
        # renderer key -> stamp -> fragment: a page's lookups are one C-level map.
        self._young: dict[Hashable, dict[Stamp, orjson.Fragment]] = {}
        self._old: dict[Hashable, dict[Stamp, orjson.Fragment]] = {}
        self._young_size = 0
        # By client key (the caller's: an app and a renderer key): how many pages in a row
        # were mostly rows not kept (0: not the last).
        self._cold: dict[Hashable, int] = {}

    def plan(self, key: Hashable) -> tuple[bool, bool]:
        """``(whole, keep)`` for the next page under ``key``: whether to read it whole at
        once rather than stamps first, and whether to keep the rows rendered for it.

        A key whose last page was mostly rows not kept belongs to a client sweeping
        through rows it has not asked for before (an export): stamps first would read
        those rows twice, and keeping them would cost a JSON dump per row for nothing.
        Every ``_PROBE``-th such page is kept all the same, so a key whose client comes
        back to the same rows (polling) turns warm again."""
        streak = self._cold.get(key, 0)
        return streak > 0, streak % _PROBE == 0

    def note(self, key: Hashable, *, misses: int, rows: int) -> None:
        """Record how a page under ``key`` fared, for :meth:`plan`."""
        if not rows:
            return
        if 2 * misses > rows:
            if len(self._cold) >= _COLD_KEYS:
                self._cold.clear()
            self._cold[key] = self._cold.get(key, 0) + 1
        else:
            self._cold.pop(key, None)

    def get_all(self, key: Hashable, stamps: Sequence[Stamp]) -> list[orjson.Fragment | None]:
        """The fragment kept for each stamp, None where there is none."""
        young = self._young.get(key)
        found: list[orjson.Fragment | None] = (
            list(map(young.get, stamps)) if young is not None else [None] * len(stamps)
        )
        old = self._old.get(key)
        if old is not None and None in found:
            for i, fragment in enumerate(found):
                if fragment is None:
                    fragment = found[i] = old.get(stamps[i])
                    if fragment is not None:
                        self.put(key, stamps[i], fragment)
        return found

    def put(self, key: Hashable, stamp: Stamp, fragment: orjson.Fragment) -> None:
        self._young.setdefault(key, {})[stamp] = fragment
        self._young_size += 1
        if self._young_size >= self._generation:
            self._old, self._young, self._young_size = self._young, {}, 0

    def __len__(self) -> int:
        return sum(map(len, self._young.values())) + sum(map(len, self._old.values()))
