"""``voicecdr serve`` as operators run it: real processes, real sockets on 127.0.0.1."""

from __future__ import annotations

import time
from contextlib import closing
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.acceptance.conftest import Cli
from voicecdr.storage import Database
from voicecdr.timefmt import zone


def window() -> dict[str, str]:
    now = datetime.now(zone("Asia/Shanghai"))
    return {
        "start_time": (now - timedelta(hours=24)).strftime("%Y-%m-%d %H:%M:%S"),
        "end_time": now.strftime("%Y-%m-%d %H:%M:%S"),
    }


def demo_query(**overrides: str) -> dict[str, str]:
    return {
        "appkey": "demo",
        "secretkey": "demo-secret",
        "voiceType": "0",
        "page_size": "5",
        "page": "1",
        **window(),
        **overrides,
    }


def test_serve_answers_the_demo_query(cli: Cli, serve: Any) -> None:
    assert cli("demo", "--count", "500", "--seed", "1").code == 0
    server = serve()
    response = httpx.post(f"{server.url}/api/voiceSms/getVoiceCdr", data=demo_query())
    body = response.json()
    assert body["code"] == "1", body
    assert body["info"]["total"] > 50
    assert len(body["info"]["rows"]) == 5
    # The demo app's 5 requests a second come as a burst: a client may fetch pages back to
    # back (4 more here; a real clock, so only what cannot be slow is asserted).
    with httpx.Client(base_url=server.url) as client:
        for page in range(2, 6):
            answer = client.post("/api/voiceSms/getVoiceCdr", data=demo_query(page=str(page)))
            assert answer.json()["code"] == "1", answer.json()
    # The access log line is written after the answer is sent: give it a moment.
    deadline = time.monotonic() + 5
    while '"path":"/api/voiceSms/getVoiceCdr"' not in (logs := server.logs()):
        assert time.monotonic() < deadline, logs
        time.sleep(0.05)
    assert "demo-secret" not in logs


def test_rate_limit_holds_across_worker_processes(cli: Cli, serve: Any) -> None:
    assert cli("demo", "--count", "50", "--seed", "1").code == 0
    assert cli("apps", "update", "demo", "--rate-limit", "0.2").code == 0  # one per 5 s
    server = serve("--workers", "2")
    outcomes = []
    for _ in range(8):
        # A new connection each time, so requests spread over both workers.
        with httpx.Client() as client:
            body = client.post(f"{server.url}/api/voiceSms/getVoiceCdr", data=demo_query()).json()
        outcomes.append(body.get("error", "ok"))
    assert outcomes.count("ok") == 1, outcomes
    assert outcomes.count("rate_limited") == 7
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'outcome="rate_limited"' in metrics


def test_serve_refuses_an_unmigrated_database(fresh_cli: Cli) -> None:
    result = fresh_cli("serve", "--port", "0", timeout=60)
    assert result.code == 1
    assert "run `voicecdr db upgrade`" in result.err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_x_forwarded_for_is_trusted_only_from_proxies_the_operator_names(
    cli: Cli, serve: Any
) -> None:
    assert cli("demo", "--count", "5", "--seed", "1").code == 0
    cli.env["VOICECDR_AUTH_FAILURES_PER_CLIENT"] = "3"

    def ask(server: Any, forwarded_for: str, appkey: str = "demo", secret: str = "x") -> str:  # noqa: S107
        body = httpx.post(
            f"{server.url}/api/voiceSms/getVoiceCdr",
            data=demo_query(appkey=appkey, secretkey=secret),
            headers={"X-Forwarded-For": forwarded_for},
        ).json()
        return "ok" if body["code"] == "1" else str(body["info"])

    incorrect, locked = "appkey or secretkey is incorrect", "locked out after too many"
    # By default no peer is trusted, 127.0.0.1 included: three failures "from" three
    # addresses are three failures of 127.0.0.1, which is then locked out.
    server = serve()
    for i in range(3):
        assert ask(server, f"198.51.100.{i}", appkey=f"nope{i}") == incorrect
    assert ask(server, "198.51.100.50", secret="demo-secret").startswith(locked)
    server.stop()
    # With the peer named as a trusted proxy, the address it reports is the client's.
    cli.env["VOICECDR_TRUSTED_PROXIES"] = "127.0.0.1"
    cli.env["VOICECDR_RATE_LIMIT_STATE"] = str(cli.cwd / "fresh-ratelimit.sqlite")
    server = serve()
    for i in range(3):
        assert ask(server, "6.6.6.6, 198.51.100.7", appkey=f"nope{i}") == incorrect
    assert ask(server, "198.51.100.7", secret="demo-secret").startswith(locked)
    # What the client writes left of its proxy's entry changes nothing.
    assert ask(server, "1.1.1.1, 198.51.100.7", secret="demo-secret").startswith(locked)
    assert ask(server, "198.51.100.8", secret="demo-secret") == "ok"


def _readyz_until(server: Any, status: int, timeout: float = 40) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while (response := httpx.get(f"{server.url}/readyz")).status_code != status:
        assert time.monotonic() < deadline, (response.text, server.logs())
        time.sleep(0.1)
    return response


def test_a_crashing_rater_is_restarted_logged_and_reported_by_readyz(cli: Cli, serve: Any) -> None:
    cli.env["VOICECDR_ALLOW_PRIVATE_CALLBACKS"] = "true"
    made = cli("apps", "create", "--name", "A", "--callback-url", "http://127.0.0.1:9/dr")
    assert made.code == 0, made.err
    server = serve()
    url = cli.env["VOICECDR_DATABASE_URL"]
    corrupt = "UPDATE apps SET language = 'xx'"  # a row no version writes: every batch raises
    with closing(Database(url)) as db, db.writer.begin() as conn:
        conn.execute(sa.text(corrupt))
    failing = _readyz_until(server, 503).json()
    assert failing["detail"].startswith("worker rater is failing: ValueError: 'xx' is not a")
    logs = server.logs()
    assert "worker rater crashed; restarting it in 1 s (1 in a row)" in logs
    assert "Traceback" in logs
    assert "workers stopped" not in logs
    with closing(Database(url)) as db, db.writer.begin() as conn:
        conn.execute(sa.text("UPDATE apps SET language = 'en'"))
    assert _readyz_until(server, 200).json() == {"status": "ready"}
