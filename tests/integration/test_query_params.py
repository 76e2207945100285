"""How the query API reads what a client sends: charsets, digits, numbers, paths.

Every malformed request is answered in the NXCloud envelope with a message naming the
field (or header) and what is allowed; none of them is ``internal``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from tests.support.asgi import raw_post
from tests.support.data import canonical, make_app
from voicecdr.api import QUERY_PATH, create_app
from voicecdr.config import Settings
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.storage import AppStore, CdrWriter, Database

FORM_TYPE = "application/x-www-form-urlencoded"
FORM = {
    "appkey": "app1",
    "secretkey": "secret1",
    "voiceType": "0",
    "start_time": "2019-09-09 09:00:00",
    "end_time": "2019-09-09 09:00:59",
    "page_size": "10",
    "page": "1",
}


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    make_app(db, "app1", secretkey="secret1")
    records = [canonical("g1", messageid="m1"), canonical("g2", time="2019-09-09 09:00:05")]
    summary = Ingestor(AppStore(db), CdrWriter(db)).ingest(
        Item(i, r) for i, r in enumerate(records)
    )
    assert summary.accepted == 2
    ingest = {"ingest_token": SecretStr("token-0123"), "freeswitch_credentials": SecretStr("fs:pw")}
    settings = settings.model_copy(update={"max_age_days": 0, **ingest})
    app = create_app(settings, db)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client


def answer(client: TestClient, url: str = QUERY_PATH, **kwargs: Any) -> dict[str, Any]:
    response = client.post(url, **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(client: TestClient, **kwargs: Any) -> str:
    """The message of an ``invalid_parameter`` answer."""
    body = answer(client, **kwargs)
    assert body["code"] == "0", body
    assert body["error"] == "invalid_parameter", body
    message: str = body["info"]
    return message


def form_body(charset: str, **overrides: str) -> dict[str, Any]:
    return {
        "content": urlencode({**FORM, **overrides}).encode(),
        "headers": {"content-type": f"{FORM_TYPE}; charset={charset}"},
    }


# Codecs Python knows that are not character sets: bytes-to-bytes transforms, str-to-str
# ones, and text codecs that do not spell text (IDNA labels, escapes, "undefined").
NOT_CHARSETS = [
    "base64",
    "base_64",
    "rot13",
    "rot-13",
    "hex",
    "zip",
    "zlib",
    "bz2",
    "uu",
    "quopri",
    "punycode",
    "idna",
    "undefined",
    "unicode_escape",
    "raw-unicode-escape",
]


@pytest.mark.parametrize("charset", NOT_CHARSETS)
def test_a_codec_that_is_not_a_charset_is_refused_by_name(client: TestClient, charset: str) -> None:
    message = refused(client, **form_body(charset))
    assert message == (
        f"charset {charset!r} of the Content-Type is not a character set: send utf-8"
    ), message


@pytest.mark.parametrize("charset", ["klingon", "", "utf-8\x01", "x" * 200, "'utf-8'"])
def test_an_unknown_charset_is_refused_by_name(client: TestClient, charset: str) -> None:
    message = refused(client, **form_body(charset))
    assert message == f"unknown charset {charset!r} in the Content-Type: send utf-8", message


@pytest.mark.parametrize(
    "header",
    [
        f"{FORM_TYPE}; charset=utf-8",
        f"{FORM_TYPE}; charset=UTF8",
        f'{FORM_TYPE}; charset="utf-8"',
        f"{FORM_TYPE};charset=utf-8 ",
        f"{FORM_TYPE}; charset = utf-8",
        f"{FORM_TYPE}; charset=utf-8; charset=UTF-8",
        f"{FORM_TYPE}; charset=latin-1",
        f"{FORM_TYPE}; charset=utf-8-sig",
        f"{FORM_TYPE}; charset=gb18030",
    ],
)
def test_real_charsets_are_read(client: TestClient, header: str) -> None:
    body = answer(client, content=urlencode(FORM).encode(), headers={"content-type": header})
    assert body["code"] == "1", body
    assert body["info"]["total"] == 2


@pytest.mark.parametrize(
    "charsets", ["charset=utf-8; charset=base64", "charset=gbk; Charset =utf-8"]
)
def test_charsets_that_disagree_are_refused(client: TestClient, charsets: str) -> None:
    headers = {"content-type": f"{FORM_TYPE}; {charsets}"}
    message = refused(client, content=urlencode(FORM).encode(), headers=headers)
    assert message == "the Content-Type gives charset more than once with different values"


@pytest.mark.parametrize("charset", ["utf-16", "utf-16-le", "utf-32", "utf-8-sig", "utf-7"])
def test_a_body_wholly_in_its_charset_is_read(client: TestClient, charset: str) -> None:
    # Unescaped, as such clients send it: a percent-escape would be bytes in that charset.
    text = "&".join(f"{k}={v}" for k, v in {**FORM, "messageid": "m1"}.items())
    body = answer(
        client,
        content=text.encode(charset),
        headers={"content-type": f"{FORM_TYPE}; charset={charset}"},
    )
    assert body["code"] == "1", body
    assert body["info"]["total"] == 1


@pytest.mark.parametrize(
    ("charset", "content"),
    [
        ("utf-16", b"a"),  # an odd number of bytes
        ("utf-32", b"\xff\xff\xff\xff"),
        ("utf-16", "appkey=%41".encode("utf-16")),  # %41 alone is no utf-16 text
        ("utf-7", b"appkey=+2AA-"),  # a lone surrogate
        ("utf-7", b"appkey=%2B2AA-"),
        ("gbk", b"appkey=%81"),
    ],
)
def test_a_body_not_in_its_charset_is_refused(
    client: TestClient, charset: str, content: bytes
) -> None:
    headers = {"content-type": f"{FORM_TYPE}; charset={charset}"}
    message = refused(client, content=content, headers=headers)
    assert message == f"form body is not valid {charset}", message


def multipart(charset: str, **overrides: str) -> dict[str, Any]:
    boundary = "b0undary"
    parts = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n'
        f"Content-Type: text/plain; charset={charset}\r\n\r\n".encode()
        + v.encode(charset)
        + b"\r\n"
        for k, v in {**FORM, **overrides}.items()
    )
    return {
        "content": parts + f"--{boundary}--\r\n".encode(),
        "headers": {"content-type": f"multipart/form-data; boundary={boundary}; charset={charset}"},
    }


@pytest.mark.parametrize(
    ("charset", "message"),
    [
        ("base64", "charset 'base64' of the Content-Type is not a character set: send utf-8"),
        ("undefined", "charset 'undefined' of the Content-Type is not a character set: send utf-8"),
        ("klingon", "unknown charset 'klingon' in the Content-Type: send utf-8"),
    ],
)
def test_multipart_charsets_are_checked_like_form_ones(
    client: TestClient, charset: str, message: str
) -> None:
    body = multipart("utf-8")
    header = body["headers"]["content-type"]
    body["headers"]["content-type"] = header.replace("charset=utf-8", f"charset={charset}")
    assert refused(client, **body) == message


@pytest.mark.parametrize("charset", ["utf-8", "gbk", "latin-1"])
def test_multipart_in_a_charset_is_read(client: TestClient, charset: str) -> None:
    body = answer(client, **multipart(charset, messageid="m1"))
    assert body["code"] == "1", body
    assert body["info"]["total"] == 1


def multipart_raw(charset: str, field: str, raw: bytes) -> dict[str, Any]:
    """A multipart body in ``charset`` whose ``field`` holds the bytes ``raw``."""
    body = multipart(charset, **{field: "PLACEHOLDER"})
    body["content"] = body["content"].replace("PLACEHOLDER".encode(charset), raw)
    return body


@pytest.mark.parametrize(
    ("charset", "field", "raw"),
    [
        ("utf-8", "appkey", b"de\xffmo"),
        ("utf-8", "messageid", b"\xff\xfe"),
        ("utf-8", "secretkey", b"\xc3"),
        ("utf-7", "messageid", b"+2AA-"),  # a lone surrogate
        ("gbk", "messageid", b"\x81"),
    ],
)
def test_multipart_values_not_in_their_charset_are_refused_by_name(
    client: TestClient, charset: str, field: str, raw: bytes
) -> None:
    # Starlette's parser would read them as latin-1, silently.
    message = refused(client, **multipart_raw(charset, field, raw))
    assert message == f"{field} is not valid {charset}", message


def test_bad_utf8_in_the_query_string_names_the_query_string(client: TestClient) -> None:
    message = refused(client, url=f"{QUERY_PATH}?appkey=%FF%FE", data=FORM)
    assert message == "query string is not valid utf-8", message


# The first of ten digits of some scripts whose digits str.isdigit(), \\d and int() accept.
FULLWIDTH, ARABIC_INDIC, PERSIAN, DEVANAGARI, MATH_BOLD = 0xFF10, 0x0660, 0x06F0, 0x0966, 0x1D7CE


def in_script(text: str, zero: int) -> str:
    """``text`` with its ASCII digits written in the script whose zero is ``zero``."""
    return text.translate({ord("0") + i: zero + i for i in range(10)})


@pytest.mark.parametrize(
    "digits",
    [
        in_script("2019-09-09 09:00:00", FULLWIDTH),
        in_script("2019-09-09 09:00:00", ARABIC_INDIC),
        in_script("2019-09-09 09:00:00", PERSIAN),
        in_script("2019-09-09 09:00:00", DEVANAGARI),
        "2019-09-09 09:00:0" + in_script("0", ARABIC_INDIC),  # one digit is enough
        in_script("2019", MATH_BOLD) + "-09-09 09:00:00",
    ],
)
@pytest.mark.parametrize("field", ["start_time", "end_time"])
def test_times_take_ascii_digits_only(client: TestClient, field: str, digits: str) -> None:
    message = refused(client, data={**FORM, field: digits})
    assert message == f"{field} must be yyyy-MM-dd HH:mm:ss with ASCII digits 0-9", message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("voiceType", in_script("1", FULLWIDTH)),
        ("voiceType", in_script("0", ARABIC_INDIC)),
        ("extended", in_script("1", FULLWIDTH)),
        ("page", in_script("1", FULLWIDTH)),
        ("page", "\N{SUPERSCRIPT TWO}"),  # isdigit() says yes, int() says no
        ("page_size", in_script("10", ARABIC_INDIC)),
    ],
)
def test_other_numbers_take_ascii_digits_only(client: TestClient, field: str, value: str) -> None:
    message = refused(client, data={**FORM, field: value})
    assert message.startswith(f"{field} must be "), message


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("page", "0", "page must be a whole number from 1 to 1000000000"),
        ("page", "-1", "page must be a whole number from 1 to 1000000000"),
        ("page", "1.5", "page must be a whole number from 1 to 1000000000"),
        ("page", "1000000001", "page must be a whole number from 1 to 1000000000"),
        ("page", str(10**12), "page must be a whole number from 1 to 1000000000"),
        ("page", "9" * 5000, "page must be a whole number from 1 to 1000000000"),
        ("page_size", "0", "page_size must be a whole number from 1 to 1000"),
        ("page_size", "1001", "page_size must be a whole number from 1 to 1000"),
        ("page_size", str(10**12), "page_size must be a whole number from 1 to 1000"),
        ("page_size", " 10", "page_size must be a whole number from 1 to 1000"),
    ],
)
def test_numbers_out_of_range_say_the_range(
    client: TestClient, field: str, value: str, message: str
) -> None:
    assert refused(client, data={**FORM, field: value}) == message


@pytest.mark.parametrize("page", ["1000000000", "0001"])
def test_the_largest_page_and_leading_zeros_are_read(client: TestClient, page: str) -> None:
    body = answer(client, data={**FORM, "page": page})
    assert body["code"] == "1", body
    assert body["info"]["total"] == 2
    assert body["info"]["page"] == int(page)


def test_a_trailing_slash_on_the_query_path_is_the_same_endpoint(client: TestClient) -> None:
    plain = answer(client, data=FORM)
    slashed = answer(client, f"{QUERY_PATH}/", data=FORM)
    assert slashed == plain
    assert plain["info"]["total"] == 2
    wrong = answer(client, f"{QUERY_PATH}/", data={**FORM, "page": "x"})
    assert wrong["error"] == "invalid_parameter"
    get = client.get(f"{QUERY_PATH}/")
    assert get.status_code == 405
    assert get.headers["allow"] == "POST"
    assert get.json() == {
        "code": "0",
        "info": "method not allowed: use POST",
        "error": "invalid_parameter",
    }


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/healthz", {}),
        ("GET", "/openapi.json", {}),
        ("POST", "/v1/cdrs", {"headers": {"authorization": "Bearer token-0123"}, "json": []}),
        ("POST", "/v1/cdrs", {}),
        ("POST", "/v1/ingest/freeswitch", {}),
        ("GET", "/v1/cdrs", {}),
        ("GET", "/v1/analytics", {}),
    ],
)
def test_no_route_redirects_a_trailing_slash(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    plain = client.request(method, path, **kwargs)
    slashed = client.request(method, f"{path}/", **kwargs)
    assert plain.status_code < 500, plain.text
    assert slashed.status_code == plain.status_code, slashed.text
    assert slashed.content == plain.content
    assert "location" not in slashed.headers


def test_unknown_paths_are_404_with_or_without_a_slash(client: TestClient) -> None:
    for path in ("/nowhere", "/nowhere/", "/v1/", "//"):
        response = client.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert "location" not in response.headers
    root = client.post("/")
    assert root.status_code == 404


@pytest.mark.parametrize("field", ["appkey", "secretkey", "messageid", "voiceType", "page"])
def test_a_nul_character_is_refused_by_name(client: TestClient, field: str) -> None:
    # PostgreSQL cannot hold or compare text with NUL in it; no value with one is valid.
    message = refused(client, data={**FORM, "messageid": "m1", field: "m1\x00"})
    assert message == f"{field} must not contain a NUL character", message


def test_a_content_length_of_other_digits_is_not_a_crash(client: TestClient) -> None:
    # HTTP servers check Content-Length before the app does; over bare ASGI no one has.
    # A declared length that is not a number is ignored: the body's read is bounded anyway
    # (test_ingest_api holds the same for the ingest routes).
    superscript_two = b"\xb2"  # "²" in latin-1: str.isdigit() says yes, int() says no
    headers = [(b"content-type", FORM_TYPE.encode()), (b"content-length", superscript_two)]
    status, body = raw_post(client, QUERY_PATH, headers, urlencode(FORM).encode())
    assert status == 200
    assert orjson.loads(body)["code"] == "1", body
