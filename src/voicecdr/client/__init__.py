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

from ._client import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEZONE,
    MAX_PAGE_SIZE,
    QUERY_PATH,
    AsyncClient,
    Client,
)
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

# The public names belong to this package, not to its private modules (as in httpx).
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type) or callable(_value):
        _value.__module__ = __name__
del _name, _value
