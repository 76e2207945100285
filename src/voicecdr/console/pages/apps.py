"""Apps, for the operator only (a customer gets 404, as for a page that does not exist):
the list, creating an app, rotating a secret and setting the callback URL.

Every change goes through ``voicecdr.apps`` (what ``voicecdr apps`` runs), so the
console checks exactly what the CLI checks. A new or rotated secret is shown once, in
the answer to the POST that made it (never a redirect, a URL or a log line: pages are
``Cache-Control: no-store``); only its hash is kept.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ... import apps
from ...errors import ConfigError, Conflict, ValidationError
from ...models import Language
from ..web import Console, OperatorView, Refused, View, page

CREATED_FIELDS = ("name", "appkey", "timezone", "language", "callback_url")


def routes(console: Console) -> list[BaseRoute]:
    wrap = page(console)
    check = apps.CallbackCheck(console.settings.allow_private_callbacks)

    async def operator_app_view(request: Request) -> View:
        view = await console.view(request)
        if not view.is_operator:
            raise Refused(404, "error.not_found")
        return view

    async def operator_app_post(request: Request) -> tuple[View, FormData]:
        view, form = await console.posted(request)
        if not view.is_operator:
            raise Refused(404, "error.not_found")
        return view, form

    async def listing(request: Request) -> Response:
        view = await console.operator_view(request)  # no app needed: there may be none yet
        rows = [apps.public_view(a) for a in view.choices]  # every app, as the view read them
        return console.render(request, "apps.html", {"apps": rows}, view=view)

    def new_form(
        request: Request,
        view: OperatorView,
        values: dict[str, str],
        problem: str = "",
        status: int = 200,
    ) -> Response:
        context = {
            "values": values,
            "problem": problem,
            "app_languages": [x.value for x in Language],
            "default_timezone": console.settings.timezone,
            "first": not view.choices,  # no app yet: the operator was sent here
        }
        return console.render(request, "app_new.html", context, view=view, status=status)

    async def new(request: Request) -> Response:
        view = await console.operator_view(request)
        return new_form(request, view, dict.fromkeys(CREATED_FIELDS, ""))

    async def create(request: Request) -> Response:
        view, form = await console.operator_posted(request)
        values = {k: str(form.get(k, "")).strip() for k in CREATED_FIELDS}
        given = {k: v or None for k, v in values.items() if k != "name"}
        try:
            issued = await run_in_threadpool(_create, console, check, values["name"], given)
        except (ValidationError, Conflict) as exc:
            return new_form(
                request, view, values, str(exc), 409 if isinstance(exc, Conflict) else 400
            )
        return console.render(
            request, "app_secret.html", {"issued": issued.to_dict(), "created": True}, view=view
        )

    async def rotate_form(request: Request) -> Response:
        view = await operator_app_view(request)
        return console.render(request, "app_rotate.html", {"target": view.app}, view=view)

    async def rotate(request: Request) -> Response:
        view, form = await operator_app_post(request)
        signing = form.get("which") == "signing"
        issued = await run_in_threadpool(
            lambda: apps.rotate_secret(console.apps, view.app.appkey, signing=signing)
        )
        return console.render(
            request,
            "app_secret.html",
            {"issued": issued.to_dict(), "created": False, "signing": signing},
            view=view,
        )

    def callback_page(
        request: Request,
        view: View,
        url: str,
        problem: str = "",
        status: int = 200,
        saved: bool = False,
    ) -> Response:
        context = {"target": view.app, "url": url, "problem": problem, "saved": saved}
        return console.render(request, "app_callback.html", context, view=view, status=status)

    async def callback_form(request: Request) -> Response:
        view = await operator_app_view(request)
        current = await run_in_threadpool(console.apps.get, view.app.appkey)
        url = current.callback_url if current is not None else None
        return callback_page(request, view, url or "")

    async def set_callback(request: Request) -> Response:
        view, form = await operator_app_post(request)
        url = str(form.get("callback_url", "")).strip()
        try:
            await run_in_threadpool(
                lambda: apps.update_app(
                    console.apps, view.app.appkey, check_callback=check, callback_url=url
                )
            )
        except (ValidationError, ConfigError) as exc:
            return callback_page(request, view, url, str(exc), 400)
        return callback_page(request, view, url, saved=True)

    return [
        Route("/apps", wrap(listing), methods=["GET"]),
        Route("/apps/new", wrap(new), methods=["GET"]),
        Route("/apps/new", wrap(create), methods=["POST"]),
        Route("/apps/rotate", wrap(rotate_form), methods=["GET"]),
        Route("/apps/rotate", wrap(rotate), methods=["POST"]),
        Route("/apps/callback", wrap(callback_form), methods=["GET"]),
        Route("/apps/callback", wrap(set_callback), methods=["POST"]),
    ]


def _create(
    console: Console,
    check: apps.CallbackCheck,
    name: str,
    given: dict[str, Any],
) -> apps.IssuedCredentials:
    return apps.create_app(
        console.apps,
        name=name,
        default_timezone=console.settings.timezone,
        check_callback=check,
        **given,
    )
