"""``/docs`` works without internet: the page and every asset it loads come from our server."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

from starlette.testclient import TestClient

from voicecdr.api import create_app
from voicecdr.config import Settings
from voicecdr.storage import Database


class _References(HTMLParser):
    """Every URL the page makes a browser load or link to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v is not None]


def references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


def test_the_docs_page_loads_nothing_from_another_host(settings: Settings, db: Database) -> None:
    with TestClient(create_app(settings, db)) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "://" not in page.text, "an absolute URL in the page may point off the server"
        urls = references(page.text)
        assert any(u.endswith(".js") for u in urls)
        assert any(u.endswith(".css") for u in urls)
        for url in urls:
            parts = urlsplit(url)
            assert not parts.scheme, url
            assert not parts.netloc, url
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert asset.content, url
        bundle = next(u for u in urls if u.endswith("swagger-ui-bundle.js"))
        assert "SwaggerUIBundle" in client.get(bundle).text
        assert "javascript" in client.get(bundle).headers["content-type"]
        # Swagger UI reads the description from our own server, and asks no online validator.
        assert 'url: "/openapi.json"' in page.text
        assert "validatorUrl: null" in page.text


def test_the_shipped_swagger_ui_carries_its_license(settings: Settings, db: Database) -> None:
    with TestClient(create_app(settings, db)) as client:
        urls = references(client.get("/docs").text)
        folder = next(u for u in urls if u.endswith("swagger-ui-bundle.js")).rsplit("/", 1)[0]
        assert "Apache License" in client.get(f"{folder}/LICENSE").text
        assert "SmartBear" in client.get(f"{folder}/NOTICE").text


def test_the_shipped_files_are_all_it_serves(settings: Settings, db: Database) -> None:
    with TestClient(create_app(settings, db)) as client:
        for path in ("%2e%2e/ops.py", "..%2fops.py", "%2e%2e/%2e%2e/config.py", "nope.js", ""):
            response = client.get(f"/docs/swagger-ui/{path}")
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "application/problem+json", path
