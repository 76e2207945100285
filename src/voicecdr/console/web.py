"""What every console page shares: the signed-in session and the app it may see, CSRF
checks, and rendering a template in the session's language.

A page handler gets the signed-in view with :meth:`Console.view` (GET) or
:meth:`Console.posted` (POST, CSRF checked) and renders with :meth:`Console.render`;
:func:`page` turns the refusals they raise into the right answer (a sign-in redirect,
or an error page with 403/404/503).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..api.appauth import AppAuthenticator
from ..api.clientaddr import ClientAddress
from ..config import Settings
from ..errors import DatabaseUnavailable
from ..models import App
from ..storage import AppStore, Database, ReportReader
from ..timefmt import zone
from . import i18n
from .session import COOKIE, LIFETIME, Role, Session, SessionCodec

log = logging.getLogger("voicecdr.console")

PREFIX = "/console"
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# The navigation: (path under /console, catalog key, operator only).
NAV = (
    ("/overview", "nav.overview", False),
    ("/calls", "nav.calls", False),
    ("/receipts", "nav.receipts", False),
    ("/rates", "nav.rates", False),
    ("/apps", "nav.apps", True),
)

# The browser may run only our own files; no page may be framed (clickjacking).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Refused(Exception):
    """A request the console answers with an error page: ``message`` is a catalog key."""

    def __init__(self, status: int, message: str, **values: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.values = values


class SignInNeeded(Exception):
    """No signed-in session: the answer is a redirect to the sign-in page."""


class Redirect(Exception):
    """A page that cannot be shown yet: the answer is a 303 to ``location``."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@dataclass(frozen=True, slots=True)
class View:
    """A signed-in request: its session and the app it may see (a customer's own app,
    whatever the URL or form says; the operator's chosen one)."""

    session: Session
    app: App
    choices: tuple[App, ...] = ()  # the operator's apps to switch between

    @property
    def is_operator(self) -> bool:
        return self.session.role is Role.OPERATOR

    @property
    def lang(self) -> str:
        return i18n.language(self.session.lang, self.app.language.value)


@dataclass(frozen=True, slots=True)
class OperatorView:
    """The operator's view of the pages that need no app (the Apps list, a new app):
    the chosen app, None while there is none yet."""

    session: Session
    app: App | None
    choices: tuple[App, ...] = ()

    @property
    def is_operator(self) -> bool:
        return True  # as View's, for the layout

    @property
    def lang(self) -> str:
        default = self.app.language.value if self.app is not None else "en"
        return i18n.language(self.session.lang, default)


