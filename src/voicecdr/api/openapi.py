"""The OpenAPI 3.1 description served at ``/openapi.json``.

Written by hand: the query endpoint's form parameters, limits and both envelope shapes are
the contract, and this is where clients (and API fuzzers) read it.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..config import Settings
from ..rows import EXTENDED_FIELDS, GROUP_CALL_FIELDS, VERIFICATION_FIELDS
from .openapi_analytics import SCHEMAS as ANALYTICS_SCHEMAS
from .openapi_analytics import SECURITY_SCHEMES as ANALYTICS_SECURITY
from .openapi_analytics import analytics_path
from .query import MAX_PAGE

_TIME = {
    "type": "string",
    "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$",
    "example": "2026-11-27 09:00:00",
}
_NUMBER_TEXT = {"type": "string", "pattern": r"^[0-9]{1,10}$"}  # what query._number reads

_FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "id": {"type": "integer"},
    "result": {
        "type": "string",
        "enum": ["Successful connection", "Unsuccessful connection", "成功接通", "未接通"],
    },
    "cycle": {"type": "integer", "description": "Billing cycle in seconds (0 while pending)."},
    "time": {"type": "string", "description": "When the call was placed (app timezone)."},
    "start_time": {"type": "string", "description": "Answer time, empty if never answered."},
    "end_time": {"type": "string", "description": "Hang-up time, empty if unknown."},
    "phone": {"type": "string"},
    "basic_price": {"type": "number", "description": "Charge for an unconnected call."},
    "second": {"type": "integer", "description": "Billable seconds."},
    "voice_type": {
        "type": "integer",
        "enum": [1, 2],
        "description": "1 verification, 2 notification.",
    },
    "countryCode": {"type": "string"},
    "messageid": {"type": "string"},
    "customer_price": {"type": "number", "description": "Unit price per cycle (0 while pending)."},
    "show_phone": {"type": "string"},
    "size": {"type": "integer", "description": "Billed cycles: ceil(second / cycle) if connected."},
    "ivr_result": {"type": "string", "description": "Key presses, e.g. `1` or `12#`."},
    "cost": {"type": "number"},
    "cost_status": {"type": "string", "enum": ["pending", "final"]},
    "hangup_cause": {"type": "string"},
    "hangup_disposition": {"type": "string"},
    "record_url": {"type": "string"},
}


def _row(fields: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(fields),
        "properties": {
            **{f: _FIELD_SCHEMAS[f] for f in fields},
            **{f: _FIELD_SCHEMAS[f] for f in EXTENDED_FIELDS},
        },
        "additionalProperties": False,
        "description": "Extended fields appear only with `extended=1`.",
    }


def _query_params_schema(settings: Settings) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [
            "appkey",
            "secretkey",
            "voiceType",
            "start_time",
            "end_time",
            "page_size",
            "page",
        ],
        "properties": {
            "appkey": {"type": "string", "minLength": 1, "description": "Application appkey."},
            "secretkey": {
                "type": "string",
                "minLength": 1,
                "description": "Application secretkey.",
            },
            "voiceType": {
                "type": "string",
                "enum": ["0", "1"],
                "description": "0 group call; 1 verification and notification.",
            },
            "messageid": {"type": "string", "maxLength": 128},
            "start_time": {**_TIME, "description": "Window start, inclusive, app timezone."},
            "end_time": {
                **_TIME,
                "description": f"Window end, inclusive; at most {settings.max_span_hours:g} h "
                "after start.",
            },
            "page_size": {
                **_NUMBER_TEXT,
                "description": f"1 to {settings.max_page_size} rows per page.",
            },
            "page": {**_NUMBER_TEXT, "description": f"Page number, from 1 to {MAX_PAGE}."},
            "extended": {
                "type": "string",
                "enum": ["0", "1", ""],
                "description": "1 adds cost, cost_status, hangup and record fields; 0 or empty "
                "does not.",
            },
        },
    }


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The description, with the operator's limits written into it."""
    params = _query_params_schema(settings)
    success = {
        "type": "object",
        "required": ["code", "info"],
        "properties": {
            "code": {"const": "1"},
            "info": {
                "type": "object",
                "required": ["total", "page", "pageSize", "rows"],
                "properties": {
                    "total": {"type": "integer"},
                    "page": {"type": "integer"},
                    "pageSize": {"type": "integer"},
                    "rows": {
                        "type": "array",
                        "items": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/GroupCallRow"},
                                {"$ref": "#/components/schemas/VerificationRow"},
                            ]
                        },
                    },
                },
            },
        },
    }
    failure = {
        "type": "object",
        "required": ["code", "info", "error"],
        "properties": {
            "code": {"const": "0"},
            "info": {"type": "string"},
            "error": {
                "type": "string",
                "enum": [
                    "auth_failed",
                    "invalid_parameter",
                    "range_too_large",
                    "out_of_window",
                    "rate_limited",
                    "internal",
                ],
            },
        },
    }
    problem = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
        },
    }
    envelope = {
        "oneOf": [
            {"$ref": "#/components/schemas/Success"},
            {"$ref": "#/components/schemas/Failure"},
        ]
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "voicecdr",
            "version": __version__,
            "description": "NXCloud-compatible voice call record query API, ingest, and "
            "call analytics.",
        },
        "paths": {
            "/api/voiceSms/getVoiceCdr": {
                "post": {
                    "summary": "Voice group call / verification / notification records",
                    "description": 'Failures are HTTP 200 with `code` "0" and an `error` slug; '
                    "`rate_limited`, and `auth_failed` for a client address locked out after "
                    "too many failed attempts, carry a `Retry-After` header.",
                    "operationId": "getVoiceCdr",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {"schema": params},
                            "multipart/form-data": {"schema": params},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Success or failure envelope",
                            "content": {"application/json": {"schema": envelope}},
                        },
                        "405": {
                            "description": "Method other than POST",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Failure"}
                                }
                            },
                        },
                    },
                }
            },
            **_ingest_paths(settings),
            **analytics_path(),
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "operationId": "healthz",
                    "responses": {"200": {"description": "Alive"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: database reachable, schema current, no worker failing",
                    "operationId": "readyz",
                    "responses": {
                        "200": {"description": "Ready"},
                        "503": {
                            "description": "Not ready",
                            "content": {
                                "application/problem+json": {
                                    "schema": {"$ref": "#/components/schemas/Problem"}
                                }
                            },
                        },
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "responses": {"200": {"description": "Metrics", "content": {"text/plain": {}}}},
                }
            },
        },
        "components": {
            "schemas": {
                "Success": success,
                "Failure": failure,
                "Problem": problem,
                "GroupCallRow": _row(GROUP_CALL_FIELDS),
                "VerificationRow": _row(VERIFICATION_FIELDS),
                "IngestSummary": _SUMMARY,
                "CanonicalCdr": _CANONICAL,
                "FreeswitchCdr": _FREESWITCH,
                **ANALYTICS_SCHEMAS,
            },
            "securitySchemes": {
                "ingestToken": {"type": "http", "scheme": "bearer"},
                "freeswitchBasic": {"type": "http", "scheme": "basic"},
                **ANALYTICS_SECURITY,
            },
        },
    }


