"""``GET /v1/analytics``: one app's call figures (``voicecdr.analytics``), asked by the app
itself (HTTP basic ``appkey:secretkey``) or by the operator (``Bearer`` operator token and
``app=APPKEY``).

The endpoint reads the query string and headers on the event loop; authentication, the
rate limit, validation and the report run in one worker thread, since each is blocking
database I/O or CPU work. Errors are RFC 9457 problems; one about a parameter names it in
``parameter``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..analytics import AnalyticsError, parse_query, to_csv, to_json
from ..config import Settings
from ..errors import DatabaseUnavailable, StorageError
from ..models import App
from ..ratelimit import Decision
from ..storage import ReportReader
from ..timefmt import zone
from .appauth import Admitted, AppAuthenticator
from .clientaddr import ClientAddress
from .problems import OUTAGE_RETRY_AFTER, problem

log = logging.getLogger("voicecdr.api.analytics")

FORMATS = ("json", "csv")
BASIC_CHALLENGE = 'Basic realm="voicecdr"'
BEARER_CHALLENGE = 'Bearer realm="voicecdr"'


@dataclass(frozen=True, slots=True)
class Asked:
    """What the service needs of a request: its parameters (in order, repeats kept), its
    ``Authorization`` and ``Accept`` headers, and the client's address."""

    params: Sequence[tuple[str, str]]
    authorization: str
    accept: str
    client: str


@dataclass(frozen=True, slots=True)
class Answer:
    response: Response
    appkey: str | None = None  # the app whose figures were asked for, once known


class _Refused(Exception):
    """A request answered with a problem."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.response.status_code)
        self.answer = answer


def _refuse(
    status: int,
    title: str,
    detail: str,
    *,
    appkey: str | None = None,
    headers: dict[str, str] | None = None,
    parameter: str | None = None,
) -> _Refused:
    extra = {} if parameter is None else {"parameter": parameter}
    response = problem(status, title, detail, **extra)
    response.headers.update(headers or {})
    return _Refused(Answer(response, appkey))


def _bad(parameter: str, detail: str, appkey: str | None = None) -> _Refused:
    return _refuse(400, "Bad Request", detail, appkey=appkey, parameter=parameter)


def _locked_out(decision: Decision) -> _Refused:
    """As the query API says it: the same whether the credentials were right."""
    wait = decision.retry_after_header
    return _refuse(
        429,
        "Too Many Requests",
        f"locked out after too many failed attempts from this address; retry after {wait} seconds",
        headers={"Retry-After": wait},
    )


class AnalyticsService:
    """Authenticates, limits, validates and answers one request; blocking, thread-safe."""

    def __init__(
        self,
        reports: ReportReader,
        auth: AppAuthenticator,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reports = reports
        self._auth = auth
        self._clock = clock

    def answer(self, asked: Asked) -> Answer:
        try:
            params = _single(asked.params)
            app = self._app(asked, params)
            return Answer(self._report(app, params, asked.accept), app.appkey)
        except _Refused as refused:
            return refused.answer
        except DatabaseUnavailable as exc:
            log.error("analytics failed: database unavailable", extra={"reason": str(exc)})
            return _refuse(
                503,
                "Service Unavailable",
                "the database is unavailable; retry later",
                headers={"Retry-After": OUTAGE_RETRY_AFTER},
            ).answer
        except StorageError:
            log.exception("analytics failed in storage")
            return _refuse(500, "Internal Server Error", "internal error, please retry").answer

    # -- who asks ----------------------------------------------------------------------

    def _app(self, asked: Asked, params: dict[str, str]) -> App:
        """The app whose figures the credentials may read, its request token taken."""
        scheme, _, credentials = asked.authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            return self._operator(credentials.strip(), params, asked.client)
        appkey, secretkey = _basic(scheme, credentials)
        verdict = self._auth.authenticate(appkey, secretkey, asked.client)
        if not isinstance(verdict, Admitted):
            if verdict.lockout is not None:
                raise _locked_out(verdict.lockout)
            raise _refuse(
                401,
                "Unauthorized",
                "appkey or secretkey is incorrect: send them as HTTP basic credentials "
                "(appkey:secretkey)",
                headers={"WWW-Authenticate": BASIC_CHALLENGE},
            )
        app = verdict.app
        decision = self._auth.limiter.take(verdict.admission)
        if not decision.allowed:
            if decision.locked_out:
                raise _locked_out(decision)
            raise _refuse(
                429,
                "Too Many Requests",
                "appkey access rate limit",
                appkey=app.appkey,
                headers={"Retry-After": decision.retry_after_header},
            )
        named = params.get("app")
        if named is not None and named != app.appkey:
            raise _refuse(
                403,
                "Forbidden",
                "an app's credentials read only its own figures: leave out app, or name "
                "the app they are for",
                appkey=app.appkey,
                parameter="app",
            )
        return app

    def _operator(self, token: str, params: dict[str, str], client: str) -> App:
        if not self._auth.operator_configured:
            raise _refuse(
                503,
                "Service Unavailable",
                "operator access is not configured: the operator must set "
                "VOICECDR_OPERATOR_TOKEN (apps use their appkey and secretkey)",
            )
        denied = self._auth.authenticate_operator(token, client)
        if denied is not None:
            if denied.lockout is not None:
                raise _locked_out(denied.lockout)
            raise _refuse(
                401,
                "Unauthorized",
                "wrong operator token: send Authorization: Bearer <VOICECDR_OPERATOR_TOKEN>",
                headers={"WWW-Authenticate": BEARER_CHALLENGE},
            )
        appkey = params.get("app", "").strip()
        if not appkey:
            raise _bad("app", "app is required with the operator token: app=APPKEY")
        app = self._auth.apps.get(appkey)
        if app is None:
            raise _refuse(404, "Not Found", f"no app {appkey!r}", parameter="app")
        return app

    # -- the answer --------------------------------------------------------------------

    def _report(self, app: App, params: dict[str, str], accept: str) -> Response:
        fmt = params.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise _bad("format", "format must be json or csv", app.appkey)
        try:
            query = parse_query(params, zone(app.timezone))
            report = self._reports.report(app, query)
        except AnalyticsError as exc:
            raise _bad(exc.parameter, str(exc), app.appkey) from None
        if fmt == "csv" or (fmt is None and _prefers_csv(accept)):
            return Response(
                to_csv(report),
                media_type="text/csv; charset=utf-8",
                headers={
                    "Content-Disposition": f'attachment; filename="analytics-{app.appkey}.csv"'
                },
            )
        return Response(orjson.dumps(to_json(report)), media_type="application/json")


def _single(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The parameters by name; a repeated one is refused (which value would count?)."""
    counts = Counter(name for name, _ in pairs)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise _bad(repeated[0], f"{repeated[0]} is given more than once: give it once")
    # No stored text holds one (PostgreSQL refuses it in a statement).
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise _bad(name, f"{name!r} must not contain a NUL character")
    return dict(pairs)