class Console:
    """The console's shared parts, built once by :func:`voicecdr.console.routes`."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        auth: AppAuthenticator,
        key: Callable[[], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.settings = settings
        self.auth = auth
        self.apps = AppStore(db)
        self.reports = ReportReader(db)
        self.codec = SessionCodec(key)
        self.clock = clock
        self.client_address = ClientAddress(settings.trusted_proxies)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    # -- sessions ------------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        """The request's valid session, if it has one."""
        value = request.cookies.get(COOKIE)
        return None if value is None else self.codec.decode(value, self.clock())

    def set_session(self, request: Request, response: Response, session: Session) -> None:
        """The session as the response's cookie: HttpOnly, SameSite=Lax, Path=/console,
        Secure on https, ending when the session does."""
        response.set_cookie(
            COOKIE,
            self.codec.encode(session),
            max_age=max(0, min(LIFETIME, session.expires - int(self.clock()))),
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="lax")

    def require_session(self, request: Request) -> Session:
        """The signed-in session, or :class:`SignInNeeded`. An operator's session ends
        when the operator token changes (a customer's is checked with its app)."""
        session = self.session(request)
        if session is None or session.signed_in_as is None:
            raise SignInNeeded
        if session.role is Role.OPERATOR:
            bound = self.operator_credential()
            if bound is None or session.credential != bound:
                raise SignInNeeded
        return session

    def operator_credential(self) -> str | None:
        """The fingerprint an operator's session is bound to (None: no operator token)."""
        token = self.settings.operator_token
        if token is None:
            return None
        return self.codec.fingerprint("operator", token.get_secret_value())

    def app_credential(self, app: App) -> str:
        """The fingerprint a customer's session is bound to: of its app's stored secret
        hash, so rotating the secretkey ends the sessions signed in with the old one."""
        return self.codec.fingerprint("app", f"{app.appkey}\x00{app.secret_hash}")

    async def view(self, request: Request, wanted: str | None = None) -> View:
        """The signed-in view of a GET: the app named by ``wanted`` (else the ``app``
        query parameter, else the session's) if the session may see it. A customer
        naming another app gets 404, as if it did not exist."""
        session = self.require_session(request)
        if wanted is None:
            wanted = request.query_params.get("app")
        return await run_in_threadpool(self._view, session, wanted)

    async def posted(self, request: Request) -> tuple[View, FormData]:
        """A signed-in POST's view and form, its CSRF token checked first (403)."""
        session, form, wanted = await self._checked_post(request)
        return await run_in_threadpool(self._view, session, wanted), form

    async def operator_view(self, request: Request) -> OperatorView:
        """The operator's view of a GET of a page that needs no app; 404 for a customer."""
        session = self.require_session(request)
        wanted = request.query_params.get("app")
        return await run_in_threadpool(self._operator_view, session, wanted)

    async def operator_posted(self, request: Request) -> tuple[OperatorView, FormData]:
        """:meth:`operator_view` for a POST, its CSRF token checked first (403)."""
        session, form, wanted = await self._checked_post(request)
        return await run_in_threadpool(self._operator_view, session, wanted), form

    async def _checked_post(self, request: Request) -> tuple[Session, FormData, str | None]:
        session = self.require_session(request)
        form = await request.form()
        self.check_csrf(request, session, form)
        wanted = form.get("app")
        return session, form, wanted if isinstance(wanted, str) else None

    @staticmethod
    def check_csrf(request: Request, session: Session, form: FormData) -> None:
        """403 unless the form's ``csrf`` field (or, from htmx, the ``X-CSRF-Token``
        header the layout sets) is the session's token."""
        given = form.get("csrf") or request.headers.get("x-csrf-token")
        if not isinstance(given, str) or not hmac.compare_digest(
            given.encode(), session.csrf.encode()
        ):
            raise Refused(403, "error.csrf")

    def _view(self, session: Session, wanted: str | None) -> View:
        if session.role is Role.CUSTOMER:
            assert session.app is not None
            if wanted is not None and wanted != session.app:
                raise Refused(404, "error.not_found")
            # Read afresh (not the API's cache): a rotation or disable ends it at once.
            app = self.apps.get(session.app)
            if app is None or app.disabled or session.credential != self.app_credential(app):
                raise SignInNeeded  # deleted, disabled or its secret rotated since
            return View(session, app)
        chosen = self._operator_view(session, wanted)
        if chosen.app is None:  # no app yet: the first one is to be made
            raise Redirect(f"{PREFIX}/apps/new")
        return View(session, chosen.app, chosen.choices)

    def _operator_view(self, session: Session, wanted: str | None) -> OperatorView:
        if session.role is not Role.OPERATOR:
            self._view(session, None)  # a customer whose session ended signs in again
            raise Refused(404, "error.not_found")
        app = self.auth.apps.get(wanted or session.app or "")
        if app is None and wanted is not None:
            raise Refused(404, "error.not_found")
        listed = self.apps.list()
        if app is None and listed:  # none chosen yet, or the chosen one is gone: the first
            app = listed[0]
        return OperatorView(session, app, tuple(listed))

    # -- rendering -----------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any],
        *,
        view: View | OperatorView | None = None,
        session: Session | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        """``template`` with ``context`` and what the layout needs, in the language of
        the session (or the app's)."""
        session = view.session if view is not None else session
        chosen = session.lang if session is not None else None
        lang = view.lang if view is not None else i18n.language(chosen, "en")
        body = self.templates.get_template(template).render(
            {
                "t": i18n.translator(lang),
                "lang": lang,
                "languages": i18n.LANGUAGE_NAMES,
                "prefix": PREFIX,
                "path": request.url.path,
                "session": session,
                "view": view,
                "nav": [
                    (PREFIX + path, key)
                    for path, key, op in NAV
                    if view and (view.is_operator or not op)
                ],
                "operator_apps": view.choices if view is not None else (),
                **context,
            }
        )
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def local_time(self, epoch: int, app: App, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """``epoch`` as the app's wall-clock time."""
        return datetime.fromtimestamp(epoch, zone(app.timezone)).strftime(fmt)


Handler = Callable[[Request], Awaitable[Response]]


def page(console: Console) -> Callable[[Handler], Handler]:
    """Wraps a page handler: sign-in redirects and error pages for its refusals."""

    def wrap(handler: Handler) -> Handler:
        @wraps(handler)
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInNeeded:
                response = RedirectResponse(f"{PREFIX}/signin", status_code=303)
                response.headers.update(SECURITY_HEADERS)
                ended = console.session(request)
                if ended is not None and ended.signed_in_as is not None:
                    # A session that ended (rotated secret, disabled app, new operator
                    # token) is replaced, or the sign-in page would send it back here.
                    fresh = Session.anonymous(console.clock(), ended.lang)
                    console.set_session(request, response, fresh)
                return response
            except Redirect as redirect:
                response = RedirectResponse(redirect.location, status_code=303)
                response.headers.update(SECURITY_HEADERS)
                return response
            except Refused as refused:
                return error_page(console, request, refused)
            except DatabaseUnavailable as exc:
                log.error("console page failed: database unavailable", extra={"reason": str(exc)})
                return error_page(console, request, Refused(503, "error.unavailable"))

        return run

    return wrap


def error_page(console: Console, request: Request, refused: Refused) -> HTMLResponse:
    session = console.session(request)
    return console.render(
        request,
        "error.html",
        {"message": refused.message, "values": refused.values},
        session=session,
        status=refused.status,
    )
