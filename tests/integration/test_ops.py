"""Health, readiness, metrics and the OpenAPI description."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from tests.support.data import make_app
from voicecdr.api import QUERY_PATH, create_app
from voicecdr.config import Settings
from voicecdr.rows import GROUP_CALL_FIELDS, VERIFICATION_FIELDS
from voicecdr.storage import Database


def test_health_and_readiness(settings: Settings, db: Database) -> None:
    with TestClient(create_app(settings, db)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}


def test_not_ready_when_schema_is_missing(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'empty.db'}",
        rate_limit_state=str(tmp_path / "rl.sqlite"),
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert "voicecdr db upgrade" in response.json()["detail"]
        assert client.get("/healthz").status_code == 200


def test_not_ready_when_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://nobody@127.0.0.1:1/none",
        rate_limit_state=str(tmp_path / "rl.sqlite"),
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["title"] == "Not ready"


def test_metrics_count_requests_by_route_and_outcome(settings: Settings, db: Database) -> None:
    with TestClient(create_app(settings, db)) as client:
        client.post(QUERY_PATH, data={"appkey": "x", "secretkey": "y"})
        text = client.get("/metrics").text
    assert (
        'voicecdr_http_requests_total{outcome="auth_failed",route="/api/voiceSms/getVoiceCdr"}'
        in text
    )
    assert "voicecdr_http_request_duration_seconds_bucket" in text


def test_unknown_routes_get_problem_json(settings: Settings, db: Database) -> None:
    with TestClient(create_app(settings, db)) as client:
        response = client.get("/nope")
        assert response.status_code == 404
        assert response.json() == {
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": "Not Found",
        }
        assert client.post("/healthz").status_code == 405


def test_openapi_describes_the_query_endpoint(settings: Settings, db: Database) -> None:
    settings = settings.model_copy(update={"max_page_size": 200})
    with TestClient(create_app(settings, db)) as client:
        doc = client.get("/openapi.json").json()
        assert "swagger-ui" in client.get("/docs").text
    operation = doc["paths"][QUERY_PATH]["post"]
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert set(form["required"]) == {
        "appkey",
        "secretkey",
        "voiceType",
        "start_time",
        "end_time",
        "page_size",
        "page",
    }
    assert form["properties"]["voiceType"]["enum"] == ["0", "1"]
    assert form["properties"]["page_size"]["description"] == "1 to 200 rows per page."
    schemas = doc["components"]["schemas"]
    assert schemas["GroupCallRow"]["required"] == list(GROUP_CALL_FIELDS)
    assert schemas["VerificationRow"]["required"] == list(VERIFICATION_FIELDS)
    assert set(schemas["Failure"]["properties"]["error"]["enum"]) == {
        "auth_failed",
        "invalid_parameter",
        "range_too_large",
        "out_of_window",
        "rate_limited",
        "internal",
    }


def _wait_for(client: TestClient, status: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/readyz")
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            return dict(response.json())
        time.sleep(0.05)


def test_a_crashing_worker_is_restarted_and_readyz_says_so_until_it_runs_again(
    settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A corrupt app row (a language no version writes) makes every rater batch raise."""
    app = make_app(db, "app1", callback_url="https://hooks.example.com/dr").app
    with TestClient(create_app(settings, db, workers=True)) as client:
        _wait_for(client, 200)
        with db.writer.begin() as conn:
            conn.execute(sa.text("UPDATE apps SET language = 'xx' WHERE id = :id"), {"id": app.id})
        body = _wait_for(client, 503)
        assert body["title"] == "Not ready"
        assert body["detail"].startswith("worker rater is failing: ValueError: 'xx' is not a")
        assert body["workers"]["rater"].startswith("ValueError: 'xx' is not a")
        crashes = [r for r in caplog.records if r.name == "voicecdr.workers" and r.exc_info]
        assert crashes, caplog.text
        assert crashes[0].getMessage().startswith("worker rater crashed; restarting it in 1 s")
        assert "/readyz" in crashes[0].getMessage()
        with db.writer.begin() as conn:
            conn.execute(sa.text("UPDATE apps SET language = 'en' WHERE id = :id"), {"id": app.id})
        assert _wait_for(client, 200) == {"status": "ready"}
