"""Generation, hashing and checking of app credentials.

Generated keys are long and random (128 bits for the appkey, 256 for the secretkey), so a
salted SHA-256 is the right hash at rest: a slow password hash adds nothing against
brute force on 256 random bits and would cost milliseconds on every API request.
Comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

_HASH_SCHEME = "sha256"
_APPKEY_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def new_appkey() -> str:
    return secrets.token_hex(16)


def new_secretkey() -> str:
    return secrets.token_urlsafe(32)


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def check_appkey(appkey: str) -> str:
    if not _APPKEY_RE.fullmatch(appkey):
        raise ValueError("appkey must be 1-64 characters of letters, digits, '_', '.' or '-'")
    return appkey


def check_secretkey(secretkey: str) -> str:
    if (
        not 1 <= len(secretkey) <= 256
        or not secretkey.isprintable()
        or secretkey.strip() != secretkey
    ):
        raise ValueError("secretkey must be 1-256 printable characters without outer spaces")
    return secretkey


def hash_secret(secret: str, *, salt: str | None = None) -> str:
    salt = salt if salt is not None else secrets.token_hex(16)
    digest = hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()
    return f"{_HASH_SCHEME}${salt}${digest}"


def verify_secret(secret: str, stored: str) -> bool:
    """Constant-time check of ``secret`` against a stored hash."""
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != _HASH_SCHEME:
        return False
    candidate = hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()
    return hmac.compare_digest(candidate, digest)
