"""A stored CDR's row as a :class:`CdrRow`: the columns to select, in ``ROW_FIELDS``
order, and the mapping of the driver's tuple."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..models import CdrRow, CostStatus, Service
from . import schema
from .pages import ROW_FIELDS

ROW_COLUMNS = [schema.cdrs.c[name] for name in ROW_FIELDS]

# Enum members by value: a dict lookup per row instead of an Enum call per row.
_SERVICES = {int(s): s for s in Service}
_COST_STATUSES = {int(s): s for s in CostStatus}


def cdr_row(r: Sequence[Any]) -> CdrRow:
    """The :class:`CdrRow` of a tuple of ``ROW_COLUMNS``."""
    return CdrRow(
        r[0],
        _SERVICES[r[1]],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
        r[8],
        r[9],
        bool(r[10]),
        r[11],
        r[12],
        r[13],
        r[14],
        _COST_STATUSES[r[15]],
        r[16],
        r[17],
        r[18],
        r[19],
        r[20],
    )
