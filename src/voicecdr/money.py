"""Money as integer nanos (1e-9 currency units) and its exact rendering.

Storage keeps integers so sums are exact on SQLite as on PostgreSQL. On the wire a price is
a JSON number written exactly, with no exponent and no trailing zeros: ``0.036``, never
``0.036000000000000004``, and ``8999999999.999991`` with all its digits. The digits come
from integer arithmetic, never a float: a float holds only about 16 significant digits,
and an amount of nanos has up to 19.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

import orjson

NANOS = 1_000_000_000
MAX_DECIMALS = 9
MAX_NANOS = 2**63 - 1  # the largest amount stored: a BIGINT (PostgreSQL), an INTEGER (SQLite)


# ASCII digits only: Decimal() also takes fullwidth and Arabic-Indic digits, "1_000", "nan".
_PLAIN = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_EXPONENT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][+-]?[0-9]+")


def parse(text: str) -> Decimal:
    """An amount written as a plain decimal with ASCII digits (``0.05``, ``12``, ``-1``).
    Anything else raises ValueError whose message completes "<name> must be …"."""
    if _PLAIN.fullmatch(text):
        return Decimal(text)
    if _EXPONENT.fullmatch(text):
        # Most likely a spreadsheet's scientific notation rather than a price meant so.
        raise ValueError(
            f"written out without an exponent, not {text!r} (check the spreadsheet's number format)"
        )
    if any(c.isdigit() and not c.isascii() for c in text):
        raise ValueError(f"written with ASCII digits 0-9, not {text!r}")
    raise ValueError(f"a decimal number, not {text!r}")


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
    whole, frac = divmod(abs(nanos), NANOS)
    sign = "-" if nanos < 0 else ""
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:09d}".rstrip("0")


@lru_cache(maxsize=65_536)
def json_number(nanos: int) -> int | orjson.Fragment:
    """The value to hand orjson so that it prints :func:`text` as a JSON number (whole
    amounts as ints). Cached: a page's prices are mostly the same few values."""
    if nanos % NANOS == 0:
        return nanos // NANOS
    return orjson.Fragment(text(nanos).encode())
