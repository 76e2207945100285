"""An accepted CDR survives ``kill -9`` of the server a moment after the answer."""

from __future__ import annotations

import base64
import os
import signal
from typing import Any

import httpx

from tests.acceptance.conftest import Cli, Server
from tests.support import freeswitch as fs
from tests.support.data import canonical, read_cdrs
from voicecdr.models import VoiceGroup
from voicecdr.storage import Database

TOKEN = "durability-token-0123456789"
CRED = "fs:durable-pass"


def test_accepted_cdrs_survive_kill_9(cli: Cli, database_url: str) -> None:
    assert cli("db", "upgrade").code == 0
    assert cli("apps", "create", "--name", "A", "--appkey", "app1").code == 0
    cli.env["VOICECDR_INGEST_TOKEN"] = TOKEN
    cli.env["VOICECDR_FREESWITCH_CREDENTIALS"] = CRED
    batch = [canonical(f"k{i}") for i in range(300)]

    server = Server(cli)
    try:
        server.wait_ready()
        answer = httpx.post(
            f"{server.url}/v1/cdrs",
            json=batch,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        body, content_type = fs.body(fs.cdr("kill-9-uuid"), "urlencoded")
        switch = httpx.post(
            f"{server.url}/v1/ingest/freeswitch?uuid=kill-9-uuid",
            content=body,
            headers={
                "Content-Type": content_type,
                "Authorization": "Basic " + base64.b64encode(CRED.encode()).decode(),
            },
        )
        # No graceful shutdown, no chance to flush anything: the process is gone now.
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 300
    assert switch.status_code == 200, switch.text

    db = Database(database_url)
    try:
        totals = {
            group: read_cdrs(db, 1, group, 0, 2**40, messageid=None, offset=0, limit=1).total
            for group in VoiceGroup
        }
    finally:
        db.close()
    assert totals == {VoiceGroup.GROUP_CALL: 300, VoiceGroup.VERIFICATION: 1}

    # A restarted server sees them too: the replay FreeSWITCH or a client would send is a no-op.
    restarted = Server(cli)
    try:
        restarted.wait_ready()
        replay: Any = httpx.post(
            f"{restarted.url}/v1/cdrs",
            json=batch,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        ).json()
    finally:
        restarted.stop()
    assert (replay["accepted"], replay["duplicates"]) == (0, 300)
