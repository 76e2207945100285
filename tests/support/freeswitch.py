"""mod_json_cdr documents and request bodies as FreeSWITCH really produces them.

The document follows ``switch_ivr_generate_json_cdr``: ``core-uuid``, ``switchname``,
``channel_data``, ``callStats``, ``variables`` (every channel variable, as strings,
url-encoded when ``encode-values`` is on), ``app_log`` and ``callflow`` (a list, newest
caller profile first; an object in older releases) with ``caller_profile`` and ``times``
in microseconds. The variables are the ones FreeSWITCH sets on an outbound call placed
with ``originate`` for a voice notification, plus the ``voicecdr_*`` ones the dialplan sets.
"""

from __future__ import annotations

import base64
import copy
from typing import Any
from urllib.parse import quote

import orjson

APPKEY = "app1"
# 2019-09-09 09:00:00 +08:00
START = 1567990800


def cdr(
    uuid: str = "3b5c7d1e-9a2f-4e6b-8c1d-0f2e3a4b5c6d",
    *,
    answered: bool = True,
    billsec: int = 19,
    destination: str = "810022458",
    extra_vars: dict[str, str] | None = None,
    drop_vars: tuple[str, ...] = (),
    callflow_as_object: bool = False,
) -> dict[str, Any]:
    """One B-less outbound call's CDR: answered after 1 s, talking ``billsec`` seconds."""
    answer = START + 1 if answered else 0
    end = (answer + billsec) if answered else START + 32
    sec = billsec if answered else 0
    variables: dict[str, str] = {
        "direction": "outbound",
        "uuid": uuid,
        "session_id": "17",
        "sip_from_user": "085944247",
        "sip_from_host": "10.0.0.5",
        "sip_to_user": destination,
        "sip_call_id": "4f1c8a2b-6d3e-1c33-9a6e-0242ac120002",
        "sip_term_status": "200" if answered else "487",
        "sip_term_cause": "16" if answered else "19",
        "sip_hangup_disposition": "recv_bye" if answered else "send_cancel",
        "origination_caller_id_number": "085944247",
        "originate_disposition": "SUCCESS" if answered else "NO_ANSWER",
        "voicecdr_appkey": APPKEY,
        "voicecdr_service": "notification",
        "voicecdr_messageid": "5f2b9c0e7a6d4b1c",
        "voicecdr_country_code": "91",
        "voicecdr_ivr_result": "12#",
        "read_codec": "PCMA",
        "write_codec": "PCMA",
        "endpoint_disposition": "ANSWER" if answered else "NO ANSWER",
        "current_application": "playback",
        "current_application_data": "/var/lib/voicecdr/tts/5f2b9c0e.wav",
        "hangup_cause": "NORMAL_CLEARING" if answered else "NO_ANSWER",
        "hangup_cause_q850": "16" if answered else "19",
        "start_stamp": "2019-09-09 09:00:00",
        "answer_stamp": "2019-09-09 09:00:01" if answered else "",
        "end_stamp": "2019-09-09 09:00:20",
        "start_epoch": str(START),
        "start_uepoch": str(START * 1_000_000 + 112_000),
        "answer_epoch": str(answer),
        "answer_uepoch": str(answer * 1_000_000),
        "end_epoch": str(end),
        "end_uepoch": str(end * 1_000_000),
        "duration": str(end - START),
        "billsec": str(sec),
        "progresssec": "0",
        "answersec": "1" if answered else "0",
        "waitsec": "1" if answered else "0",
        "mduration": str((end - START) * 1000),
        "billmsec": str(sec * 1000),
        "flow_billmsec": str((end - START) * 1000),
        "uduration": str((end - START) * 1_000_000),
        "billusec": str(sec * 1_000_000),
    }
    variables = {k: v for k, v in variables.items() if v and k not in drop_vars}
    variables.update(extra_vars or {})
    profile = {
        "username": "",
        "dialplan": "",
        "caller_id_name": "voicecdr",
        "ani": "085944247",
        "aniii": "",
        "caller_id_number": "085944247",
        "network_addr": "203.0.113.7",
        "rdnis": "",
        "destination_number": destination,
        "uuid": uuid,
        "source": "src/switch_ivr_originate.c",
        "context": "default",
        "chan_name": f"sofia/gateway/carrier1/{destination}",
    }
    times = {
        "created_time": str(START * 1_000_000 + 112_000),
        "profile_created_time": str(START * 1_000_000 + 112_000),
        "progress_time": "0",
        "progress_media_time": "0",
        "answered_time": str(answer * 1_000_000),
        "bridged_time": "0",
        "last_hold_time": "0",
        "hold_accum_time": "0",
        "hangup_time": str(end * 1_000_000),
        "resurrect_time": "0",
        "transfer_time": "0",
    }
    flow = {"profile_index": "1", "caller_profile": profile, "times": times}
    return {
        "core-uuid": "6a1d5f86-3c2e-4bb7-9d0a-5f1e2c3b4a59",
        "switchname": "fs-edge-01",
        "channel_data": {
            "state": "CS_REPORTING",
            "direction": "outbound",
            "state_number": "11",
            "flags": "0=1;1=1;39=1;41=1",
            "caps": "1=1;2=1;3=1;4=1;5=1;6=1",
        },
        "callStats": {"audio": {"inbound": {"raw_bytes": 152_000, "media_bytes": 152_000}}},
        "variables": variables,
        "app_log": {
            "applications": [
                {"app_name": "answer", "app_data": "", "app_stamp": str(START * 1_000_000)},
                {"app_name": "playback", "app_data": "/var/lib/voicecdr/tts/5f2b9c0e.wav"},
            ]
        },
        "callflow": flow if callflow_as_object else [flow],
    }


def encode_values(doc: dict[str, Any]) -> dict[str, Any]:
    """``encode-values=true``: every variable's value url-encoded, as switch_url_encode does."""
    out = copy.deepcopy(doc)
    out["variables"] = {k: quote(v, safe="") for k, v in doc["variables"].items()}
    return out


def body(doc: dict[str, Any], encoding: str) -> tuple[bytes, str]:
    """(body, content type) for mod_json_cdr's ``encode`` = true, base64, false (and the
    plaintext label of older releases)."""
    text = orjson.dumps(doc)
    if encoding == "urlencoded":
        return b"cdr=" + quote(text, safe="").encode(), "application/x-www-form-urlencoded"
    if encoding == "base64":
        return b"cdr=" + base64.b64encode(text), "application/x-www-form-base64-encoded"
    if encoding == "plaintext":
        return text, "application/x-www-form-plaintext"
    return text, "application/json"


ENCODINGS = ("urlencoded", "base64", "plaintext", "json")
