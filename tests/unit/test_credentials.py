from __future__ import annotations

import base64

import pytest

from voicecdr import credentials


def test_generated_credentials_are_long_and_random() -> None:
    keys = {credentials.new_appkey() for _ in range(50)}
    secrets = {credentials.new_secretkey() for _ in range(50)}
    assert len(keys) == len(secrets) == 50
    assert all(len(k) == 32 for k in keys)
    assert all(len(s) >= 43 for s in secrets)


def test_signing_secret_is_standard_webhooks_form() -> None:
    secret = credentials.new_signing_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_hash_is_salted_and_verifies() -> None:
    one, two = credentials.hash_secret("s3cret"), credentials.hash_secret("s3cret")
    assert one != two
    assert "s3cret" not in one
    assert credentials.verify_secret("s3cret", one)
    assert credentials.verify_secret("s3cret", two)
    assert not credentials.verify_secret("s3cret ", one)
    assert not credentials.verify_secret("", one)


@pytest.mark.parametrize("stored", ["", "plain", "md5$x$y", "sha256$only-two", "sha256$a$b$c"])
def test_malformed_stored_hash_never_verifies(stored: str) -> None:
    assert not credentials.verify_secret("anything", stored)


@pytest.mark.parametrize("appkey", ["", "has space", "x" * 65, "semi;colon", "ключ"])
def test_appkey_rules(appkey: str) -> None:
    with pytest.raises(ValueError, match="appkey must be"):
        credentials.check_appkey(appkey)


@pytest.mark.parametrize("secret", ["", " padded", "tab\tinside", "x" * 257])
def test_secretkey_rules(secret: str) -> None:
    with pytest.raises(ValueError, match="secretkey must be"):
        credentials.check_secretkey(secret)
