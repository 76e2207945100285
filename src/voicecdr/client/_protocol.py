"""The query API's wire protocol, without I/O: request parameters in, pages out.

:class:`SpanReader` holds the paging plan for one span and the exactly-once bookkeeping;
the sync and async clients drive it with their own I/O.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from ._exceptions import SLUGS, ApiError, IncompleteExport, ProtocolError, RateLimited, ServerError
from ._models import Page, Record, VoiceType, record_from_row
from ._timeutil import format_api_time


def query_params(
    appkey: str,
    secretkey: str,
    voice_type: VoiceType,
    start: datetime,
    end: datetime,
    *,
    page: int,
    page_size: int,
    messageid: str | None = None,
    extended: bool = False,
) -> dict[str, str]:
    """The form fields of one query; ``start``/``end`` are naive wall-clock times."""
    params = {
        "appkey": appkey,
        "secretkey": secretkey,
        "voiceType": str(int(voice_type)),
        "start_time": format_api_time(start),
        "end_time": format_api_time(end),
        "page_size": str(page_size),
        "page": str(page),
    }
    if messageid:
        params["messageid"] = messageid
    if extended:
        # Ours answers with cost and hang-up details; NXCloud ignores unknown parameters.
        params["extended"] = "1"
    return params


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds when it is given as a number (the only form we send)."""
    value = response.headers.get("retry-after", "").strip()
    # Not float() alone: it takes "inf" (a wait for ever), "nan" and every script's digits.
    return float(value) if _SECONDS.fullmatch(value) else None


_SECONDS = re.compile(r"[0-9]{1,9}(?:\.[0-9]+)?")


def read_page(response: httpx.Response, body: bytes, voice_type: VoiceType, tz: ZoneInfo) -> Page:
    """Interpret one answer (its status and headers, and ``body``, its content as read by
    the caller): a Page, or the matching exception."""
    status = response.status_code
    if status == 429:
        raise RateLimited("HTTP 429", retry_after=retry_after(response))
    if status >= 500:
        raise ServerError(f"HTTP {status} from the endpoint", "internal")
    try:
        # Prices stay exact: 0.036 becomes Decimal('0.036'), never a float.
        envelope: Any = json.loads(body, parse_float=Decimal)
    except ValueError:
        raise ProtocolError(f"HTTP {status}: the answer is not JSON", status) from None
    if not isinstance(envelope, dict) or "code" not in envelope:
        raise ProtocolError(f"HTTP {status}: the answer is not an NXCloud envelope", status)
    if str(envelope["code"]) != "1":
        raise _api_error(envelope, response)
    info = envelope.get("info")
    if not isinstance(info, dict) or not isinstance(info.get("rows"), list):
        raise ProtocolError("success envelope without info.rows", status)
    try:
        total = int(info["total"])
        page = int(info.get("page", 0))
        page_size = int(info.get("pageSize", 0))
    except (KeyError, TypeError, ValueError):
        raise ProtocolError("success envelope without a numeric total", status) from None
    records = [record_from_row(row, voice_type, tz) for row in info["rows"]]
    return Page(total, page, page_size, records)


def _api_error(body: dict[str, Any], response: httpx.Response) -> ApiError:
    message = str(body.get("info", ""))
    slug = str(body.get("error") or "")
    if not slug and message == "appkey access rate limit":
        slug = "rate_limited"  # an endpoint that sends NXCloud's message without a slug
    cls = SLUGS.get(slug)
    if cls is RateLimited:
        return RateLimited(message, slug, retry_after(response))
    if cls is None:
        return ApiError(message, slug)
    return cls(message, slug)


