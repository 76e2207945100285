"""An app's appkey and secretkey checked, and its request token prepared, under the failed-
authentication limits every endpoint that takes them shares (the query API, analytics):
a guesser gets no more tries by switching endpoint. Blocking; thread-safe.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..config import Settings
from ..credentials import verify_secret
from ..models import App
from ..ratelimit import Decision, Quota
from ..storage import Admission, AppStore, SharedRateLimiter
from .appcache import AppCache


@dataclass(frozen=True, slots=True)
class Admitted:
    """The app the credentials are for, and its request's token (under the app's
    ``query:`` quota and the address's lock-outs), not yet taken."""

    app: App
    admission: Admission


@dataclass(frozen=True, slots=True)
class Denied:
    """Wrong credentials, or a disabled app; ``lockout`` is set when the address is locked
    out (the answer must say so, with its wait, whatever the secret)."""

    lockout: Decision | None = None


class AppAuthenticator:
    """Checks appkey and secretkey in constant time, hashing even for an unknown appkey."""

    def __init__(
        self,
        apps: AppStore,
        limiter: SharedRateLimiter,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.apps = AppCache(apps, settings.app_cache_seconds)
        self._operator_token = settings.operator_token
        self.limiter = limiter
        self._clock = clock
        window = settings.auth_failure_window
        self._per_pair = failure_quota(settings.auth_failures_per_client_appkey, window)
        self.per_client = failure_quota(settings.auth_failures_per_client, window)

    def failure_keys(self, client: str, appkey: str) -> Sequence[tuple[str, Quota]]:
        """The lock-out keys of an address and appkey, with their quotas."""
        # Guessing is capped per address and appkey, and per address, in the shared state
        # so more server processes do not mean more guesses. Only the guessing address is
        # locked out, never the owner elsewhere. No appkey is longer than 64 characters:
        # longer ones share a key (bounded size), and a space ends every address.
        return (
            (f"authfail:{client} {appkey[:65]}", self._per_pair),
            (f"authfail:{client}", self.per_client),
        )

    def authenticate(self, appkey: str, secretkey: str, client: str) -> Admitted | Denied:
        """``client`` is the caller's address, for the per-address failure limits."""
        now = self._clock()
        failure_keys = self.failure_keys(client, appkey)
        app = self.apps.get(appkey)
        # Hash the candidate even for an unknown appkey so timing does not reveal which.
        stored = app.secret_hash if app else "sha256$x$" + "0" * 64
        if not verify_secret(secretkey, stored) or app is None:
            # Counted unless a cap is already reached (a refused guess must not push its
            # own lock-out further out), by the statements a right secret's lock-out takes:
            # the same answer in the same time tells a locked-out guesser nothing.
            (pair, per_pair), (address, per_address) = failure_keys
            counted = self.limiter.take(
                self.limiter.admission(pair, per_pair, failure_keys, self._clock)
            )
            if not counted.allowed:
                return Denied(counted)
            self.limiter.acquire(address, per_address, now)
            return Denied()
        # A locked-out address gets the same answer with the right secret as with a wrong
        # one; checking that and taking the request's token is one statement, on
        # PostgreSQL usually the one that reads the query API's page too.
        admission = self.limiter.admission(
            f"query:{app.appkey}", Quota.per_second(app.rate_limit), failure_keys, self._clock
        )
        if app.disabled:
            # As a wrong secret would answer, but not a failure: its client polling on
            # must not lock out the others at its address. Its token is taken as any
            # request's is, so a locked-out address hears what a wrong secret hears.
            decision = self.limiter.take(admission)
            return Denied(decision if decision.locked_out else None)
        return Admitted(app, admission)

    @property
    def operator_configured(self) -> bool:
        """Whether the operator set an operator token (there is no default)."""
        return self._operator_token is not None

    def authenticate_operator(self, token: str, client: str) -> Denied | None:
        """None when ``token`` is the operator token and ``client`` is not locked out;
        a wrong token counts against the address's failure limit. Only when
        :attr:`operator_configured`."""
        assert self._operator_token is not None
        # Wrong tokens count against the address's failed-authentication limit the query
        # API keeps, and a locked-out address is told so whatever it sends.
        key, quota = f"authfail:{client}", self.per_client
        now = self._clock()
        if not hmac.compare_digest(
            token.encode(), self._operator_token.get_secret_value().encode()
        ):
            counted = self.limiter.acquire(key, quota, now)
            return Denied(None if counted.allowed else counted)
        lockout = self.limiter.lockout([(key, quota)], now)
        return None if lockout is None else Denied(lockout)


def failure_quota(failures: int, window: float) -> Quota:
    """``failures`` at once, refilled evenly over ``window`` seconds."""
    return Quota(failures / window, burst=failures)
