from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecdr import money
from voicecdr.ingest.canonical import MAX_SECOND
from voicecdr.models import Service, UnratedCdr
from voicecdr.money import MAX_NANOS, to_nanos
from voicecdr.rating import (
    MAX_CYCLE,
    MAX_PRICE,
    Charge,
    PlanErrors,
    Priced,
    Rate,
    RatePlan,
    Unpriced,
    charge,
    decide,
    max_unit_price_nanos,
    parse_plan_csv,
    size_and_cost,
)

PLAN = """service,prefix,cycle,unit_price,basic_price
group_call,,20,0.05,0.005
group_call,91,20,0.012,0.001
group_call,9198,20,0.010,0.001
verification,,1,0.012,0
*,55,30,0.03,0.003
*,,60,0.1,0.01
"""


def plan(text: str = PLAN) -> RatePlan:
    return RatePlan(7, 3, parse_plan_csv(text))


def row(
    service: Service = Service.GROUP_CALL,
    cc: str = "91",
    phone: str = "9876543210",
    *,
    connected: bool = True,
    second: int = 19,
) -> UnratedCdr:
    """A pending CDR as pricing reads it (id 1 of app 1, placed at 0)."""
    return (1, 1, 0, service, phone, cc, second, connected)


@pytest.mark.parametrize(
    ("service", "number", "prefix", "kind"),
    [
        (Service.GROUP_CALL, "919876543210", "9198", Service.GROUP_CALL),  # longest wins
        (Service.GROUP_CALL, "919112345678", "91", Service.GROUP_CALL),
        (Service.GROUP_CALL, "441234567890", "", Service.GROUP_CALL),  # empty matches all
        (Service.GROUP_CALL, "5511987654321", "", Service.GROUP_CALL),  # own service before *
        (Service.VERIFICATION, "5511987654321", "", Service.VERIFICATION),
        (Service.NOTIFICATION, "5511987654321", "55", None),  # no own rates: * applies
        (Service.NOTIFICATION, "441234567890", "", None),
    ],
)
def test_lookup_rules(service: Service, number: str, prefix: str, kind: Service | None) -> None:
    rate = plan().find(service, number)
    assert rate is not None
    assert (rate.prefix, rate.service) == (prefix, kind)


def longest_match(rates: list[Rate], service: Service, number: str) -> Rate | None:
    """The lookup rules spelled out: the service's longest prefix, else the wildcard's."""
    for kind in (service, None):
        matching = [r for r in rates if r.service == kind and number.startswith(r.prefix)]
        if matching:
            return max(matching, key=lambda r: len(r.prefix))
    return None


NOTIFICATION_ONLY = "service,prefix,cycle,unit_price,basic_price\nnotification,4,6,0.02,0\n"


@given(
    st.sampled_from([PLAN, NOTIFICATION_ONLY]),
    st.lists(st.tuples(st.sampled_from(list(Service)), st.text("915", max_size=6)), max_size=30),
)
def test_remembered_lookups_answer_like_the_rules(
    text: str, calls: list[tuple[Service, str]]
) -> None:
    p = plan(text)
    for service, number in calls * 2:  # the second round is answered from memory
        assert p.find(service, number) is longest_match(p.rates, service, number)
        assert p.find(int(service), number) is longest_match(p.rates, service, number)


def test_no_match_without_catch_all() -> None:
    narrow = plan("service,prefix,cycle,unit_price,basic_price\ngroup_call,91,20,0.01,0\n")
    assert narrow.find(Service.GROUP_CALL, "4412345") is None
    assert narrow.find(Service.VERIFICATION, "9112345") is None


@pytest.mark.parametrize(("second", "size"), [(0, 0), (1, 1), (20, 1), (21, 2), (60, 3), (61, 4)])
def test_connected_calls_pay_whole_cycles(second: int, size: int) -> None:
    rate = Rate(None, "", 20, 12_000_000, 1_000_000)  # 0.012 per 20 s, basic 0.001
    assert charge(rate, connected=True, second=second) == Charge(
        20, size, 12_000_000, 1_000_000, size * 12_000_000
    )


def test_unconnected_calls_pay_the_basic_price() -> None:
    rate = Rate(None, "", 20, 12_000_000, 1_000_000)
    assert charge(rate, connected=False, second=0) == Charge(
        20, 0, 12_000_000, 1_000_000, 1_000_000
    )


def test_seed_examples_price_as_the_seed_shows() -> None:
    # Group call: cycle 20, 19 s -> size 1 at 0.05. Verification: cycle 1, 3 s at 0.012.
    p = plan()
    group = decide(p, row(cc="62", phone="810022458", second=19))
    assert isinstance(group, Priced)
    assert (group.charge.cycle, group.charge.size, group.charge.cost_nanos) == (20, 1, 50_000_000)
    verify = decide(p, row(Service.VERIFICATION, cc="55", phone="85987053821", second=3))
    assert isinstance(verify, Priced)
    assert (verify.charge.size, verify.charge.cost_nanos) == (3, 36_000_000)
    assert verify.plan_id == 7


def test_pending_reasons_say_what_to_do() -> None:
    missing = decide(None, row())
    assert isinstance(missing, Unpriced)
    assert "voicecdr rates import" in missing.reason
    narrow = plan("service,prefix,cycle,unit_price,basic_price\nverification,1,1,0.01,0\n")
    reason = decide(narrow, row(cc="91", phone="123"))
    assert reason == Unpriced(1, "no rate for group_call calls to 91123 in plan version 3")


