"""No secret ever reaches a log line: a real ``voicecdr serve`` at DEBUG, driven through
every endpoint with every kind of secret (right and wrong, in bodies, query strings and
headers), a receipt signed and delivered, then its whole log grepped."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import orjson
import pytest

from tests.acceptance.conftest import Cli
from tests.acceptance.test_serve import demo_query
from tests.support import console
from tests.support import freeswitch as fs
from tests.support.data import canonical
from tests.support.receiver import receiving

TOKEN = "ingest-Token-Secret-0123456789"
FS_PASSWORD = "fs-Password-Secret-42"
SECRET = "tenant-Secretkey-Secret-77"
OPERATOR = "operator-Token-Secret-0123456789"
CONSOLE_KEY = "console-Signing-Key-Secret-0123456789"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_secret_in_any_log_line(cli: Cli, serve: Any) -> None:
    with receiving() as receiver:
        cli.env.update(
            VOICECDR_INGEST_TOKEN=TOKEN,
            VOICECDR_FREESWITCH_CREDENTIALS=f"switch:{FS_PASSWORD}",
            VOICECDR_ALLOW_PRIVATE_CALLBACKS="true",
            VOICECDR_LOG_LEVEL="DEBUG",
            VOICECDR_OPERATOR_TOKEN=OPERATOR,
            VOICECDR_CONSOLE_SECRET_KEY=CONSOLE_KEY,
        )
        created = cli(
            "apps",
            "create",
            "--name",
            "Logs",
            "--appkey",
            "logs",
            "--secretkey",
            SECRET,
            "--callback-url",
            f"{receiver.url}/dr?token={SECRET}",
            "--json",
        )
        assert created.code == 0, created.err
        signing = created.json()["signing_secret"]
        plan = cli.cwd / "plan.csv"
        plan.write_text("service,prefix,cycle,unit_price,basic_price\n*,,20,0.05,0.005\n")
        assert cli("rates", "import", "logs", str(plan)).code == 0
        server = serve()
        url = server.url
        query = f"{url}/api/voiceSms/getVoiceCdr"
        now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 8 * 3600))
        record = canonical("log-1", appkey="logs", time=now)
        with httpx.Client(timeout=10) as http:
            # Ingest: right token, wrong token, token in the query string.
            auth = {"Authorization": f"Bearer {TOKEN}"}
            assert http.post(f"{url}/v1/cdrs", json=[record], headers=auth).status_code == 200
            http.post(
                f"{url}/v1/cdrs", json=[record], headers={"Authorization": "Bearer x" + TOKEN}
            )
            http.post(f"{url}/v1/cdrs?token={TOKEN}", content=b"[")
            # FreeSWITCH: right and wrong basic credentials, and a rejected CDR.
            good = base64.b64encode(f"switch:{FS_PASSWORD}".encode()).decode()
            bad = base64.b64encode(f"switch:{FS_PASSWORD}x".encode()).decode()
            doc = fs.cdr(extra_vars={"voicecdr_appkey": "logs"})
            for creds in (good, bad):
                http.post(
                    f"{url}/v1/ingest/freeswitch",
                    content=orjson.dumps(doc),
                    headers={"Authorization": f"Basic {creds}", "Content-Type": "application/json"},
                )
            # Query: right secret, wrong secret, secret in the query string, broken body.
            http.post(query, data=demo_query(appkey="logs", secretkey=SECRET))
            http.post(query, data=demo_query(appkey="logs", secretkey=SECRET + "x"))
            http.post(f"{query}?secretkey={SECRET}&appkey=logs", data={"page": "x"})
            http.post(
                query,
                content=f"secretkey={SECRET}&%%%",
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=nope"},
            )
            http.get(query, params={"secretkey": SECRET})
            for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
                http.get(f"{url}{path}")
        # The console: sign-in forms with the right and a wrong secret, and the operator's
        # token, right and wrong (each its own client: a signed-in one is not asked again).
        signed: list[str] = []
        for fields in (
            {"appkey": "logs", "secretkey": SECRET},
            {"appkey": "logs", "secretkey": SECRET + "x"},
            {"kind": "operator", "token": OPERATOR},
            {"kind": "operator", "token": OPERATOR + "x"},
        ):
            with httpx.Client(base_url=url, timeout=10) as browser:
                answer = console.sign_in(browser, **fields)
                assert answer.status_code in (303, 401, 429), answer.text  # 429: its quota
                signed.append(browser.cookies.get("voicecdr_console") or "")
                browser.get("/console/overview")
        deadline = time.monotonic() + 20
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.2)
        assert receiver.received, server.logs()  # the workers rated and signed a receipt
        server.stop()
    logs = server.logs()
    assert '"path":"/v1/cdrs"' in logs
    assert '"path":"/console/signin"' in logs
    secrets = [TOKEN, FS_PASSWORD, SECRET, signing, signing.removeprefix("whsec_"), good, bad]
    secrets += [OPERATOR, CONSOLE_KEY, *(cookie for cookie in signed if cookie)]
    for secret in secrets:
        assert secret not in logs, secret
