from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecdr import money
from voicecdr.money import MAX_NANOS, from_nanos, json_number, to_nanos


@pytest.mark.parametrize(
    ("price", "json"),
    [
        ("0.036", "0.036"),
        ("0.005", "0.005"),
        ("0.05", "0.05"),
        ("0", "0"),
        ("2", "2"),
        ("0.000000001", "0.000000001"),
        ("0.00001", "0.00001"),
        ("0.0001", "0.0001"),
        ("123456.789", "123456.789"),
        ("0.1", "0.1"),
        ("8999999999.999991", "8999999999.999991"),
        ("9223372036.854775807", "9223372036.854775807"),
        ("999999.999999999", "999999.999999999"),
        ("1000000", "1000000"),
        ("10", "10"),
    ],
)
def test_prices_render_as_exact_json_numbers(price: str, json: str) -> None:
    rendered = orjson.dumps(json_number(to_nanos(Decimal(price)))).decode()
    assert rendered == json
    assert Decimal(rendered) == Decimal(price)


def test_sum_of_floats_would_drift_but_nanos_do_not() -> None:
    three = to_nanos(Decimal("0.012")) * 3
    assert orjson.dumps(json_number(three)).decode() == "0.036"
    assert 0.012 * 3 != 0.036  # the float drift the nanos avoid


def test_more_than_nine_decimals_is_refused() -> None:
    with pytest.raises(ValueError, match="more than 9 decimal places"):
        to_nanos(Decimal("0.0000000001"))


@given(st.decimals(min_value=0, max_value=999_999, places=9, allow_nan=False))
def test_any_amount_round_trips_exactly_through_json(amount: Decimal) -> None:
    nanos = to_nanos(amount)
    assert from_nanos(nanos) == amount
    text = orjson.dumps(json_number(nanos)).decode()
    assert Decimal(text) == amount
    assert "e" not in text.lower()


@given(st.integers(min_value=-MAX_NANOS, max_value=MAX_NANOS))
def test_every_storable_amount_renders_exactly_as_a_json_number_and_as_text(nanos: int) -> None:
    exact = Decimal(nanos).scaleb(-9)
    text = orjson.dumps(json_number(nanos)).decode()
    assert Decimal(text) == exact
    assert isinstance(orjson.loads(text), int | float)  # a JSON number, not a string
    assert "e" not in text.lower()
    assert money.text(nanos) == text
    if "." in text:
        assert not text.endswith("0")  # 0.036, not 0.036000000


def test_the_cost_from_the_issue_keeps_every_digit() -> None:
    assert orjson.dumps(json_number(8_999_999_999_999_991_000)) == b"8999999999.999991"


@pytest.mark.parametrize(
    ("nanos", "text"),
    [(10 * 10**9, "10"), (100 * 10**9, "100"), (100, "0.0000001"), (0, "0"), (1, "0.000000001")],
)
def test_text_never_uses_an_exponent(nanos: int, text: str) -> None:
    assert money.text(nanos) == text
