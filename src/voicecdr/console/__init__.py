"""The web console at ``/console``: server-rendered pages (Jinja2, htmx) for an app's
customers and the operator, every asset shipped in this package (``static/``).

How a page plugs in: a module under ``console/pages/`` exports
``routes(console: Console) -> list[BaseRoute]`` and is named in :data:`PAGES`. Its
handlers are wrapped with ``page(console)`` (``web.py``), and begin with
``view = await console.view(request)`` (a GET) or
``view, form = await console.posted(request)`` (a POST: its CSRF token checked). The
view's ``app`` is the only app the page may show or change: a customer's own app whatever
the URL or form names (naming another is a 404), the operator's chosen app (switched in
the layout, or named by ``app=``). The two pages that must work before any app exists
(the Apps list, a new app) take ``console.operator_view`` / ``operator_posted`` instead:
an operator-only view whose ``app`` may be None. Render with
``console.render(request, "page.html", {...}, view=view)``, a template extending
``base.html``; its words go in ``i18n.py``, in English and Chinese. Every form posts
``csrf`` (``{{ session.csrf }}``; htmx requests send it as the ``X-CSRF-Token`` header the
layout sets on ``<body>``); blocking work (the database) runs in a thread
(``run_in_threadpool``). The layout's navigation is :data:`web.NAV`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..api.appauth import AppAuthenticator
from ..config import Settings
from ..storage import Database
from . import signin
from .pages import apps, calls, overview, rates, receipts
from .web import PREFIX, STATIC, Console

PAGES = (overview, calls, receipts, rates, apps)


def console_key(settings: Settings, db: Database) -> str:
    """The session-signing key: the setting's, else the one kept in the database."""
    if settings.console_secret_key is not None:
        return settings.console_secret_key.get_secret_value()
    from ..storage import console_key as stored

    return stored(db)


def mount(
    db: Database,
    settings: Settings,
    auth: AppAuthenticator,
    clock: Callable[[], float] = time.time,
) -> list[BaseRoute]:
    """The console's routes under ``/console``, its assets under ``/console/static``."""
    console = Console(db, settings, auth, LazyKey(settings, db).get, clock)
    routes: list[BaseRoute] = [
        Mount("/static", StaticFiles(directory=STATIC), name="console-static"),
        *signin.routes(console),
    ]
    for module in PAGES:
        routes.extend(module.routes(console))
    mounted = Mount(PREFIX, routes=routes)
    # ``/console`` itself (a Mount matches only what is under it) is its home page.
    home = next(r for r in routes if isinstance(r, Route) and r.path == "/")
    return [Route(PREFIX, home.endpoint, methods=["GET"]), mounted]


class LazyKey:
    """The key, read from the database on first use (not when the app is built, which
    must not need a migrated database)."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self._db = db
        self._key: str | None = None

    def get(self) -> str:
        if self._key is None:
            self._key = console_key(self._settings, self._db)
        return self._key