def test_csv_accepts_a_bom_blank_lines_and_spaces() -> None:
    rates = parse_plan_csv(
        "\ufeffservice, prefix ,cycle,unit_price,basic_price\n\n * ,1, 6 ,0.5,0\n"
    )
    assert rates == [Rate(None, "1", 6, 500_000_000, 0)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: the file is empty"),
        ("service,prefix,cycle,price\n", "line 1: header must be service,prefix,cycle,unit_price"),
        ("service,prefix,cycle,unit_price,basic_price\n", "the plan has no rates"),
        (
            "service,prefix,cycle,unit_price,basic_price\nsms,1,6,0.1,0\n",
            "line 2: service must be group_call, verification, notification or *, not 'sms'",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,+91,6,0.1,0\n",
            "line 2: prefix must be at most 20 digits, not '+91'",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,0,0.1,0\n",
            "line 2: cycle must be whole seconds from 1 to 3600, not '0'",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,6.5,0.1,0\n",
            "line 2: cycle must be whole seconds from 1 to 3600, not '6.5'",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,\N{SUPERSCRIPT TWO},0.1,0\n",
            "line 2: cycle must be whole seconds from 1 to 3600, not '\N{SUPERSCRIPT TWO}'",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,\N{FULLWIDTH DIGIT SIX},0.1,0\n",
            "line 2: cycle must be whole seconds from 1 to 3600, not '\N{FULLWIDTH DIGIT SIX}'",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,6,-0.1,0\n",
            "line 2: unit_price must be from 0 to less than 1000000, not '-0.1'",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,6,abc,0\n",
            "line 2: unit_price must be a decimal number, not 'abc'",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,6,0.1,NaN\n",
            "line 2: basic_price must be a decimal number, not 'NaN'",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,6,0.1,-Infinity\n",
            "line 2: basic_price must be a decimal number, not '-Infinity'",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,6,1_000,0\n",
            "line 2: unit_price must be a decimal number, not '1_000'",
        ),
        (
            # Decimal() reads every script's digits: these would be 0.05 and 0.001.
            "service,prefix,cycle,unit_price,basic_price\n*,,60,\uff10.\uff10\uff15,0\n",
            "line 2: unit_price must be written with ASCII digits 0-9, not '\uff10.\uff10\uff15'",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,,60,0,\u0660.\u0660\u0660\uff11\n",
            "line 2: basic_price must be written with ASCII digits 0-9, not "
            "'\u0660.\u0660\u0660\uff11'",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,6,1e3,0\n",
            "line 2: unit_price must be written out without an exponent, not '1e3' (check the "
            "spreadsheet's number format)",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,6,0,5E-2\n",
            "line 2: basic_price must be written out without an exponent, not '5E-2'",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,6,0.0000000001,0\n",
            "line 2: unit_price must have at most 9 decimal places",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\ngroup_call,1,1,999999.999999999,0\n",
            "line 2: unit_price 999999.999999999 with cycle 1 makes a 86400 s call cost more "
            "than the largest storable cost 9223372036.854775807; with this cycle it can be at "
            "most 106751.9911673",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,9,999999.999999999,0\n",
            "line 2: unit_price 999999.999999999 with cycle 9 makes a 86400 s call cost more",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,6,0.1\n",
            "line 2: expected 5 columns, found 4",
        ),
        (
            "service,prefix,cycle,unit_price,basic_price\n*,1,6,0.1,0\n\n*,1,60,0.2,0\n",
            "line 4: * prefix '1' is already priced on line 2",
        ),
    ],
)
def test_every_bad_line_is_reported_with_its_number(text: str, message: str) -> None:
    with pytest.raises(PlanErrors) as info:
        parse_plan_csv(text)
    assert any(e.startswith(message) for e in info.value.errors), info.value.errors


def test_all_bad_lines_are_reported_together() -> None:
    text = "service,prefix,cycle,unit_price,basic_price\nx,1,6,0.1,0\n*,1,6,0.1,0\n*,2,0,0.1,0\n"
    with pytest.raises(PlanErrors) as info:
        parse_plan_csv(text)
    assert [e.split(":")[0] for e in info.value.errors] == ["line 2", "line 4"]


@pytest.mark.parametrize("cycle", [1, 2, 9, 10, 60, 3600])
def test_a_plan_takes_unit_prices_up_to_the_highest_storable_for_its_cycle(cycle: int) -> None:
    highest = min(max_unit_price_nanos(cycle), to_nanos(MAX_PRICE) - 1)
    line = f"group_call,,{cycle},{money.text(highest)},0\n"
    (rate,) = parse_plan_csv("service,prefix,cycle,unit_price,basic_price\n" + line)
    assert size_and_cost(rate, connected=True, second=MAX_SECOND)[1] <= MAX_NANOS


def test_the_highest_unit_price_is_exactly_the_storable_bound() -> None:
    for cycle in range(1, MAX_CYCLE + 1):
        size, highest = -(-MAX_SECOND // cycle), max_unit_price_nanos(cycle)
        assert size * highest <= MAX_NANOS < size * (highest + 1)
