"""The OpenAPI description of ``GET /v1/analytics``: its parameters, both ways to
authenticate, the report's JSON schema and the CSV alternative (``openapi.py`` includes it).

Names and limits come from ``voicecdr.analytics``, where they are declared.
"""

from __future__ import annotations

from typing import Any

from ..analytics import DIMENSION_ALIASES, MAX_GROUP_BY, MAX_WINDOW_DAYS, METRICS, Dimension
from ..models import CostStatus, Service

ANALYTICS_PATH = "/v1/analytics"

_COUNT = {"type": "integer", "minimum": 0}
_RATIO = {"type": ["number", "null"], "minimum": 0}
# Each metric's schema, by name (docs/analytics.md defines them).
_METRICS: dict[str, dict[str, Any]] = {
    "attempts": {**_COUNT, "description": "Calls placed."},
    "answered": {**_COUNT, "description": "Calls answered (connected)."},
    "asr": {**_RATIO, "maximum": 1, "description": "answered / attempts; null when none."},
    "acd": {**_RATIO, "description": "Billable seconds per answered call; null when none."},
    "avg_answer_seconds": {
        **_RATIO,
        "description": "Seconds from placing to answer, over answered calls with an answer "
        "time; null when none.",
    },
    "billable_seconds": {**_COUNT, "description": "Billable seconds of answered calls."},
    "billed_seconds": {**_COUNT, "description": "Cycle times size of priced calls."},
    "cost": {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
        "description": "Exact decimal cost of priced calls (pending calls count apart).",
    },
    "priced": {**_COUNT, "description": "Calls with a final cost."},
    "pending": {**_COUNT, "description": "Calls not priced yet."},
    "short_calls": {
        **_COUNT,
        "description": "Answered calls under `short_call_seconds` billable seconds.",
    },
}
_METRIC_PROPERTIES = {name: _METRICS[name] for name in METRICS}
_METRICS_SCHEMA = {"type": "object", "required": list(METRICS), "properties": _METRIC_PROPERTIES}
_DIMENSIONS = [d.value for d in Dimension]
_GROUP = {
    "type": "object",
    "required": ["key", *METRICS],
    "properties": {
        "key": {
            "type": "object",
            "description": "A value per `group_by` dimension: a time unit's label "
            "(`2026-12-01T10:00+05:30`, `2026-12-01`, `2026-W49`, `2026-12`) or the "
            "field's value (null when the calls have none, e.g. the prefix of a pending "
            "call, the region of a number no region's numbering plan holds).",
            "propertyNames": {"enum": _DIMENSIONS},
            "additionalProperties": {"type": ["string", "null"]},
        },
        **_METRIC_PROPERTIES,
    },
}
_PERIOD = {
    "groups": {"type": "array", "items": {"$ref": "#/components/schemas/AnalyticsGroup"}},
    "total": {"$ref": "#/components/schemas/AnalyticsMetrics"},
}
_OFFSET_TIME = {"type": "string", "description": "ISO 8601 in the app's timezone."}
_REPORT = {
    "type": "object",
    "required": [
        "app",
        "timezone",
        "from",
        "to",
        "group_by",
        "filters",
        "short_call_seconds",
        "groups",
        "total",
    ],
    "properties": {
        "app": {"type": "string"},
        "timezone": {"type": "string"},
        "from": _OFFSET_TIME,
        "to": _OFFSET_TIME,
        "group_by": {"type": "array", "items": {"enum": _DIMENSIONS}},
        "filters": {"type": "object", "description": "The filters given, as read."},
        "short_call_seconds": {"type": "integer"},
        **_PERIOD,
        "previous": {
            "type": "object",
            "description": "With `compare=previous`: the period of the same length before.",
            "required": ["from", "to", "groups", "total"],
            "properties": {"from": _OFFSET_TIME, "to": _OFFSET_TIME, **_PERIOD},
        },
    },
}
_PROBLEM = {
    "allOf": [
        {"$ref": "#/components/schemas/Problem"},
        {
            "type": "object",
            "properties": {"parameter": {"type": "string", "description": "The parameter to fix."}},
        },
    ]
}
SCHEMAS = {
    "AnalyticsReport": _REPORT,
    "AnalyticsGroup": _GROUP,
    "AnalyticsMetrics": _METRICS_SCHEMA,
    "AnalyticsProblem": _PROBLEM,
}
SECURITY_SCHEMES = {
    "appBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "The app's appkey and secretkey as user and password.",
    },
    "operatorToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "VOICECDR_OPERATOR_TOKEN; name the app with `app`.",
    },
}