def _basic(scheme: str, credentials: str) -> tuple[str, str]:
    """appkey and secretkey from HTTP basic credentials; a 401 when there are none."""
    if scheme.lower() == "basic":
        try:
            text = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, ValueError):
            text = ""
        appkey, colon, secretkey = text.partition(":")
        if appkey and colon and "\x00" not in text:
            return appkey, secretkey
    raise _refuse(
        401,
        "Unauthorized",
        "send the app's appkey:secretkey as HTTP basic credentials, or the operator token "
        "as Authorization: Bearer <token>",
        headers={"WWW-Authenticate": BASIC_CHALLENGE},
    )


def _prefers_csv(accept: str) -> bool:
    """Whether ``Accept`` ranks text/csv above application/json (JSON wins ties)."""
    return _quality(accept, "text/csv") > _quality(accept, "application/json")


def _quality(accept: str, media: str) -> float:
    """The q ``accept`` gives ``media``: its most specific matching range's."""
    kind = media.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for item in accept.split(","):
        range_, *options = (part.strip() for part in item.split(";"))
        specificity = {media: 2, f"{kind}/*": 1, "*/*": 0}.get(range_.lower())
        if specificity is None or specificity < best[0]:
            continue
        q = 1.0
        for option in options:
            name, _, value = option.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        best = (specificity, q)
    return best[1]


class AnalyticsEndpoint:
    """The route's handler: the request read on the event loop, answered in a thread."""

    def __init__(self, service: AnalyticsService, settings: Settings) -> None:
        self._service = service
        self._client_address = ClientAddress(settings.trusted_proxies)

    async def get(self, request: Request) -> Response:
        asked = Asked(
            request.query_params.multi_items(),
            request.headers.get("authorization", ""),
            request.headers.get("accept", ""),
            self._client_address.of(request) or "unknown",
        )
        answer = await run_in_threadpool(self._service.answer, asked)
        request.state.appkey = answer.appkey
        # Figures change with every call stored; and a refusal is about this moment.
        answer.response.headers["Cache-Control"] = "no-store"
        return answer.response
