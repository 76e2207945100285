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
    """The :class:`CdrRow` of a tuple of ``ROW_COLUMNS``: the same values in the same
    order, with the service, the connected flag and the cost status as their types."""
    return CdrRow._make(
        (r[0], _SERVICES[r[1]], *r[2:10], bool(r[10]), *r[11:15], _COST_STATUSES[r[15]], *r[16:])
    )
