"""Money as integer nanos (1e-9 currency units) and its exact JSON rendering.

Storage keeps integers so sums are exact on SQLite as on PostgreSQL. On the wire a price is
a JSON number written exactly: ``0.036``, never ``0.036000000000000004``. A float built
from a decimal with at most 15 significant digits prints back as that same decimal (shortest
round-trip repr, which orjson also uses), so converting at the edge is exact for every
amount below 10**6 with nine decimals.
"""

from __future__ import annotations

from decimal import Decimal

NANOS = 1_000_000_000
MAX_DECIMALS = 9


def to_nanos(amount: Decimal) -> int:
    """Exact conversion; raises ValueError when the amount has more than nine decimals."""
    scaled = amount.scaleb(MAX_DECIMALS)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {MAX_DECIMALS} decimal places")
    return int(scaled)


def from_nanos(nanos: int) -> Decimal:
    return Decimal(nanos).scaleb(-MAX_DECIMALS).normalize()


def json_number(nanos: int) -> int | float:
    """The value to hand the JSON encoder so that it prints the exact decimal."""
    whole, frac = divmod(nanos, NANOS)
    if frac == 0:
        return whole
    return float(from_nanos(nanos))
