"""The command line's number types: ASCII digits only, and finite.

click's INT, FLOAT, IntRange and FloatRange read text with int() and float(), which take
the digits of every script (fullwidth, Arabic-Indic), "nan" and "inf". Every numeric
option and argument uses :func:`whole` or :func:`real` instead (a unit test walks the
commands to hold to that). Outside :mod:`voicecdr.cli` so that ``voicecdr export``
(``voicecdr[cli]`` alone) can use them too.
"""

from __future__ import annotations

import math
import re
from typing import Any

import click

_WHOLE = re.compile(r"[+-]?[0-9]+")
_REAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _refuse(value: str, param: click.Parameter | None, ctx: click.Context | None, what: str) -> Any:
    if value.strip().lstrip("+-").lower() in ("nan", "inf", "infinity"):
        raise click.BadParameter(f"{value!r} is not a finite number", ctx, param)
    raise click.BadParameter(f"{value!r} is not {what} written with ASCII digits 0-9", ctx, param)


class _Whole(click.IntRange):
    def __init__(self, min: int | None, max: int | None) -> None:
        super().__init__(min, max)
        if min is None and max is None:
            self.name = "integer"  # the metavar: INTEGER, not INTEGER RANGE

    def _describe_range(self) -> str:  # in --help; "x<=None" when unbounded
        return "" if self.min is None and self.max is None else super()._describe_range()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not _WHOLE.fullmatch(value.strip()):
            _refuse(value, param, ctx, "a whole number")
        return super().convert(value, param, ctx)


class _Real(click.FloatRange):
    def __init__(self, min: float | None, max: float | None) -> None:
        super().__init__(min, max)
        if min is None and max is None:
            self.name = "float"

    def _describe_range(self) -> str:
        return "" if self.min is None and self.max is None else super()._describe_range()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not _REAL.fullmatch(value.strip()):
            _refuse(value, param, ctx, "a number")
        number = super().convert(value, param, ctx)
        if math.isinf(number):  # "1e999" passes the pattern
            self.fail(f"{value!r} is too large", param, ctx)
        return number


def whole(min: int | None = None, max: int | None = None) -> click.IntRange:
    """A whole number from ``min`` to ``max`` (both inclusive, either open)."""
    return _Whole(min, max)


def real(min: float | None = None, max: float | None = None) -> click.FloatRange:
    """A finite number from ``min`` to ``max`` (both inclusive, either open)."""
    return _Real(min, max)
