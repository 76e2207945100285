"""Driving the web console over HTTP (a TestClient or httpx client): its CSRF tokens
and sign-in, for the console's tests."""

from __future__ import annotations

import re

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token the page's forms carry."""
    found = CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


def sign_in(client: httpx.Client, **fields: str) -> httpx.Response:
    """Open the sign-in page, then post ``fields`` (``kind``, ``appkey`` and
    ``secretkey``, or ``token``) with its token; the answer, not followed."""
    form = client.get("/console/signin")
    assert form.status_code == 200, form.text
    data = {"csrf": csrf_of(form.text), "kind": "customer", **fields}
    return client.post("/console/signin", data=data, follow_redirects=False)


def customer(client: httpx.Client, appkey: str, secretkey: str) -> httpx.Response:
    return sign_in(client, kind="customer", appkey=appkey, secretkey=secretkey)


def operator(client: httpx.Client, token: str) -> httpx.Response:
    return sign_in(client, kind="operator", token=token)
