"""Pure rating: a CDR and a rate plan in, a charge (or the reason there is none) out.

Rules (SPEC section 5):

- A rate matches when its ``prefix`` starts ``country_code + phone``; the longest prefix
  wins, and an empty prefix matches everything.
- Rates for the CDR's own service are consulted first; only when none of them matches do
  the ``*`` rates apply. A ``verification`` row with an empty prefix therefore prices every
  verification call that no longer verification prefix claims, before any ``*`` row.
- A connected call is billed ``size = ceil(second / cycle)`` cycles at ``unit_price``; a
  call that did not connect is billed ``basic_price``. Money is integer nanos throughout.
- A cost above :data:`~voicecdr.money.MAX_NANOS` cannot be stored: a plan whose unit price
  could reach it is refused, and a CDR that would still cost more stays pending.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from . import money
from .cdrfields import MAX_SECOND
from .models import Service, UnratedCdr
from .money import MAX_NANOS, to_nanos

MAX_CYCLE = 3600
MAX_PRICE = Decimal(1_000_000)
MAX_PREFIX = 20
CSV_COLUMNS = ("service", "prefix", "cycle", "unit_price", "basic_price")
_PREFIX_RE = re.compile(r"[0-9]{0,20}")


@dataclass(frozen=True, slots=True)
class Rate:
    """One row of a rate plan. ``service`` None is the ``*`` wildcard."""

    service: Service | None
    prefix: str
    cycle: int
    unit_price_nanos: int
    basic_price_nanos: int


@dataclass(frozen=True, slots=True)
class Charge:
    cycle: int
    size: int
    unit_price_nanos: int
    basic_price_nanos: int
    cost_nanos: int


_UNKNOWN = Rate(None, "", 1, 0, 0)  # in RatePlan._found: not looked up yet
_FOUND_LIMIT = 65_536


class RatePlan:
    """An app's rates, indexed for longest-prefix lookups."""

    def __init__(self, plan_id: int, version: int, rates: Iterable[Rate]) -> None:
        self.id = plan_id
        self.version = version
        self.rates = list(rates)
        # Keyed by the Service, which as an IntEnum also answers to its stored integer.
        self._by_service: dict[int | None, dict[str, Rate]] = {}
        for rate in self.rates:
            self._by_service.setdefault(rate.service, {})[rate.prefix] = rate
        self._longest = max((len(r.prefix) for r in self.rates), default=0)
        # The answer depends only on the number's first ``_longest`` digits, which repeat
        # (country and area codes) where whole numbers seldom do.
        self._found: dict[tuple[int, str], Rate | None] = {}

    def find(self, service: int, number: str) -> Rate | None:
        """The rate for a ``service`` (a :class:`Service`) call to ``number`` (country code
        + phone), or None."""
        if len(number) < self._longest:
            return self._search(service, number)
        key = (service, number[: self._longest])
        found = self._found.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            if len(self._found) >= _FOUND_LIMIT:
                self._found.clear()
            found = self._found[key] = self._search(service, number)
        return found

    def _search(self, service: int, number: str) -> Rate | None:
        for key in (service, None):
            table = self._by_service.get(key)
            if not table:
                continue
            for length in range(min(len(number), self._longest), -1, -1):
                rate = table.get(number[:length])
                if rate is not None:
                    return rate
        return None


def charge(rate: Rate, *, connected: bool, second: int) -> Charge:
    size, cost = size_and_cost(rate, connected=connected, second=second)
    return Charge(rate.cycle, size, rate.unit_price_nanos, rate.basic_price_nanos, cost)


