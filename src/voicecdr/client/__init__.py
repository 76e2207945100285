"""voicecdr's client SDK: query, export and receipt verification for NXCloud's voice
record API, against NXCloud's own endpoint or any compatible one (voicecdr included).

It needs only httpx::

    from voicecdr.client import Client, VoiceType

    with Client("APPKEY", "SECRETKEY", timezone="Asia/Shanghai") as client:
        for record in client.iter_records(VoiceType.GROUP_CALL, "2026-11-20 00:00:00",
                                          "2026-11-23 23:59:59"):
            print(record.id, record.time, record.charge)

See docs/client.md for the export recipe and a receipt receiver.
"""

from typing import TYPE_CHECKING

from ._exceptions import (
    ApiError,
    AuthFailed,
    ClientError,
    IncompleteExport,
    InvalidParameter,
    MalformedReceipt,
    OutOfWindow,
    ProtocolError,
    RangeTooLarge,
    RateLimited,
    ReceiptError,
    ServerError,
    SignatureError,
    TransportError,
    WindowError,
)
from ._models import GroupCallRecord, Page, Record, VoiceRecord, VoiceType
from ._pacing import Pacer, Retry
from ._receipts import GroupCallReceipt, Receipt, ReceiptVerifier, VoiceReceipt, parse_receipt
from ._webhooks import WebhookVerifier, sign, verify_signature

if TYPE_CHECKING:  # their values: see __getattr__
    from ._client import (
        DEFAULT_BASE_URL,
        DEFAULT_TIMEZONE,
        MAX_PAGE_SIZE,
        QUERY_PATH,
        AsyncClient,
        Client,
    )

# The names of ``_client``, which imports httpx: the server signs receipts and renders rows
# with this package's other modules, and need not load httpx for them.
_CLIENT_NAMES = frozenset(
    ("DEFAULT_BASE_URL", "DEFAULT_TIMEZONE", "MAX_PAGE_SIZE", "QUERY_PATH", "AsyncClient", "Client")
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEZONE",
    "MAX_PAGE_SIZE",
    "QUERY_PATH",
    "ApiError",
    "AsyncClient",
    "AuthFailed",
    "Client",
    "ClientError",
    "GroupCallReceipt",
    "GroupCallRecord",
    "IncompleteExport",
    "InvalidParameter",
    "MalformedReceipt",
    "OutOfWindow",
    "Pacer",
    "Page",
    "ProtocolError",
    "RangeTooLarge",
    "RateLimited",
    "Receipt",
    "ReceiptError",
    "ReceiptVerifier",
    "Record",
    "Retry",
    "ServerError",
    "SignatureError",
    "TransportError",
    "VoiceReceipt",
    "VoiceRecord",
    "VoiceType",
    "WebhookVerifier",
    "WindowError",
    "parse_receipt",
    "sign",
    "verify_signature",
]


def _own(value: object) -> None:
    """A public name belongs to this package, not to its private module (as in httpx)."""
    if isinstance(value, type) or callable(value):
        value.__module__ = __name__


for _name in __all__:
    if _name not in _CLIENT_NAMES:
        _own(globals()[_name])
del _name


def __getattr__(name: str) -> object:
    if name not in _CLIENT_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import _client

    for loaded in _CLIENT_NAMES:
        globals()[loaded] = getattr(_client, loaded)  # found at once next time
        _own(globals()[loaded])
    return globals()[name]
