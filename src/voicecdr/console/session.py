"""The console's session: a signed cookie holding who is signed in, never a secret.

The cookie's value is ``payload.signature``: the payload is the session as compact JSON
(base64url), the signature its HMAC-SHA256 under the deployment's console key. A session
exists before sign-in too (role ``anonymous``) so the sign-in form has a CSRF token to be
checked against; signing in replaces it, token and all.

A signed-in session is bound to the credential it signed in with by a short keyed
fingerprint (of the app's stored secret hash, or of the operator token): when that
credential changes the session ends. The fingerprint is an HMAC under the console key,
so the cookie reveals nothing of the secret or its hash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import orjson

COOKIE = "voicecdr_console"
LIFETIME = 12 * 3600  # seconds a session lasts from sign-in (or from the anonymous visit)


class Role(StrEnum):
    ANONYMOUS = "anonymous"
    CUSTOMER = "customer"  # one app, by its appkey and secretkey
    OPERATOR = "operator"  # every app, by the operator token


@dataclass(frozen=True, slots=True)
class Session:
    """Who is signed in: the role, the app they see (its appkey; a customer's own, the
    operator's current choice), the CSRF token every POST must carry, the language
    chosen (None: the app's), when it ends (epoch seconds), and the fingerprint of the
    credential it signed in with (:meth:`SessionCodec.fingerprint`; None before sign-in)."""

    role: Role
    app: str | None
    csrf: str
    lang: str | None
    expires: int
    credential: str | None = None

    @classmethod
    def anonymous(cls, now: float, lang: str | None = None) -> Session:
        return cls(Role.ANONYMOUS, None, new_token(), lang, int(now) + LIFETIME)

    @classmethod
    def signed_in(
        cls, role: Role, app: str | None, now: float, lang: str | None, credential: str
    ) -> Session:
        """A fresh session (a new CSRF token: one seen before sign-in is not reused)."""
        return cls(role, app, new_token(), lang, int(now) + LIFETIME, credential)

    @property
    def signed_in_as(self) -> Role | None:
        return None if self.role is Role.ANONYMOUS else self.role

    def with_app(self, appkey: str) -> Session:
        return replace(self, app=appkey)

    def with_lang(self, lang: str) -> Session:
        return replace(self, lang=lang)


def new_token() -> str:
    return secrets.token_urlsafe(24)


class SessionCodec:
    """Signs sessions into cookie values and reads them back, refusing any that was not
    signed with ``key``, is malformed, or has expired."""

    def __init__(self, key: Callable[[], str]) -> None:
        self._source = key  # asked on first use
        self._key: bytes | None = None

    def encode(self, session: Session) -> str:
        body: dict[str, Any] = {
            "r": session.role.value,
            "a": session.app,
            "c": session.csrf,
            "l": session.lang,
            "e": session.expires,
            "k": session.credential,
        }
        payload = _b64(orjson.dumps(body))
        return f"{payload}.{self._sign(payload)}"

    def decode(self, value: str, now: float) -> Session | None:
        payload, dot, signature = value.partition(".")
        expected = self._sign(payload).encode()
        if not dot or not hmac.compare_digest(signature.encode(), expected):
            return None
        try:
            body = orjson.loads(_unb64(payload))
            session = Session(
                Role(body["r"]), body["a"], str(body["c"]), body["l"], int(body["e"]), body.get("k")
            )
        except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
            return None
        return session if session.expires > now else None

    def fingerprint(self, kind: str, credential: str) -> str:
        """A short keyed fingerprint of ``credential`` (22 characters, 128 bits): equal
        for the same credential, telling nothing of it without the console key."""
        message = f"credential\x00{kind}\x00{credential}".encode()
        return _b64(hmac.new(self._secret(), message, hashlib.sha256).digest()[:16])

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret(), payload.encode(), hashlib.sha256).digest())

    def _secret(self) -> bytes:
        if self._key is None:
            secret = self._source().encode()
            self._key = hashlib.sha256(b"voicecdr console session\x00" + secret).digest()
        return self._key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
