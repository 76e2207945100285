"""Money as integer nanos (1e-9 currency units) and its exact JSON rendering.

Storage keeps integers so sums are exact on SQLite as on PostgreSQL. On the wire a price is
a JSON number written exactly: ``0.036``, never ``0.036000000000000004``. A float built
from a decimal with at most 15 significant digits prints back as that same decimal (shortest
round-trip repr, which orjson also uses), so converting at the edge is exact for every
amount below 10**6 with nine decimals; amounts under 0.0001, which a float would print
with an exponent, are written out as fixed-point digits.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

import orjson

NANOS = 1_000_000_000
MAX_DECIMALS = 9
MAX_NANOS = 2**63 - 1  # the largest amount stored: a BIGINT (PostgreSQL), an INTEGER (SQLite)
_EXPONENT_BELOW = 100_000  # 0.0001 in nanos: repr() switches to exponents below it


def to_nanos(amount: Decimal) -> int:
    """Exact conversion; raises ValueError when the amount has more than nine decimals."""
    scaled = amount.scaleb(MAX_DECIMALS)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {MAX_DECIMALS} decimal places")
    return int(scaled)


def from_nanos(nanos: int) -> Decimal:
    return Decimal(nanos).scaleb(-MAX_DECIMALS).normalize()


def text(nanos: int) -> str:
    """The exact decimal as text: ``10``, ``0.0000001``, never ``1E+1`` or ``1E-7``."""
    return format(from_nanos(nanos), "f")


@lru_cache(maxsize=65_536)
def json_number(nanos: int) -> int | float | orjson.Fragment:
    """The value to hand orjson so that it prints the exact decimal, never an exponent.
    Cached: a page's prices are mostly the same few values."""
    whole, frac = divmod(nanos, NANOS)
    if frac == 0:
        return whole
    if abs(nanos) < _EXPONENT_BELOW:
        # A float this small prints as 1e-05; write the digits out instead.
        return orjson.Fragment(format(from_nanos(nanos), "f"))
    return float(from_nanos(nanos))
