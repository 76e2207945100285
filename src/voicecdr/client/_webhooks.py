"""Standard Webhooks signatures, as voicecdr signs its receipts.

A receipt carries three headers: ``webhook-id`` (the same on every retry of one receipt,
so a receiver can drop repeats), ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: one or more space-separated ``v1,<base64 signature>`` entries, each
an HMAC-SHA256 of ``"{id}.{timestamp}.{body}"`` keyed with the base64-decoded part of the
app's ``whsec_…`` signing secret. Several entries let a sender sign with an old and a new
secret while a secret is rotated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from ._exceptions import SignatureError

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
DEFAULT_TOLERANCE = 300  # seconds, either way: the Standard Webhooks recommendation


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        key = secret
    else:
        encoded = secret.removeprefix(SECRET_PREFIX)
        try:
            # Unpadded secrets exist in the wild; extra padding is ignored by b64decode.
            key = base64.b64decode(encoded + "==", validate=False)
        except (binascii.Error, ValueError):
            raise ValueError("the signing secret is not whsec_ followed by base64") from None
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value (one ``v1`` entry) for a message."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


class WebhookVerifier:
    """Verifies receipts signed with one app's signing secret.

    ``tolerance`` is how far (seconds) ``webhook-timestamp`` may be from now, either way,
    which bounds replays of a captured receipt.
    """

    def __init__(
        self,
        secret: str | bytes,
        *,
        tolerance: int = DEFAULT_TOLERANCE,
    ) -> None:
        self._key = _key(secret)
        self.tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> str:
        """Check the signature of ``body`` (the raw request bytes); returns the
        ``webhook-id``. Raises :class:`SignatureError` when it must not be trusted.
        ``now`` (Unix seconds) defaults to the system clock."""
        lowered = {k.lower(): v for k, v in headers.items()}
        msg_id = lowered.get("webhook-id", "")
        stamp = lowered.get("webhook-timestamp", "")
        signatures = lowered.get("webhook-signature", "")
        if not (msg_id and stamp and signatures):
            raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
        if not (stamp.isascii() and stamp.isdigit()):  # not isdigit() alone: "²", other scripts
            raise SignatureError("webhook-timestamp is not Unix seconds")
        timestamp = int(stamp)
        current = time.time() if now is None else now
        if timestamp < current - self.tolerance:
            raise SignatureError("webhook-timestamp is too old")
        if timestamp > current + self.tolerance:
            raise SignatureError("webhook-timestamp is in the future")
        expected = base64.b64decode(sign(self._key, msg_id, timestamp, body)[3:])
        for entry in signatures.split(" "):
            version, _, encoded = entry.partition(",")
            if version != "v1":
                continue  # other schemes (e.g. v1a) are not ours to check
            try:
                candidate = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                continue
            if hmac.compare_digest(expected, candidate):
                return msg_id
        raise SignatureError("no webhook-signature matches the signing secret")


def verify_signature(
    secret: str | bytes,
    body: bytes,
    headers: Mapping[str, str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> str:
    """One-shot :meth:`WebhookVerifier.verify`; returns the ``webhook-id``."""
    return WebhookVerifier(secret, tolerance=tolerance).verify(body, headers, now=now)