def size_and_cost(rate: Rate, *, connected: int, second: int) -> tuple[int, int]:
    """Cycles billed and what they cost: :func:`charge` without building the Charge, for
    the rater's loop."""
    if connected:
        size = -(-second // rate.cycle)
        return size, size * rate.unit_price_nanos
    return 0, rate.basic_price_nanos


@dataclass(frozen=True, slots=True)
class Priced:
    cdr_id: int
    charge: Charge
    plan_id: int
    prefix: str  # of the rate that priced it


@dataclass(frozen=True, slots=True)
class Unpriced:
    cdr_id: int
    reason: str


Decision = Priced | Unpriced


def decide(plan: RatePlan | None, cdr: UnratedCdr) -> Decision:
    """Price one stored CDR under ``plan``; without a plan or a matching rate, or at a
    cost too large to store, it stays pending with a reason an operator can act on. The
    rater's ``price_batch`` is this, inlined for its loop."""
    cdr_id, _app_id, _placed, service, phone, country_code, second, connected, *_ = cdr
    if plan is None:
        return Unpriced(cdr_id, NO_PLAN)
    number = country_code + phone
    rate = plan.find(service, number)
    if rate is None:
        return Unpriced(cdr_id, no_rate(plan, service, number))
    priced = charge(rate, connected=bool(connected), second=second)
    if priced.cost_nanos > MAX_NANOS:
        return Unpriced(cdr_id, too_costly(plan, rate, service, second, priced.cost_nanos))
    return Priced(cdr_id, priced, plan.id, rate.prefix)


NO_PLAN = "the app has no rate plan: import one with `voicecdr rates import`"


def no_rate(plan: RatePlan, service: int, number: str) -> str:
    """Why a call found no rate in ``plan``, for the operator."""
    return (
        f"no rate for {Service(service).wire_name} calls to {number} in plan version {plan.version}"
    )


def too_costly(plan: RatePlan, rate: Rate, service: int, second: int, cost: int) -> str:
    """Why a call whose cost is above :data:`~voicecdr.money.MAX_NANOS` stays pending."""
    return (
        f"cost {money.text(cost)} of a {second} s {Service(service).wire_name} call at "
        f"{money.text(rate.unit_price_nanos)} per {rate.cycle} s (plan version {plan.version}) "
        f"is more than the largest storable cost {money.text(MAX_NANOS)}: import a plan with "
        "a lower unit_price"
    )


def max_unit_price_nanos(cycle: int) -> int:
    """The highest unit price at which the longest call ingest accepts (``MAX_SECOND``)
    still costs a storable amount with this ``cycle``."""
    return MAX_NANOS // -(-MAX_SECOND // cycle)


class PlanErrors(ValueError):
    """Every problem of a rate plan file, each with its line number."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


def parse_plan_csv(text: str) -> list[Rate]:
    """Parse and validate a whole rate plan; raises PlanErrors listing every bad line."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise PlanErrors(
            ["line 1: the file is empty; expected the header " + ",".join(CSV_COLUMNS)]
        )
    names = [h.strip().lower() for h in header]
    if names and names[0].startswith("\ufeff"):
        names[0] = names[0][1:]
    if names != list(CSV_COLUMNS):
        raise PlanErrors(
            [f"line 1: header must be {','.join(CSV_COLUMNS)}, not {','.join(header)}"]
        )
    rates: list[Rate] = []
    errors: list[str] = []
    seen: dict[tuple[Service | None, str], int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        try:
            rate = _rate(row)
        except ValueError as exc:
            errors.append(f"line {line}: {exc}")
            continue
        key = (rate.service, rate.prefix)
        if key in seen:
            service = "*" if rate.service is None else rate.service.wire_name
            errors.append(
                f"line {line}: {service} prefix {rate.prefix!r} is already priced on line "
                f"{seen[key]}"
            )
            continue
        seen[key] = line
        rates.append(rate)
    if errors:
        raise PlanErrors(errors)
    if not rates:
        raise PlanErrors(["the plan has no rates"])
    return rates


def _rate(row: list[str]) -> Rate:
    if len(row) != len(CSV_COLUMNS):
        raise ValueError(f"expected {len(CSV_COLUMNS)} columns, found {len(row)}")
    service_text, prefix, cycle_text, unit_text, basic_text = (c.strip() for c in row)
    if service_text == "*":
        service = None
    elif service_text.upper() in Service.__members__:
        service = Service.from_wire(service_text)
    else:
        raise ValueError(
            f"service must be group_call, verification, notification or *, not {service_text!r}"
        )
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"prefix must be at most {MAX_PREFIX} digits, not {prefix!r}")
    digits = cycle_text.isascii() and cycle_text.isdigit()  # isdigit() alone takes "²"
    if not digits or not 1 <= int(cycle_text) <= MAX_CYCLE:
        raise ValueError(f"cycle must be whole seconds from 1 to {MAX_CYCLE}, not {cycle_text!r}")
    cycle = int(cycle_text)
    unit = _price("unit_price", unit_text)
    if unit > max_unit_price_nanos(cycle):
        raise ValueError(
            f"unit_price {unit_text} with cycle {cycle} makes a {MAX_SECOND} s call cost more "
            f"than the largest storable cost {money.text(MAX_NANOS)}; with this cycle it can "
            f"be at most {money.text(max_unit_price_nanos(cycle))}"
        )
    return Rate(service, prefix, cycle, unit, _price("basic_price", basic_text))


def _price(name: str, text: str) -> int:
    try:
        value = money.parse(text)
    except ValueError as exc:
        raise ValueError(f"{name} must be {exc}") from None
    if value < 0 or value >= MAX_PRICE:
        raise ValueError(f"{name} must be from 0 to less than {MAX_PRICE}, not {text!r}")
    try:
        return to_nanos(value)
    except ValueError:
        raise ValueError(f"{name} must have at most 9 decimal places, not {text!r}") from None