def _param(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> Any:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


_TIME_TEXT = (
    "`yyyy-MM-dd` (midnight), `yyyy-MM-dd HH:mm:ss` (NXCloud's) or ISO 8601 without an "
    "offset, all in the app's timezone; or ISO 8601 with an offset."
)
_PARAMETERS = [
    _param(
        "from",
        {"type": "string", "minLength": 1},
        f"Window start, inclusive: {_TIME_TEXT}",
        required=True,
    ),
    _param(
        "to",
        {"type": "string", "minLength": 1},
        f"Window end, exclusive, after `from` and at most {MAX_WINDOW_DAYS} days after it; "
        "both between the years 1900 and 9000.",
        required=True,
    ),
    {
        **_param(
            "group_by",
            {
                "type": "array",
                "maxItems": MAX_GROUP_BY,
                "uniqueItems": True,
                "items": {"enum": [*_DIMENSIONS, *DIMENSION_ALIASES]},
            },
            f"Up to {MAX_GROUP_BY} dimensions, comma-separated, at most one of hour, day, "
            "week, month (the app's local calendar; ISO weeks). Also written: "
            + ", ".join(f"`{alias}` for `{dim}`" for alias, dim in DIMENSION_ALIASES.items())
            + ". None: the total only.",
        ),
        "style": "form",
        "explode": False,
    },
    _param("service", {"enum": [s.wire_name for s in Service]}, "Only calls of this service."),
    _param(
        "voice_type",
        {"type": "string", "enum": ["0", "1"]},
        "Only group calls (0) or verification and notification calls (1).",
    ),
    _param(
        "country_code",
        {"type": "string", "pattern": "^[0-9]{1,4}$"},
        "Only calls to this country code.",
    ),
    _param(
        "region",
        {"type": "string", "pattern": "^[A-Za-z]{2}$"},
        "Only calls to numbers of this region (ISO 3166-1 alpha-2, e.g. `IN`; read in "
        "upper case), as placed by libphonenumber's metadata.",
    ),
    _param(
        "connected",
        {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]},
        "Only answered (true) or unanswered (false) calls.",
    ),
    _param(
        "cost_status",
        {"enum": [c.wire_name for c in CostStatus]},
        "Only priced (final) or not yet priced (pending) calls.",
    ),
    _param(
        "compare",
        {"type": "string", "enum": ["previous", ""]},
        "`previous` adds `previous`: the same figures for the period of the same length "
        "just before.",
    ),
    _param(
        "format",
        {"type": "string", "enum": ["json", "csv"]},
        "The answer's format; by default JSON, or CSV when `Accept` ranks text/csv first.",
    ),
    _param(
        "app",
        {"type": "string", "minLength": 1},
        "The appkey: required with the operator token; with an app's credentials, its own "
        "appkey if given.",
    ),
]


def analytics_path() -> dict[str, Any]:
    problem = {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/AnalyticsProblem"}}
    }
    errors = {
        "400": "A parameter is wrong: `parameter` names it, `detail` says what to fix",
        "401": "Missing or wrong credentials (`WWW-Authenticate` says which kind)",
        "403": "An app's credentials with another app's `app`",
        "404": "Operator token: no app with that appkey",
        "429": "The app's rate limit, or this address is locked out after failed "
        "authentications (`Retry-After`)",
        "500": "Storage failed (logged)",
        "503": "Operator token not configured, or the database unavailable (`Retry-After`)",
    }
    return {
        ANALYTICS_PATH: {
            "get": {
                "summary": "Call figures of one app: attempts, ASR, ACD, minutes, cost",
                "description": "Every figure equals the same GROUP BY over the app's CDRs "
                "(docs/analytics.md defines each). Answers are not cacheable.",
                "operationId": "getAnalytics",
                "security": [{"appBasic": []}, {"operatorToken": []}],
                "parameters": _PARAMETERS,
                "responses": {
                    "200": {
                        "description": "The report, as JSON or (`format=csv`, or `Accept: "
                        "text/csv`) CSV: a header row, a row per group, a total row; with "
                        "`compare`, a first `period` column",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/AnalyticsReport"}
                            },
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **{
                        code: {"description": text, "content": problem}
                        for code, text in errors.items()
                    },
                },
            }
        }
    }
