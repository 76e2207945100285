"""Domain values shared by every layer: services, cost status, apps and CDRs."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple


class Service(enum.IntEnum):
    """A CDR's service. The integer is what storage keeps."""

    GROUP_CALL = 0
    VERIFICATION = 1
    NOTIFICATION = 2

    @property
    def wire_name(self) -> str:
        return self.name.lower()

    @property
    def voice_group(self) -> VoiceGroup:
        return VoiceGroup.GROUP_CALL if self is Service.GROUP_CALL else VoiceGroup.VERIFICATION

    @classmethod
    def from_wire(cls, name: str) -> Service:
        return cls[name.upper()]


class VoiceGroup(enum.IntEnum):
    """The query API's ``voiceType``: 0 group call, 1 verification and notification."""

    GROUP_CALL = 0
    VERIFICATION = 1


class CostStatus(enum.IntEnum):
    PENDING = 0
    FINAL = 1

    @property
    def wire_name(self) -> str:
        return self.name.lower()


class ReceiptStatus(enum.IntEnum):
    """A receipt is pending (new or failed, to be retried), delivered, or dead."""

    PENDING = 0
    DELIVERED = 1
    DEAD = 2

    @property
    def wire_name(self) -> str:
        return self.name.lower()


class Language(enum.StrEnum):
    EN = "en"
    ZH = "zh"


# The ``result`` text of a call that did not / did connect, in the app's language.
RESULT_TEXT = {
    Language.EN: ("Unsuccessful connection", "Successful connection"),
    Language.ZH: ("未接通", "成功接通"),
}


@dataclass(frozen=True, slots=True)
class App:
    """A tenant. ``secret_hash`` is never the secret itself. ``disabled_at`` (Unix
    seconds) is set while the operator has the app disabled: its data stays, its queries
    and new CDRs are refused."""

    id: int
    name: str
    appkey: str
    secret_hash: str
    signing_secret: str
    timezone: str
    language: Language
    callback_url: str | None
    rate_limit: float
    created_at: int
    disabled_at: int | None = None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


class Cdr(NamedTuple):
    """A validated canonical CDR, ready to store. Times are Unix seconds (UTC). Its fields
    are ``cdrfields.CDR_NAMES`` (a test holds them together).

    A NamedTuple rather than a frozen dataclass: an import builds millions of them and
    passes them between processes, and a tuple is several times cheaper to build and to
    pickle."""

    call_id: str
    appkey: str
    service: Service
    messageid: str
    phone: str
    country_code: str
    show_phone: str
    time: int
    start_time: int | None
    end_time: int | None
    second: int
    connected: bool
    hangup_cause: str
    hangup_disposition: str
    ivr_result: str
    record_url: str | None
    content_hash: str
    region: str | None  # of country_code + phone (e164.region_of), not part of the hash


# A stored CDR as pricing reads it (the rater, re-rating and the unpriced listing): the
# columns ``storage.rating.UNRATED``, as the driver returns them. A plain tuple because
# the rater handles tens of thousands a second, where building even a NamedTuple per CDR
# costs as much as pricing it. In order: id, app_id, time (placed_at), service (a Service
# value), phone, country_code, second, connected (0/1 or a bool), then the rollups'
# answered_at, hangup cause, disposition and region.
UnratedCdr = tuple[int, int, int, int, str, str, int, int, int | None, str, str, str | None]

# What a receipt body says of its call, as the sender reads it from the CDR: the columns
# ``cdrfields.RECEIPT_FIELDS``, in that order. Call data never changes after ingest, so it
# reads the same at every attempt.
ReceiptCall = tuple[
    int, int, str, str, str, int | None, int | None, int, int, str, str, str, str | None
]


@dataclass(frozen=True, slots=True)
class ReceiptContent:
    """Everything a receipt body is rendered from (``receipts.render``): the call, the
    charge the receipt reports and the app's timezone and language as they were when the
    receipt was made. All of it is fixed when the receipt is recorded, so the body is the
    same bytes at every attempt, after a re-rating of the call or a change to the app."""

    call: ReceiptCall
    cycle: int
    size: int
    unit_price_nanos: int
    basic_price_nanos: int
    timezone: str
    language: Language
