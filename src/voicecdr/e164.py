"""E.164 numbers, by Google's libphonenumber metadata (the ``phonenumbers`` package): a
phone in international form split into country code and national number, and the region
(ISO 3166-1 alpha-2 country) of a stored country code and national number.

The region is a function of (country code, national number) alone: ingest stores it, the
the migration that adds ``cdrs.region`` fills it in for earlier CDRs, both through
:func:`region_of`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, ValidationResult

# What an international phone may hold besides its digits (after the + or 00 only).
_SEPARATORS = str.maketrans("", "", " -.()")
_NON_GEOGRAPHIC = "001"  # phonenumbers' region of +800, +808, +870, +881...: no country
_REGIONS = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
# A country code of one region needs no number: its region, looked up (None: no country).
# Public for ingest's fast path, which inlines region_of.
ONE_REGION = {
    str(code): (None if regions[0] == _NON_GEOGRAPHIC else regions[0])
    for code, regions in _REGIONS.items()
    if len(regions) == 1
}
# Codes shared by several regions (1, 7, 44...): the number decides.
SHARED_CODES = frozenset(str(code) for code, regions in _REGIONS.items() if len(regions) > 1)
MEMO_SIZE = 65_536  # numbers of shared codes whose region is remembered


@dataclass(frozen=True, slots=True)
class International:
    """A valid phone given in international form, split as it is stored."""

    country_code: str  # the calling code, digits
    phone: str  # the national significant number, digits
    region: str | None  # ISO 3166-1 alpha-2; None for a non-geographic code (+800...)


def is_international(phone: str) -> bool:
    """Whether ``phone`` is written in international form (``+`` or ``00`` first)."""
    return phone.startswith(("+", "00"))


def split(phone: str) -> International:
    """``phone`` in international form (``+`` or ``00``, then digits with spaces, dashes,
    dots or parentheses), checked to be a valid number; raises ValueError saying what is
    wrong with it."""
    rest = phone[1:] if phone.startswith("+") else phone[2:]
    digits = rest.translate(_SEPARATORS)
    if not digits:
        raise ValueError(f"{phone!r}: no digits after + or 00")
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(
            f"{phone!r}: after + or 00 only digits, spaces, dashes, dots and parentheses"
        )
    try:
        number = phonenumbers.parse("+" + digits)
    except NumberParseException as exc:
        problem = _PARSE_PROBLEMS.get(exc.error_type, "not a number")
        raise ValueError(f"{phone!r}: {problem}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{phone!r}: {_invalid(number)}")
    region = phonenumbers.region_code_for_number(number)
    return International(
        str(number.country_code),
        phonenumbers.national_significant_number(number),
        None if region in (None, _NON_GEOGRAPHIC) else region,
    )


_PARSE_PROBLEMS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


def _invalid(number: PhoneNumber) -> str:
    """Why a parsed number is not valid, in words."""
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason == ValidationResult.INVALID_COUNTRY_CODE:
        return "unknown country code"
    if reason == ValidationResult.TOO_SHORT:
        return f"too short for country code {number.country_code}"
    if reason == ValidationResult.TOO_LONG:
        return f"too long for country code {number.country_code}"
    return f"not a valid number of any region of +{number.country_code}"


def region_of(country_code: str, phone: str) -> str | None:
    """The region of a stored country code and national number (digits): the code's own
    for a code of one region (a dict lookup), else phonenumbers' region of the number;
    None where there is no country (unknown or non-geographic codes, numbers of a shared
    code that fit none of its regions)."""
    region = ONE_REGION.get(country_code)
    if region is None and country_code in SHARED_CODES:
        return shared_region(country_code, phone)
    return region


@functools.lru_cache(maxsize=MEMO_SIZE)
def shared_region(country_code: str, phone: str) -> str | None:
    """region_of for a code in SHARED_CODES."""
    # The number as parse() builds it from +<code><national number> when nothing is
    # stripped: Italian-style leading zeros kept as zeros (phonenumbers' own fields).
    number = PhoneNumber(country_code=int(country_code), national_number=int(phone))
    zeros = len(phone) - len(phone.lstrip("0"))
    if zeros and len(phone) > 1:
        number.italian_leading_zero = True
        number.number_of_leading_zeros = min(zeros, len(phone) - 1)
    region = phonenumbers.region_code_for_number(number)
    return None if region in (None, _NON_GEOGRAPHIC) else region


def national(number: str | None, country_code: str | None) -> str | None:
    """An E.164 destination (``+<country code><number>``) loses both its ``+`` and the
    country code, which the record carries separately; other numbers are kept as dialled.
    Without a country code it is kept whole: the validator splits it (:func:`split`).
    A switch's reader calls it when the record names its country code apart."""
    if number is None or not number.startswith("+") or not country_code:
        return number
    digits = number[1:]
    if country_code and digits.startswith(country_code) and len(digits) > len(country_code):
        return digits[len(country_code) :]
    return digits
