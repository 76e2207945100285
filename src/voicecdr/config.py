"""Settings: the one place that reads the environment.

Every setting has a default, a type and help text here; ``docs/reference/settings.md``
documents each one (a test fails when one is missing). Read once with
:func:`Settings.from_env` and pass the object down; nothing else looks at ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigError
from .ingest.timebounds import DEFAULT_MAX_AGE_DAYS, DEFAULT_MAX_FUTURE_MINUTES
from .retry import DEFAULT_SCHEDULE

DEFAULT_DATABASE_URL = "sqlite:///voicecdr.db"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Environment variables read under an older name (deprecated, with a warning): the old
# name, and the new one that wins when both are set.
RENAMED = {
    "VOICECDR_AUTH_FAILURES_PER_APPKEY": "VOICECDR_AUTH_FAILURES_PER_CLIENT_APPKEY",
    # uvicorn's own setting, which voicecdr's docs once pointed to; `serve` no longer
    # lets uvicorn read proxy headers.
    "FORWARDED_ALLOW_IPS": "VOICECDR_TRUSTED_PROXIES",
}


def _renamed(new: str) -> AliasChoices:
    """The environment names of a renamed setting, the new one first."""
    return AliasChoices(new, *(old for old, name in RENAMED.items() if name == new))


class Settings(BaseSettings):
    """Operator settings, from ``VOICECDR_*`` environment variables."""

    # Inputs stay out of error messages: a bad token or password must not be echoed.
    # Numbers are finite: "inf" would pass a lower bound alone (max_span_hours).
    model_config = SettingsConfigDict(
        allow_inf_nan=False,
        env_prefix="VOICECDR_",
        frozen=True,
        extra="ignore",
        hide_input_in_errors=True,
        populate_by_name=True,
    )

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy-style URL: `sqlite:///path.db` (default `voicecdr.db` in the "
        "working directory) or `postgresql://user:pass@host/db`.",
    )
    max_span_hours: float = Field(
        24, gt=0, description="Largest `end_time - start_time` the query API accepts, in hours."
    )
    max_age_days: float = Field(
        7, ge=0, description="How far back `start_time` may reach, in days (0 = unlimited)."
    )
    max_page_size: int = Field(
        1000, ge=1, le=100_000, description="Largest `page_size` the query API accepts."
    )
    receipt_retry_schedule: Annotated[tuple[int, ...], NoDecode] = Field(
        DEFAULT_SCHEDULE,
        description="Comma-separated delays in seconds between receipt delivery attempts "
        "(each gets up to 10% jitter); after the last one fails the receipt is dead.",
    )
    receipt_timeout: float = Field(
        10, gt=0, le=300, description="Seconds a receipt receiver has to answer an attempt."
    )
    receipt_concurrency: int = Field(
        64, ge=1, le=1024, description="Receipt deliveries in flight per worker process."
    )
    receipt_concurrency_per_app: int = Field(
        4,
        ge=1,
        le=256,
        description="Receipt deliveries in flight per app and worker process, so one slow "
        "receiver cannot hold up other apps' receipts.",
    )
    allow_private_callbacks: bool = Field(
        False,
        description="Allow callback URLs on loopback, private, link-local and other "
        "non-public addresses (closed networks and tests only).",
    )
    serve_workers: bool = Field(
        True,
        description="Run the rater and the receipt sender inside every `voicecdr serve` "
        "process. Set false (or use `serve --no-workers`) for API-only processes, and run "
        "`voicecdr worker` elsewhere.",
    )
    rater_batch_size: int = Field(
        5000, ge=1, le=100_000, description="CDRs the rater prices per transaction."
    )
    partitions_ahead_days: int = Field(
        7,
        ge=0,
        le=366,
        description="PostgreSQL only: days after today (UTC) whose `cdrs` partitions exist "
        "ahead of time, made by `db upgrade` and every hour by the workers.",
    )
    timezone: str = Field(
        "Asia/Shanghai", description="IANA timezone given to new apps unless told otherwise."
    )
    rate_limit_state: str | None = Field(
        None,
        description="SQLite deployments only: the file holding the shared rate-limit state. "
        "Default: a file in /dev/shm (or the temp dir) derived from the database path. "
        "PostgreSQL deployments keep it in an UNLOGGED table.",
    )
    max_body_bytes: int = Field(
        65_536, ge=1024, description="Largest request body the query API reads, in bytes."
    )
    body_timeout: float = Field(
        30,
        gt=0,
        le=3600,
        description="Seconds a client has to send a whole request body, on every endpoint; "
        "a slower body is answered with an error (408 on ours, `invalid_parameter` on the "
        "query API) and the connection closed.",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="Connections (and requests in progress) one `voicecdr serve` process "
        "holds at once; past that, new requests get a plain 503 from the server at once.",
    )
    query_threads: int = Field(
        0,
        ge=0,
        le=64,
        description="Threads per server process that answer query-API requests. 0 picks "
        "for the database: on SQLite the event loop answers them itself (the database is "
        "in the process, so a thread would only add hand-offs of Python's GIL), on "
        "PostgreSQL 2 threads (docs/performance.md#query-threads-per-process).",
    )
    row_cache_rows: int = Field(
        20_000,
        ge=0,
        le=10_000_000,
        description="Rendered query-API rows one server process keeps (about 1 KB each) "
        "to answer the same rows again without reading them whole or rendering them; "
        "exact, since a row's stamp (its id, time, content hash and revision) is read "
        "every time. 0 turns it off.",
    )
    app_cache_seconds: float = Field(
        5,
        ge=0,
        le=3600,
        description="Seconds a server process may answer queries from its copy of an app "
        "(credentials, timezone, rate limit) before reading it again: a change made with "
        "`voicecdr apps update` or `rotate-secret` takes effect within this time. 0 reads "
        "the app on every request.",
    )
    auth_failures_per_client_appkey: int = Field(
        10,
        ge=1,
        validation_alias=_renamed("VOICECDR_AUTH_FAILURES_PER_CLIENT_APPKEY"),
        description="Failed authentications (query API and analytics) allowed per client "
        "address and appkey within `auth_failure_window`; past that, that address is locked out "
        "(`auth_failed`, saying so, with `Retry-After`) whatever the secret until failures "
        "age out. Other addresses are never affected.",
    )
    auth_failures_per_client: int = Field(
        50,
        ge=1,
        description="Failed authentications (query API and analytics, operator token "
        "included) allowed per client address (any appkey) within `auth_failure_window`, "
        "with the same lock-out of that address.",
    )
    auth_failure_window: float = Field(
        300,
        gt=0,
        le=86_400,
        description="Seconds over which failed authentications are counted; the allowance "
        "refills evenly over it.",
    )
    trusted_proxies: Annotated[tuple[Network, ...], NoDecode] = Field(
        (),
        validation_alias=_renamed("VOICECDR_TRUSTED_PROXIES"),
        description="Comma-separated IP addresses and networks (CIDR) of your reverse "
        "proxies. A request from one of them is taken to come from the address its "
        "`X-Forwarded-For` names (the rightmost one not itself a trusted proxy); from "
        "anywhere else that header is ignored. `*` trusts every peer (only when nothing "
        "but the proxies can reach voicecdr). Empty: the peer's own address, always.",
    )
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING or ERROR.")
    ingest_token: SecretStr | None = Field(
        None,
        description="Bearer token for `POST /v1/cdrs`. Unset: the endpoint answers 503 "
        "(ingest over HTTP is off).",
    )
    operator_token: SecretStr | None = Field(
        None,
        description="Bearer token of the operator for `GET /v1/analytics`: any app's "
        "figures, naming it with `app=`. Unset: operator access answers 503.",
    )
    console_secret_key: SecretStr | None = Field(
        None,
        description="Key (at least 32 characters) that signs the web console's session "
        "cookies; every server process must share it. Unset: one is made at random once "
        "and kept in the database (table `console_keys`), so every process and restart "
        "agrees. Changing it signs everyone out.",
    )
    freeswitch_credentials: SecretStr | None = Field(
        None,
        description="`user:pass` that FreeSWITCH's mod_json_cdr sends (HTTP basic) to "
        "`POST /v1/ingest/freeswitch`. Unset: the endpoint answers 503.",
    )
    max_batch_records: int = Field(
        10_000, ge=1, description="Most records `POST /v1/cdrs` takes in one request."
    )
    ingest_max_age_days: int = Field(
        DEFAULT_MAX_AGE_DAYS,
        ge=0,
        le=36_500,
        description="How far back a CDR's times may lie when it is ingested (HTTP or "
        "`cdrs import`), in days; older records are rejected with the reason. "
        "0 = any time since 1970.",
    )
    ingest_max_future_minutes: int = Field(
        DEFAULT_MAX_FUTURE_MINUTES,
        ge=0,
        le=1440,
        description="How far ahead of the server's clock a CDR's times may lie, in minutes.",
    )
    max_batch_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="Largest request body `POST /v1/cdrs` and `POST /v1/ingest/freeswitch` "
        "read, in bytes.",
    )

    @field_validator("receipt_retry_schedule", mode="before")
    @classmethod
    def _parse_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                parts = [part.strip() for part in value.split(",") if part.strip()]
                if not all(part.isascii() for part in parts):
                    raise ValueError  # int() reads every script's digits; settings are ASCII
                delays = tuple(int(part) for part in parts)
            except ValueError:
                raise ValueError("must be comma-separated whole seconds, e.g. 5,300,1800") from None
            if not delays or any(d < 0 for d in delays):
                raise ValueError("must list at least one delay, none negative")
            return delays
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if parts == ["*"]:
            return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
        networks = []
        for part in parts:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(
                    f"{part!r} is not an IP address or network: list addresses and CIDR "
                    "networks separated by commas, e.g. 10.0.0.5,192.168.0.0/16,fd00::/8"
                ) from None
        return tuple(networks)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA timezone name, e.g. Asia/Shanghai") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("ingest_token", "operator_token")
    @classmethod
    def _usable_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("console_secret_key")
    @classmethod
    def _long_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @field_validator("freeswitch_credentials")
    @classmethod
    def _user_colon_pass(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            user, colon, password = value.get_secret_value().partition(":")
            if not (user and colon and password):
                raise ValueError("must be user:pass (both parts non-empty)")
        return value

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Read the environment once; explicit overrides (CLI flags) win. A bad value is a
        ConfigError naming its variable and the rule it breaks."""
        for old, new in RENAMED.items():
            if old in os.environ:
                logging.getLogger(__name__).warning(
                    "%s is deprecated: set %s instead%s",
                    old,
                    new,
                    " (it is set, and wins)" if new in os.environ else "",
                )
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
        except ValidationError as exc:
            raise ConfigError("; ".join(_explain(e) for e in exc.errors())) from None


