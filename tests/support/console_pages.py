"""The console's pages under test: a TestClient on the real app and database, signed in
as a customer or as the operator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.testclient import TestClient

from tests.support.console import csrf_of, customer, operator
from voicecdr.api import create_app
from voicecdr.config import Settings
from voicecdr.storage import Database

OPERATOR = "operator-Token-0123456789"


def tuned(settings: Settings, **changes: Any) -> Settings:
    """Settings with an operator token, no app cache (pages see changes at once) and
    private callback addresses allowed (receivers listen on 127.0.0.1)."""
    update = {
        "operator_token": Settings(operator_token=OPERATOR).operator_token,
        "app_cache_seconds": 0,
        "allow_private_callbacks": True,
        **changes,
    }
    return settings.model_copy(update=update)


@contextmanager
def signed_in(
    settings: Settings, db: Database, appkey: str | None = None, secretkey: str = ""
) -> Iterator[TestClient]:
    """A client signed in as ``appkey``'s customer, or as the operator without one."""
    with TestClient(create_app(settings, db)) as client:
        answer = (
            operator(client, OPERATOR) if appkey is None else customer(client, appkey, secretkey)
        )
        assert answer.status_code == 303, answer.text
        yield client


def post_form(client: TestClient, page: str, action: str, **fields: str) -> Any:
    """Open ``page``, then post ``fields`` to ``action`` with the page's CSRF token."""
    opened = client.get(page)
    assert opened.status_code == 200, opened.text
    return client.post(
        action, data={"csrf": csrf_of(opened.text), **fields}, follow_redirects=False
    )
