"""The structured log line: one JSON object, the record's own fields and its extras."""

from __future__ import annotations

import io
import logging
import re

import orjson
import pytest

from voicecdr import logs


def test_a_request_line_holds_its_fields_and_nothing_about_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("INFO")
        logging.getLogger("voicecdr.api").info(
            "request", extra={"path": "/api/voiceSms/getVoiceCdr", "status": 200, "ms": 1.5}
        )
        logging.getLogger("voicecdr.api").debug("not at INFO")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    (line,) = stream.getvalue().splitlines()
    record = orjson.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record.pop("ts"))
    assert record == {
        "level": "info",
        "logger": "voicecdr.api",
        "msg": "request",
        "path": "/api/voiceSms/getVoiceCdr",
        "status": 200,
        "ms": 1.5,
    }
