"""Signing in and out, the language switch and the operator's app switch.

A customer signs in with its appkey and secretkey, checked by the API's own
:class:`~voicecdr.api.appauth.AppAuthenticator`; the operator with the operator token.
Both count against the failed-authentication limits the API keeps, per address.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..api.appauth import Admitted
from ..ratelimit import Decision
from . import i18n
from .session import Role, Session
from .web import PREFIX, SECURITY_HEADERS, Console, Refused, page


def routes(console: Console) -> list[BaseRoute]:
    wrap = page(console)

    async def home(request: Request) -> Response:
        signed_in = console.session(request)
        where = "overview" if signed_in and signed_in.signed_in_as else "signin"
        return _redirect(f"{PREFIX}/{where}")

    async def signin_form(request: Request) -> Response:
        session = console.session(request)
        if session is not None and session.signed_in_as is not None:
            return _redirect(f"{PREFIX}/overview")
        return _form(request, session or Session.anonymous(console.clock()))

    def _form(
        request: Request,
        session: Session,
        error: str | None = None,
        status: int = 200,
        **values: object,
    ) -> Response:
        response = console.render(
            request,
            "signin.html",
            {
                "error": error,
                "values": values,
                "operator_on": console.auth.operator_configured,
                "appkey": "",
            },
            session=session,
            status=status,
        )
        console.set_session(request, response, session)
        return response

    async def signin(request: Request) -> Response:
        session = console.session(request)
        form = await request.form()
        if session is None:
            raise Refused(403, "error.csrf")  # no pre-session token to check against
        console.check_csrf(request, session, form)
        client = console.client_address.of(request) or "unknown"
        kind = form.get("kind")
        if kind == "operator":
            token = str(form.get("token", ""))
            if not console.auth.operator_configured:
                return _form(request, session, "signin.operator_off", 503)
            denied = await run_in_threadpool(console.auth.authenticate_operator, token, client)
            if denied is not None:
                if denied.lockout is not None:
                    return _locked_out(request, session, denied.lockout)
                return _form(request, session, "signin.wrong_operator", 401)
            listed = await run_in_threadpool(console.apps.list)
            first = listed[0].appkey if listed else None
            bound = console.operator_credential()
            assert bound is not None  # operator_configured
            fresh = Session.signed_in(Role.OPERATOR, first, console.clock(), session.lang, bound)
            return _signed_in(request, fresh)
        appkey, secretkey = str(form.get("appkey", "")), str(form.get("secretkey", ""))
        verdict = await run_in_threadpool(console.auth.authenticate, appkey, secretkey, client)
        if not isinstance(verdict, Admitted):
            if verdict.lockout is not None:
                return _locked_out(request, session, verdict.lockout)
            return _form(request, session, "signin.wrong", 401)
        # The request's token, as the API takes it: a locked-out address is refused here
        # whatever the secret.
        decision = await run_in_threadpool(console.auth.limiter.take, verdict.admission)
        if not decision.allowed:
            if decision.locked_out:
                return _locked_out(request, session, decision)
            return _form(request, session, "signin.busy", 429, wait=decision.retry_after_header)
        fresh = Session.signed_in(
            Role.CUSTOMER,
            verdict.app.appkey,
            console.clock(),
            session.lang,
            console.app_credential(verdict.app),
        )
        return _signed_in(request, fresh)

    def _locked_out(request: Request, session: Session, decision: Decision) -> Response:
        response = _form(
            request, session, "signin.locked_out", 429, wait=decision.retry_after_header
        )
        response.headers["Retry-After"] = decision.retry_after_header
        return response

    def _signed_in(request: Request, session: Session) -> Response:
        response = _redirect(f"{PREFIX}/overview")
        console.set_session(request, response, session)
        return response

    async def signout(request: Request) -> Response:
        session = console.session(request)
        if session is None:
            return _redirect(f"{PREFIX}/signin")
        console.check_csrf(request, session, await request.form())
        response = _redirect(f"{PREFIX}/signin")
        console.set_session(request, response, Session.anonymous(console.clock(), session.lang))
        return response

    async def language(request: Request) -> Response:
        session = console.session(request) or Session.anonymous(console.clock())
        form = await request.form()
        console.check_csrf(request, session, form)
        lang = i18n.language(str(form.get("lang", "")), "en")
        response = _redirect(_back(form.get("next")))
        console.set_session(request, response, session.with_lang(lang))
        return response

    async def switch(request: Request) -> Response:
        view, form = await console.posted(request)
        if not view.is_operator:
            raise Refused(403, "error.forbidden")
        response = _redirect(_back(form.get("next")))
        console.set_session(request, response, view.session.with_app(view.app.appkey))
        return response

    return [
        Route("/", wrap(home), methods=["GET"]),  # /console itself: see mount()
        Route("/signin", wrap(signin_form), methods=["GET"]),
        Route("/signin", wrap(signin), methods=["POST"]),
        Route("/signout", wrap(signout), methods=["POST"]),
        Route("/lang", wrap(language), methods=["POST"]),
        Route("/switch", wrap(switch), methods=["POST"]),
    ]


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def _back(target: object) -> str:
    """Where a form's ``next`` says to go back to: a console path only (no open redirect)."""
    if isinstance(target, str) and target.startswith(PREFIX + "/") and "//" not in target:
        return target
    return f"{PREFIX}/overview"