class IdSet:
    """A set of integer ids (the records of one span seen so far) that stays small when
    the ids are dense.

    A span can hold a million records, and a set of Python ints costs ~60 bytes an id.
    Record ids are usually counters (ours are), so one busy span's ids crowd together:
    every block of ``2**BLOCK_BITS`` consecutive ids found holding more than
    ``SPARSE_MAX`` of them becomes a bitmap (one bit per id of the block, 1 KiB), and only
    the ids outside those blocks stay in a plain set. Which blocks qualify is worked out
    when that set has doubled since the last time (sorting it), so each add costs O(log n)
    amortised, and the memory is never much above a plain set's. Any ints, in any order.
    """

    BLOCK_BITS = 13
    SPARSE_MAX = 16  # 16 ids in a set cost about as much as the block's 1 KiB bitmap
    FIRST_SWEEP = 4096
    _LOW = (1 << BLOCK_BITS) - 1

    def __init__(self) -> None:
        self._bitmaps: dict[int, bytearray] = {}
        self._sparse: set[int] = set()
        self._count = 0
        self._sweep_at = self.FIRST_SWEEP

    def __len__(self) -> int:
        return self._count

    def __contains__(self, value: int) -> bool:
        bitmap = self._bitmaps.get(value >> self.BLOCK_BITS)
        if bitmap is None:
            return value in self._sparse
        low = value & self._LOW
        return bool(bitmap[low >> 3] & (1 << (low & 7)))

    def add(self, value: int) -> bool:
        """Add ``value``; False when it was already in the set."""
        bitmap = self._bitmaps.get(value >> self.BLOCK_BITS)
        if bitmap is not None:
            low = value & self._LOW
            byte, bit = low >> 3, 1 << (low & 7)
            if bitmap[byte] & bit:
                return False
            bitmap[byte] |= bit
        else:
            if value in self._sparse:
                return False
            self._sparse.add(value)
            if len(self._sparse) >= self._sweep_at:
                self._sweep()
        self._count += 1
        return True

    def _sweep(self) -> None:
        """Move every block holding more than SPARSE_MAX sparse ids into a bitmap."""
        ids = sorted(self._sparse)
        first = 0
        while first < len(ids):
            key = ids[first] >> self.BLOCK_BITS
            end = first + 1
            while end < len(ids) and ids[end] >> self.BLOCK_BITS == key:
                end += 1
            if end - first > self.SPARSE_MAX:
                bitmap = self._bitmaps[key] = bytearray((self._LOW + 1) >> 3)
                for value in ids[first:end]:
                    low = value & self._LOW
                    bitmap[low >> 3] |= 1 << (low & 7)
                    self._sparse.remove(value)
            first = end
        self._sweep_at = max(self.FIRST_SWEEP, 2 * len(self._sparse))


class SpanReader:
    """The paging plan for one span, yielding each record once.

    The server orders a span by (time, id) and pages by offset, so a record stored
    *during* the export into the part already read shifts later rows by one: the next
    page repeats a row (dropped here by ``id``) and the new record is never on a page we
    read. The reported ``total`` grows with it, so when a pass over the pages ends with
    fewer distinct ids than the latest total, the span is paged again from the start and
    only unseen ids are yielded, at most ``max_rechecks`` times.
    """

    def __init__(self, page_size: int, max_rechecks: int = 3) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.page_size = page_size
        self.max_rechecks = max_rechecks
        self.seen = IdSet()
        self.total: int | None = None
        self.rechecks = 0
        self._page: int | None = 1

    def next_page(self) -> int | None:
        """The page to request next, or None when the span is complete."""
        return self._page

    def feed(self, page: Page) -> list[Record]:
        """Take the answer for :meth:`next_page`; returns the records not yet seen."""
        requested = self._page
        if requested is None:
            raise RuntimeError("the span is complete")
        self.total = page.total
        fresh = []
        for record in page.records:
            if self.seen.add(record.id):
                fresh.append(record)
        last = len(page.records) < self.page_size or requested * self.page_size >= page.total
        if not last:
            self._page = requested + 1
        elif len(self.seen) >= page.total:
            self._page = None
        elif self.rechecks >= self.max_rechecks:
            raise IncompleteExport(
                f"the span still reports {page.total} records but {len(self.seen)} could be "
                f"read after {self.rechecks} re-checks; records are arriving faster than "
                "they can be paged"
            )
        else:
            self.rechecks += 1
            self._page = 1
        return fresh
