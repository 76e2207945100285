"""E.164: a phone in international form split, validated and placed in its region, on
the validator's fast and full paths; the region of a stored code and national number."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_canonical import BOUNDS, record
from voicecdr.e164 import SHARED_CODES, region_of, split
from voicecdr.ingest.canonical import RecordErrors, validate
from voicecdr.models import Cdr


def both_paths(raw: dict[str, Any]) -> Cdr:
    """The Cdr of ``raw`` on the fast path (a dict) and the full one (any other mapping),
    which must agree."""
    fast = validate(raw, BOUNDS)
    assert validate(MappingProxyType(raw), BOUNDS) == fast
    return fast


def errors(raw: dict[str, Any]) -> list[str]:
    found = []
    for given_ in (raw, MappingProxyType(raw)):
        with pytest.raises(RecordErrors) as caught:
            validate(given_, BOUNDS)
        found.append(caught.value.errors)
    assert found[0] == found[1]
    return found[0]


@pytest.mark.parametrize(
    ("phone", "code", "national", "region"),
    [
        ("+919876543210", "91", "9876543210", "IN"),
        ("00919876543210", "91", "9876543210", "IN"),
        ("+91 98765-43210", "91", "9876543210", "IN"),
        ("0091 (98765) 432.10", "91", "9876543210", "IN"),
        # Shared codes: the number decides the region.
        ("+1 212 555 0123", "1", "2125550123", "US"),
        ("+1 416 555 0123", "1", "4165550123", "CA"),
        ("+1 284 496 1234", "1", "2844961234", "VG"),
        ("+7 701 123 4567", "7", "7011234567", "KZ"),
        ("+7 912 345 6789", "7", "9123456789", "RU"),
        ("+44 20 7946 0958", "44", "2079460958", "GB"),
        ("+39 06 6988 1234", "39", "0669881234", "VA"),  # a leading zero kept
        ("+800 1234 5678", "800", "12345678", None),  # non-geographic: no country
    ],
)
def test_an_international_phone_is_split_into_code_number_and_region(
    phone: str, code: str, national: str, region: str | None
) -> None:
    cdr = both_paths(record(phone=phone, country_code=...))
    assert (cdr.country_code, cdr.phone, cdr.region) == (code, national, region)
    # Written the other way, it is the same record: same content, same hash.
    assert both_paths(record(phone=national, country_code=code)) == cdr
    # With a country code that agrees, too.
    assert both_paths(record(phone=phone, country_code=code)) == cdr if phone[0] == "+" else True


@pytest.mark.parametrize(
    ("phone", "problem"),
    [
        ("+999 123456", "unknown country code"),
        ("+379 06 6988 1234", "unknown country code"),
        ("+91 1", "too short"),
        ("+91 98765", "too short for country code 91"),
        ("+44 2079460958 1234567", "too long for country code 44"),
        ("+1 555 555 0123", "not a valid number of any region of +1"),
        (
            "+91 98765 43210 ext 5",
            "after + or 00 only digits, spaces, dashes, dots and parentheses",
        ),
        (
            "+91\uff19876543210",
            "after + or 00 only digits, spaces, dashes, dots and parentheses",
        ),  # fullwidth digit
        ("+", "no digits after + or 00"),
        ("00", "no digits after + or 00"),
    ],
)
def test_an_invalid_international_phone_is_rejected_naming_its_problem(
    phone: str, problem: str
) -> None:
    assert errors(record(phone=phone, country_code=...)) == [f"phone: {phone!r}: {problem}"]


def test_a_phone_and_a_country_code_that_disagree_are_rejected_naming_both() -> None:
    assert errors(record(phone="+919876543210", country_code="44")) == [
        "phone: '+919876543210' has country code 91, country_code says 44"
    ]


def test_an_international_phone_longer_than_the_field_is_rejected() -> None:
    phone = "+91 " + "9 8 7 6 5 4 3 2 1 0 " * 2
    assert errors(record(phone=phone, country_code=...)) == ["phone: must be at most 32 characters"]


def test_a_national_phone_still_needs_its_country_code() -> None:
    assert errors(record(phone="9876543210", country_code=...)) == ["country_code: is required"]


def test_00_with_a_country_code_stays_digits_as_before() -> None:
    # Before E.164 such a record was stored as it came: it still is, with the same hash.
    cdr = both_paths(record(phone="0044207946", country_code="44"))
    assert (cdr.country_code, cdr.phone) == ("44", "0044207946")


@pytest.mark.parametrize(
    ("code", "phone", "region"),
    [
        ("91", "9876543210", "IN"),
        ("91", "1", "IN"),  # a code of one region is that region, whatever the number
        ("1", "2125550123", "US"),
        ("1", "4165550123", "CA"),
        ("1", "9995550123", None),  # a shared code's number that fits none of its regions
        ("999", "123456", None),  # no such code
        ("800", "12345678", None),  # non-geographic
        ("39", "0669881234", "VA"),
    ],
)
def test_region_of_a_stored_number(code: str, phone: str, region: str | None) -> None:
    assert region_of(code, phone) == region
    assert both_paths(record(phone=phone, country_code=code)).region == region


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(SHARED_CODES)),
    st.text(alphabet="0123456789", min_size=4, max_size=12),
)
def test_region_of_is_phonenumbers_region_of_the_parsed_number(code: str, phone: str) -> None:
    # For a shared code region_of builds the number itself (no parse): the answer must be
    # phonenumbers' region of the number parse() makes of +<code><phone>, when parse
    # keeps the national number as given.
    try:
        parsed = phonenumbers.parse(f"+{code}{phone}")
    except phonenumbers.NumberParseException:
        return
    if phonenumbers.national_significant_number(parsed) != phone:
        return
    expected = phonenumbers.region_code_for_number(parsed)
    assert region_of(code, phone) == (None if expected in (None, "001") else expected)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["US", "CA", "JM", "GB", "JE", "RU", "KZ", "IT", "VA", "IN", "BR"]))
def test_a_valid_number_of_a_region_is_placed_there(region: str) -> None:
    number = phonenumbers.example_number(region)
    assert number is not None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert split(e164).region == region
    assert region_of(str(number.country_code), e164[1 + len(str(number.country_code)) :]) == region
