"""The demo end to end: every CDR it creates is priced as its plan says, and receipted."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx

from tests.acceptance.conftest import Cli
from tests.support.receiver import receiving
from voicecdr.demo import DEMO_PLAN
from voicecdr.timefmt import zone

COUNT = 300


def expected_rate(service: str, number: str) -> dict[str, str]:
    """An oracle written from SPEC section 5, independent of voicecdr.rating."""
    rows = list(csv.DictReader(io.StringIO(DEMO_PLAN)))
    for wanted in (service, "*"):
        matches = [r for r in rows if r["service"] == wanted and number.startswith(r["prefix"])]
        if matches:
            return max(matches, key=lambda r: len(r["prefix"]))
    raise AssertionError(f"the demo plan prices every call, not {service} {number}")


def check_price(row: dict[str, Any], service: str) -> None:
    rate = expected_rate(service, row["countryCode"] + row["phone"])
    cycle = int(rate["cycle"])
    connected = row["result"] == "Successful connection"
    size = -(-row["second"] // cycle) if connected else 0
    cost = size * Decimal(rate["unit_price"]) if connected else Decimal(rate["basic_price"])
    assert (row["cycle"], row["size"], row["cost_status"]) == (cycle, size, "final"), row
    assert Decimal(str(row["customer_price"])) == Decimal(rate["unit_price"])
    assert Decimal(str(row["cost"])) == cost, row


def test_demo_cdrs_are_priced_and_receipted(cli: Cli, serve: Any) -> None:
    cli.env["VOICECDR_ALLOW_PRIVATE_CALLBACKS"] = "true"
    with receiving() as receiver:
        made = cli(
            "demo", "--count", str(COUNT), "--days", "0.9", "--callback-url", f"{receiver.url}/dr"
        )
        assert made.code == 0, made.err
        assert (made.json()["accepted"], made.json()["priced"]) == (COUNT, COUNT)
        server = serve()
        deadline = time.monotonic() + 30
        while len(receiver.by_webhook_id()) < COUNT and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(receiver.by_webhook_id()) == COUNT, server.logs()

        now = datetime.now(zone("Asia/Shanghai"))
        rows: dict[str, list[dict[str, Any]]] = {}
        for voice_type in ("0", "1"):
            body = httpx.post(
                f"{server.url}/api/voiceSms/getVoiceCdr",
                data={
                    "appkey": "demo",
                    "secretkey": "demo-secret",
                    "voiceType": voice_type,
                    "start_time": (now - timedelta(hours=24)).strftime("%Y-%m-%d %H:%M:%S"),
                    "end_time": now.strftime("%Y-%m-%d %H:%M:%S"),
                    "page": "1",
                    "page_size": "1000",
                    "extended": "1",
                },
            ).json()
            assert body["code"] == "1", body
            rows[voice_type] = body["info"]["rows"]
            time.sleep(0.25)  # the demo app allows 5 requests per second
    assert len(rows["0"]) + len(rows["1"]) == COUNT
    for row in rows["0"]:
        check_price(row, "group_call")
    for row in rows["1"]:
        check_price(row, {1: "verification", 2: "notification"}[row["voice_type"]])
    # Group-call receipts carry the money the plan says (voice_type 1 mixes two services).
    for copies in receiver.by_webhook_id().values():
        fields = {k: v[0] for k, v in parse_qs(copies[0].body, keep_blank_values=True).items()}
        if fields["voice_type"] == "0":
            rate = expected_rate("group_call", fields["countryCode"] + fields["phone"])
            assert Decimal(fields["customer_price"]) == Decimal(rate["unit_price"])
            assert Decimal(fields["basic_price"]) == Decimal(rate["basic_price"])
            assert fields["cycle"] == rate["cycle"]
