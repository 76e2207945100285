"""App (tenant) management: the service behind ``voicecdr apps …`` and the demo."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import callbacks, credentials
from .errors import ConfigError, NotFound, ValidationError
from .models import App, Language
from .storage import AppStore
from .timefmt import epoch_to_iso, zone

MAX_RATE_LIMIT = 1_000_000.0  # in effect no limit, for internal tenants and load tests


@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    """What the operator hands to the customer; the secretkey exists only here (None when
    it was not changed)."""

    app: App
    secretkey: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            **public_view(self.app),
            "secretkey": self.secretkey,
            "signing_secret": self.app.signing_secret,
        }


def public_view(app: App) -> dict[str, Any]:
    """An app as ``apps list`` shows it: no secret, no hash."""
    return {
        "name": app.name,
        "appkey": app.appkey,
        "timezone": app.timezone,
        "language": app.language.value,
        "callback_url": app.callback_url,
        "rate_limit": app.rate_limit,
        "enabled": not app.disabled,
        "disabled_at": None if app.disabled_at is None else epoch_to_iso(app.disabled_at),
    }


def _checked(changes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in changes.items():
        if value is None:
            continue
        try:
            out[field] = _CHECKS[field](value)
        except ValueError as exc:
            raise ValidationError(field, str(exc)) from None
    return out


def _name(value: str) -> str:
    if not 1 <= len(value.strip()) <= 200:
        raise ValueError("must be 1-200 characters")
    return value.strip()


def _timezone(value: str) -> str:
    zone(value)
    return value


def _language(value: str) -> str:
    try:
        return Language(value).value
    except ValueError:
        raise ValueError("must be en or zh") from None


def _callback_url(value: str) -> str | None:
    if value == "":
        return None  # an empty string clears the callback
    if len(value) > 2048:
        raise ValueError("must be at most 2048 characters")
    callbacks.parse(value)
    return value


@dataclass(frozen=True, slots=True)
class CallbackCheck:
    """How registration checks callback addresses (see ``voicecdr.callbacks``)."""

    allow_private: bool = False
    resolver: callbacks.Resolver = callbacks.system_resolver

    def __call__(self, url: str | None) -> None:
        if url is None:
            return
        try:
            callbacks.check_registration(url, self.resolver, allow_private=self.allow_private)
        except callbacks.CallbackRefused as exc:
            raise ValidationError("callback_url", str(exc)) from None


def _rate_limit(value: float) -> float:
    if not 0 < value <= MAX_RATE_LIMIT:
        raise ValueError(f"must be more than 0 and at most {MAX_RATE_LIMIT:,.0f} requests/second")
    return float(value)


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": _name,
    "appkey": credentials.check_appkey,
    "timezone": _timezone,
    "language": _language,
    "callback_url": _callback_url,
    "rate_limit": _rate_limit,
}


def create_app(
    store: AppStore,
    *,
    name: str,
    default_timezone: str,
    appkey: str | None = None,
    secretkey: str | None = None,
    timezone: str | None = None,
    language: str | None = None,
    callback_url: str | None = None,
    rate_limit: float | None = None,
    check_callback: CallbackCheck = CallbackCheck(),
) -> IssuedCredentials:
    values = _checked(
        {
            "name": name,
            "appkey": appkey or credentials.new_appkey(),
            "timezone": timezone or default_timezone,
            "language": language or "en",
            "callback_url": callback_url,
            "rate_limit": 1.0 if rate_limit is None else rate_limit,
        }
    )
    secret = _secretkey(secretkey) if secretkey is not None else credentials.new_secretkey()
    values.setdefault("callback_url", None)
    check_callback(values["callback_url"])
    values["secret_hash"] = credentials.hash_secret(secret)
    values["signing_secret"] = credentials.new_signing_secret()
    app = store.create(values, now=int(time.time()))
    return IssuedCredentials(app, secret)


def update_app(
    store: AppStore, appkey: str, *, check_callback: CallbackCheck = CallbackCheck(), **changes: Any
) -> App:
    checked = _checked(changes)
    if not checked:
        raise ConfigError("nothing to change: give at least one option")
    check_callback(checked.get("callback_url"))
    return store.update(appkey, checked, now=int(time.time()))


def rotate_secret(
    store: AppStore, appkey: str, *, secretkey: str | None = None, signing: bool = False
) -> IssuedCredentials:
    """A new secretkey (the old one stops working at once), or with ``signing`` a new
    receipt signing secret instead; both when ``signing`` comes with a given secretkey."""
    changes: dict[str, Any] = {}
    secret = None
    if not signing or secretkey is not None:
        secret = _secretkey(secretkey) if secretkey is not None else credentials.new_secretkey()
        changes["secret_hash"] = credentials.hash_secret(secret)
    if signing:
        changes["signing_secret"] = credentials.new_signing_secret()
    app = store.update(appkey, changes, now=int(time.time()))
    return IssuedCredentials(app, secret)


def _secretkey(value: str) -> str:
    try:
        return credentials.check_secretkey(value)
    except ValueError as exc:
        raise ValidationError("secretkey", str(exc)) from None


@dataclass(frozen=True, slots=True)
class StateChange:
    """An app after ``disable`` or ``enable``; ``changed`` is False when it already was."""

    app: App
    changed: bool


def set_enabled(store: AppStore, appkey: str, *, enabled: bool) -> StateChange:
    """Enable or disable an app; idempotent. A disabled app keeps its data: its queries
    answer ``auth_failed`` and its new CDRs are refused at ingest until it is enabled."""
    app = store.get(appkey)
    if app is None:
        raise NotFound(f"no app with appkey {appkey!r}")
    if app.disabled is not enabled:  # already as asked
        return StateChange(app, changed=False)
    now = int(time.time())
    app = store.update(appkey, {"disabled_at": None if enabled else now}, now=now)
    return StateChange(app, changed=True)