# Values never echoed in an error: tokens, passwords, and URLs that may carry one.
_SECRET = {
    "database_url",
    "ingest_token",
    "operator_token",
    "freeswitch_credentials",
    "console_secret_key",
}
_KINDS: dict[object, str] = {int: "a whole number", float: "a number", bool: "true or false"}


def _explain(error: ErrorDetails) -> str:
    """One setting's error as ``VOICECDR_NAME: must be … (got '…')``, from the field's
    own declaration (its type and bounds)."""
    loc = str(error["loc"][0]) if error["loc"] else "?"
    name, variable = _field_and_variable(loc)
    field = Settings.model_fields.get(name)
    if error["type"] == "value_error" or field is None:
        rule = error["msg"].removeprefix("Value error, ")
    else:
        rule = f"must be {_KINDS.get(field.annotation, 'valid')}{_bounds(field.metadata)}"
    shown = "" if name in _SECRET else f" (got {error.get('input')!r})"
    return f"{variable}: {rule}{shown}"


def _field_and_variable(loc: str) -> tuple[str, str]:
    """The field an error is about and the variable it was read from: pydantic names a
    field by its alias when it has some (a renamed setting), else by the field's name."""
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices) and loc in alias.choices:
            return name, loc
    return loc, f"{Settings.model_config.get('env_prefix', '')}{loc.upper()}"


def _bounds(metadata: list[object]) -> str:
    limits = {
        k: _number(getattr(m, k))
        for m in metadata
        for k in ("gt", "ge", "lt", "le")
        if hasattr(m, k)
    }
    if "ge" in limits and "le" in limits:
        return f" between {limits['ge']} and {limits['le']}"
    low = f"more than {limits['gt']}" if "gt" in limits else f"at least {limits.get('ge')}"
    high = f"less than {limits['lt']}" if "lt" in limits else f"at most {limits.get('le')}"
    parts = [
        p
        for p, given in ((low, {"gt", "ge"} & limits.keys()), (high, {"lt", "le"} & limits.keys()))
        if given
    ]
    return " " + " and ".join(parts) if parts else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
