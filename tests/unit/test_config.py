from __future__ import annotations

from pathlib import Path

import pytest

from voicecdr.config import Settings
from voicecdr.errors import ConfigError

DOCS = Path(__file__).parents[2] / "docs" / "reference" / "settings.md"


def test_defaults_follow_nxcloud() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite:///voicecdr.db"
    assert (settings.max_span_hours, settings.max_age_days, settings.max_page_size) == (24, 7, 1000)
    assert settings.timezone == "Asia/Shanghai"


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICECDR_MAX_PAGE_SIZE", "50")
    monkeypatch.setenv("VOICECDR_MAX_AGE_DAYS", "0")
    monkeypatch.setenv("VOICECDR_RECEIPT_RETRY_SCHEDULE", "1, 5,30")
    monkeypatch.setenv("VOICECDR_ALLOW_PRIVATE_CALLBACKS", "true")
    settings = Settings.from_env()
    assert settings.receipt_retry_schedule == (1, 5, 30)
    assert settings.allow_private_callbacks is True
    assert settings.max_page_size == 50
    assert settings.max_age_days == 0


def test_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICECDR_DATABASE_URL", "sqlite:///env.db")
    assert Settings.from_env(database_url="sqlite:///flag.db").database_url == "sqlite:///flag.db"
    assert Settings.from_env(database_url=None).database_url == "sqlite:///env.db"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("VOICECDR_TIMEZONE", "Mars/Base", "must be an IANA timezone name"),
        ("VOICECDR_MAX_SPAN_HOURS", "0", "must be a number more than 0 (got '0')"),
        # Non-finite: "inf" passes a lower bound alone, and "nan" compares false to all.
        ("VOICECDR_MAX_SPAN_HOURS", "inf", "must be a number more than 0 (got 'inf')"),
        ("VOICECDR_MAX_AGE_DAYS", "Infinity", "must be a number at least 0 (got 'Infinity')"),
        ("VOICECDR_MAX_AGE_DAYS", "nan", "must be a number at least 0 (got 'nan')"),
        ("VOICECDR_MAX_AGE_DAYS", "\uff17", "must be a number at least 0 (got '\uff17')"),
        ("VOICECDR_RECEIPT_RETRY_SCHEDULE", "5,soon", "comma-separated whole seconds"),
        ("VOICECDR_RECEIPT_RETRY_SCHEDULE", "5,\N{FULLWIDTH DIGIT SIX}", "comma-separated whole"),
        ("VOICECDR_RECEIPT_RETRY_SCHEDULE", "5,-1", "none negative"),
        ("VOICECDR_RECEIPT_TIMEOUT", "0", "must be a number more than 0 and at most 300"),
        ("VOICECDR_MAX_PAGE_SIZE", "0", "must be a whole number between 1 and 100000 (got '0')"),
        ("VOICECDR_LOG_LEVEL", "LOUD", "DEBUG, INFO, WARNING or ERROR"),
        ("VOICECDR_QUERY_THREADS", "-1", "must be a whole number between 0 and 64"),
        ("VOICECDR_QUERY_THREADS", "many", "whole number between 0 and 64 (got 'many')"),
        ("VOICECDR_ALLOW_PRIVATE_CALLBACKS", "maybe", "must be true or false (got 'maybe')"),
        ("VOICECDR_APP_CACHE_SECONDS", "-5", "must be a number between 0 and 3600"),
        ("VOICECDR_ROW_CACHE_ROWS", "-1", "must be a whole number between 0 and 10000000"),
        ("VOICECDR_ROW_CACHE_ROWS", "20000000", "whole number between 0 and 10000000"),
        ("VOICECDR_MAX_BODY_BYTES", "1", "must be a whole number at least 1024 (got '1')"),
    ],
)
def test_bad_settings_are_named_by_their_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        Settings.from_env()
    assert str(raised.value).startswith(f"{name}: ")
    assert message in str(raised.value)
    assert "pydantic" not in str(raised.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VOICECDR_INGEST_TOKEN", "short-secret"),
        ("VOICECDR_FREESWITCH_CREDENTIALS", "no-colon-secret"),
    ],
)
def test_a_bad_secret_setting_is_named_but_never_echoed(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        Settings.from_env()
    assert str(raised.value).startswith(f"{name}: must be")
    assert value not in str(raised.value)


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented(field: str) -> None:
    assert Settings.model_fields[field].description
    assert f"VOICECDR_{field.upper()}" in DOCS.read_text()


def test_a_renamed_setting_is_still_read_under_its_old_name_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("VOICECDR_AUTH_FAILURES_PER_APPKEY", "7")
    assert Settings.from_env().auth_failures_per_client_appkey == 7
    assert "VOICECDR_AUTH_FAILURES_PER_APPKEY is deprecated" in caplog.text
    assert "VOICECDR_AUTH_FAILURES_PER_CLIENT_APPKEY" in caplog.text
    monkeypatch.setenv("VOICECDR_AUTH_FAILURES_PER_CLIENT_APPKEY", "9")
    assert Settings.from_env().auth_failures_per_client_appkey == 9  # the new name wins
    assert Settings(auth_failures_per_client_appkey=4).auth_failures_per_client_appkey == 4


def test_trusted_proxies_are_addresses_and_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().trusted_proxies == ()  # nobody's headers are trusted
    monkeypatch.setenv("VOICECDR_TRUSTED_PROXIES", " 10.0.0.5, 192.168.0.0/16,fd00::/8 ,")
    assert [str(n) for n in Settings.from_env().trusted_proxies] == [
        "10.0.0.5/32",
        "192.168.0.0/16",
        "fd00::/8",
    ]
    monkeypatch.setenv("VOICECDR_TRUSTED_PROXIES", "*")
    assert [str(n) for n in Settings.from_env().trusted_proxies] == ["0.0.0.0/0", "::/0"]
    monkeypatch.setenv("VOICECDR_TRUSTED_PROXIES", "10.0.0.5,proxy.local")
    with pytest.raises(
        ConfigError,
        match=r"^VOICECDR_TRUSTED_PROXIES: 'proxy\.local' is not an IP address or network",
    ):
        Settings.from_env()


def test_uvicorns_forwarded_allow_ips_is_read_as_trusted_proxies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Operators were told to set it; `serve` no longer lets uvicorn read it.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.1.2.3")
    assert [str(n) for n in Settings.from_env().trusted_proxies] == ["10.1.2.3/32"]
