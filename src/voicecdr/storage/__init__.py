"""Storage: the only code that issues SQL. What the rest of the code may use is named here.

A :class:`Database` holds the engines and connections (its docstring is the connection
budget); the repositories take one: :class:`AppStore` (apps), :class:`CdrWriter` (storing
CDRs), :class:`PageReader` (the query API's pages), :class:`ReportReader` (analytics),
:class:`RatingStore` (plans, rating), :class:`Outbox` (receipts),
:class:`SharedRateLimiter`, :class:`SpoolStore` (what ``voicecdr watch`` keeps); and
functions for retention (:func:`prune`), listing (:func:`window_rows`) and the schema
(:func:`upgrade`...).

A name is imported from its module on first use, not with the package: the CLI starts
without loading what only some commands need (the rating and receipt modules bring in
the validators and msgspec).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names' types; see __getattr__ for their values
    from .appstore import AppStore as AppStore
    from .calls import read_call as read_call
    from .consolekeys import console_key as console_key
    from .database import BULK_CACHE_MIB as BULK_CACHE_MIB
    from .database import Database as Database
    from .listing import ROW_COLUMNS as ROW_COLUMNS
    from .listing import window_rows as window_rows
    from .migrate import current_revision as current_revision
    from .migrate import downgrade as downgrade
    from .migrate import head_revision as head_revision
    from .migrate import require_current as require_current
    from .migrate import upgrade as upgrade
    from .outbox import RECEIPT_COLUMNS as RECEIPT_COLUMNS
    from .outbox import DueReceipt as DueReceipt
    from .outbox import NewReceipt as NewReceipt
    from .outbox import Outbox as Outbox
    from .outbox import ReceiptInfo as ReceiptInfo
    from .pages import ROW_FIELDS as ROW_FIELDS
    from .pages import Page as Page
    from .pages import PageReader as PageReader
    from .pages import PageRequest as PageRequest
    from .pages import RowTuple as RowTuple
    from .pages import Stamp as Stamp
    from .partitions import days_of as days_of
    from .ratelimit import Admission as Admission
    from .ratelimit import SharedRateLimiter as SharedRateLimiter
    from .ratelimit import default_state_path as default_state_path
    from .rating import UNRATED_COLUMNS as UNRATED_COLUMNS
    from .rating import PlanInfo as PlanInfo
    from .rating import RatedBatch as RatedBatch
    from .rating import RatedRow as RatedRow
    from .rating import RatingStore as RatingStore
    from .rating import priced_tally as priced_tally
    from .reports import ReportReader as ReportReader
    from .retention import PruneReport as PruneReport
    from .retention import prune as prune
    from .search import CallFilter as CallFilter
    from .search import CallSearch as CallSearch
    from .search import Found as Found
    from .search import Search as Search
    from .spool import Arrivals as Arrivals
    from .spool import FileMark as FileMark
    from .spool import Progress as Progress
    from .spool import Reject as Reject
    from .spool import SourceHour as SourceHour
    from .spool import SpoolStore as SpoolStore
    from .spool import hour_of as hour_of
    from .writes import INSERT_COLUMN_LIST as INSERT_COLUMN_LIST
    from .writes import CdrWriter as CdrWriter
    from .writes import Outcome as Outcome
    from .writes import cdr_tuple as cdr_tuple

# Each public name and the module (of this package) it lives in.
_MODULES = {
    "AppStore": "appstore",
    "read_call": "calls",
    "console_key": "consolekeys",
    "BULK_CACHE_MIB": "database",
    "Database": "database",
    "ROW_COLUMNS": "listing",
    "window_rows": "listing",
    "current_revision": "migrate",
    "downgrade": "migrate",
    "head_revision": "migrate",
    "require_current": "migrate",
    "upgrade": "migrate",
    "RECEIPT_COLUMNS": "outbox",
    "DueReceipt": "outbox",
    "NewReceipt": "outbox",
    "Outbox": "outbox",
    "ReceiptInfo": "outbox",
    "Page": "pages",
    "PageReader": "pages",
    "PageRequest": "pages",
    "ROW_FIELDS": "pages",
    "RowTuple": "pages",
    "Stamp": "pages",
    "days_of": "partitions",
    "Admission": "ratelimit",
    "SharedRateLimiter": "ratelimit",
    "default_state_path": "ratelimit",
    "UNRATED_COLUMNS": "rating",
    "PlanInfo": "rating",
    "RatedBatch": "rating",
    "RatedRow": "rating",
    "RatingStore": "rating",
    "priced_tally": "rating",
    "ReportReader": "reports",
    "PruneReport": "retention",
    "prune": "retention",
    "CallFilter": "search",
    "CallSearch": "search",
    "Found": "search",
    "Search": "search",
    "Arrivals": "spool",
    "FileMark": "spool",
    "Progress": "spool",
    "Reject": "spool",
    "SourceHour": "spool",
    "SpoolStore": "spool",
    "hour_of": "spool",
    "INSERT_COLUMN_LIST": "writes",
    "CdrWriter": "writes",
    "Outcome": "writes",
    "cdr_tuple": "writes",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str) -> object:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # found at once next time
    return value