_SUMMARY = {
    "type": "object",
    "required": ["accepted", "duplicates", "rejected"],
    "properties": {
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "call_id": {"type": ["string", "null"]},
                    "errors": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


_LINE = r"^[^\x00-\x1f\x7f-\x9f]*$"  # no control characters
_ISO_TIME = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601 with an offset, e.g. `2026-11-27T09:00:00+08:00`.",
}
_CANONICAL = {
    "type": "object",
    "description": "One call attempt as a switch reports it (SPEC section 4).",
    "required": [
        "call_id",
        "appkey",
        "service",
        "phone",
        "country_code",
        "time",
        "second",
        "connected",
    ],
    "additionalProperties": False,
    "properties": {
        "call_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "pattern": _LINE,
            "description": "The switch's unique id: the idempotency key.",
        },
        "appkey": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": _LINE},
        "service": {"type": "string", "enum": ["group_call", "verification", "notification"]},
        "messageid": {"type": ["string", "null"], "maxLength": 128, "pattern": _LINE},
        "phone": {"type": "string", "pattern": "^[0-9]{1,32}$"},
        "country_code": {"type": "string", "pattern": "^[0-9]{1,4}$"},
        "show_phone": {"type": ["string", "null"], "maxLength": 64, "pattern": _LINE},
        "time": _ISO_TIME,
        "start_time": {**_ISO_TIME, "type": ["string", "null"]},
        "end_time": {**_ISO_TIME, "type": ["string", "null"]},
        "second": {"type": "integer", "minimum": 0, "maximum": 86_400},
        "connected": {"type": "boolean"},
        "hangup_cause": {"type": ["string", "null"], "maxLength": 64, "pattern": _LINE},
        "hangup_disposition": {"type": ["string", "null"], "maxLength": 64, "pattern": _LINE},
        "ivr_result": {"type": ["string", "null"], "maxLength": 64, "pattern": _LINE},
        "record_url": {
            "type": ["string", "null"],
            "maxLength": 2048,
            "pattern": r"^[hH][tT][tT][pP][sS]?://[^\s]+$",
        },
    },
}
_EPOCH_TEXT = {"type": "string", "pattern": "^[0-9]{1,12}$"}
_FREESWITCH = {
    "type": "object",
    "description": "The document mod_json_cdr posts; only the fields voicecdr reads.",
    "required": ["variables"],
    "properties": {
        "variables": {
            "type": "object",
            "required": [
                "uuid",
                "voicecdr_appkey",
                "voicecdr_service",
                "voicecdr_country_code",
                "start_epoch",
                "billsec",
            ],
            "properties": {
                "uuid": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": _LINE},
                "voicecdr_appkey": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                "voicecdr_service": {
                    "type": "string",
                    "enum": ["group_call", "verification", "notification"],
                },
                "voicecdr_messageid": {"type": "string", "maxLength": 128, "pattern": _LINE},
                "voicecdr_country_code": {"type": "string", "pattern": "^[0-9]{1,4}$"},
                "voicecdr_ivr_result": {"type": "string", "maxLength": 64, "pattern": _LINE},
                "voicecdr_record_url": {"type": "string"},
                "start_epoch": _EPOCH_TEXT,
                "answer_epoch": _EPOCH_TEXT,
                "end_epoch": _EPOCH_TEXT,
                "billsec": _EPOCH_TEXT,
                "hangup_cause": {"type": "string", "maxLength": 64, "pattern": _LINE},
                "sip_hangup_disposition": {"type": "string", "maxLength": 64, "pattern": _LINE},
            },
        },
        "callflow": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "caller_profile": {
                        "type": "object",
                        "properties": {
                            "destination_number": {"type": "string"},
                            "caller_id_number": {"type": "string"},
                        },
                    }
                },
            },
        },
    },
}
_FS_FORM = {
    "type": "object",
    "required": ["cdr"],
    "properties": {
        "cdr": {
            "type": "string",
            "description": "The FreeswitchCdr JSON, url-encoded (or base64 with the "
            "base64 content type).",
        }
    },
}


def _answers(codes: dict[str, str]) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {code: {"description": text, "content": problem} for code, text in codes.items()}


def _ingest_paths(settings: Settings) -> dict[str, Any]:
    summary = {"application/json": {"schema": {"$ref": "#/components/schemas/IngestSummary"}}}
    limits = f"At most {settings.max_batch_records} records and {settings.max_batch_bytes} bytes."
    return {
        "/v1/cdrs": {
            "post": {
                "summary": "Store a batch of canonical CDRs (JSON array or NDJSON)",
                "description": f"Valid records are stored even when others are rejected. {limits}",
                "operationId": "ingestCdrs",
                "security": [{"ingestToken": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "maxItems": settings.max_batch_records,
                                "items": {"$ref": "#/components/schemas/CanonicalCdr"},
                            }
                        },
                        "application/x-ndjson": {
                            "schema": {
                                "type": "string",
                                "description": "One CanonicalCdr JSON object per line.",
                            }
                        },
                    },
                },
                "responses": {
                    "200": {"description": "What happened to each record", "content": summary},
                    **_answers(
                        {
                            "400": "Unreadable body",
                            "401": "Missing or wrong token",
                            "408": "Body not received within VOICECDR_BODY_TIMEOUT",
                            "413": "Too many records or bytes",
                            "415": "Unsupported content type",
                            "503": "Ingest token not set, or database unavailable",
                        }
                    ),
                },
            }
        },
        "/v1/ingest/freeswitch": {
            "post": {
                "summary": "Store one FreeSWITCH mod_json_cdr CDR",
                "description": "Every encoding mod_json_cdr uses; a non-2xx answer makes "
                "FreeSWITCH keep the CDR for a retry.",
                "operationId": "ingestFreeswitch",
                "security": [{"freeswitchBasic": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": _FS_FORM},
                        "application/x-www-form-base64-encoded": {"schema": _FS_FORM},
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/FreeswitchCdr"}
                        },
                    },
                },
                "responses": {
                    "200": {"description": "Stored, or stored before", "content": summary},
                    **_answers(
                        {
                            "400": "Not a CDR in any encoding",
                            "401": "Missing or wrong credentials",
                            "408": "Body not received within VOICECDR_BODY_TIMEOUT",
                            "409": "Same uuid stored with different content",
                            "413": "Body too large",
                            "415": "Unsupported content type",
                            "422": "CDR cannot be stored (bad variable, unknown or disabled app)",
                            "503": "Credentials not set, or database unavailable",
                        }
                    ),
                },
            }
        },
    }
