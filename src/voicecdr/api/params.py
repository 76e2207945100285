"""Reading the query API's parameters from form, multipart and query-string bodies.

Every failure is a :class:`ParamError` naming what is wrong; nothing here raises anything
else for any body a client can send.
"""

from __future__ import annotations

import asyncio
import codecs
import encodings
import encodings.aliases
import pkgutil
import re
from collections.abc import AsyncGenerator
from functools import cache, lru_cache
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

MAX_FIELDS = 50


class ParamError(ValueError):
    """A request whose parameters cannot be read; the message names the problem."""


class BodyTimeout(ParamError):
    """The body did not arrive in time; the connection should not be reused."""


async def read_params(request: Request, max_body: int, timeout: float) -> dict[str, str]:
    """All parameters, query string and body together; a name given twice must agree.
    The whole body must arrive within ``timeout`` seconds."""
    params: dict[str, str] = {}
    query = request.scope.get("query_string", b"")
    if query:
        _merge(params, _parse_urlencoded(query, "utf-8", "utf-8", "query string"))
    try:
        # A client trickling its body would otherwise hold a connection (and this
        # coroutine) for as long as it likes.
        async with asyncio.timeout(timeout):
            body = await _read_body(request, max_body)
    except TimeoutError:
        raise BodyTimeout(f"request body not received within {timeout:g} s") from None
    if body:
        media_type, options = _content_type(request.headers.get("content-type", ""))
        charset = options.get("charset", "utf-8")
        if media_type == "application/x-www-form-urlencoded":
            _merge(params, _parse_urlencoded(body, _codec(charset), charset, "form body"))
        elif media_type == "multipart/form-data":
            _codec(charset)  # the parser falls back to latin-1 silently; say what is wrong
            _merge(params, await _parse_multipart(request, body))
        else:
            raise ParamError(
                "Content-Type must be application/x-www-form-urlencoded or multipart/form-data"
            )
    return params


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    # ASCII digits only: str.isdigit() also takes "²", which int() then refuses. A header
    # that is not a number is the HTTP server's to refuse; the read below is bounded anyway.
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise ParamError(f"request body must be at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ParamError(f"request body must be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _content_type(header: str) -> tuple[str, dict[str, str]]:
    media_type, _, rest = header.partition(";")
    options: dict[str, str] = {}
    for part in rest.split(";"):
        key, _, value = part.strip().partition("=")
        key, value = key.strip().lower(), value.strip().strip('"')
        if key in options and options[key].lower() != value.lower():
            raise ParamError(f"the Content-Type gives {key} more than once with different values")
        if key:
            options[key] = value
    return media_type.strip().lower(), options


# Names a charset can have (IANA's are at most 40 of these characters).
_CHARSET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,39}")
# Codecs that decode bytes to text without being a character set text is written in.
_NOT_CHARSETS = frozenset({"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape"})


@lru_cache(maxsize=64)
def _codec(charset: str) -> str:
    """The codec of a Content-Type's charset; :class:`ParamError` unless it is a character
    set Python knows. Bytes-to-bytes codecs (base64, zip) and str-to-str ones (rot13) pass
    ``codecs.lookup`` and only fail at decoding, with a LookupError: refused here by name."""
    normalized = encodings.normalize_encoding(charset.lower())
    # Python's codec search remembers every name it failed to find: only names of the
    # codecs it has are looked up, so clients cannot grow that memory without end.
    known = _codec_names()
    if not _CHARSET_RE.fullmatch(charset) or (
        normalized not in known and normalized.replace(".", "_") not in known
    ):
        raise ParamError(f"unknown charset {charset!r} in the Content-Type: send utf-8")
    try:
        info = codecs.lookup(charset)
    except LookupError:
        raise ParamError(f"unknown charset {charset!r} in the Content-Type: send utf-8") from None
    if not info._is_text_encoding or info.name in _NOT_CHARSETS:
        raise ParamError(
            f"charset {charset!r} of the Content-Type is not a character set: send utf-8"
        )
    return info.name


@cache
def _codec_names() -> frozenset[str]:
    modules = {module.name for module in pkgutil.iter_modules(encodings.__path__)}
    return frozenset(modules | set(encodings.aliases.aliases))


def _parse_urlencoded(data: bytes, codec: str, charset: str, what: str) -> list[tuple[str, str]]:
    """``data`` decoded with ``codec`` (named ``charset`` by the client), percent-escapes
    included; ``what`` names it in errors."""
    try:
        pairs = parse_qsl(
            data.decode(codec),
            keep_blank_values=True,
            encoding=codec,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeError:  # not only UnicodeDecodeError: some codecs raise their parent
        raise ParamError(f"{what} is not valid {charset}") from None
    except ValueError:
        raise ParamError(f"at most {MAX_FIELDS} form fields are accepted") from None
    if codec != "utf-8":
        # Some codecs (utf-7) decode to lone surrogates, which are no text to store or
        # compare; strict UTF-8 decoding never does.
        for name, value in pairs:
            try:
                name.encode(), value.encode()
            except UnicodeEncodeError:
                raise ParamError(f"{what} is not valid {charset}") from None
    return pairs


class _StrictMultiPartParser(MultiPartParser):
    """Starlette's parser reads a value that is not valid in the body's charset as
    latin-1, silently: this one refuses it, naming the field, as form bodies are."""

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is None:
            try:
                # Some codecs (utf-7) decode to lone surrogates, which are no text.
                bytes(part.data).decode(self._charset).encode()
            except UnicodeError:
                raise ParamError(f"{part.field_name} is not valid {self._charset}") from None
        super().on_part_end()


async def _parse_multipart(request: Request, body: bytes) -> list[tuple[str, str]]:
    async def replay() -> AsyncGenerator[bytes, None]:
        yield body

    # One file is let through the parser only so the error below can name its field.
    parser = _StrictMultiPartParser(request.headers, replay(), max_files=1, max_fields=MAX_FIELDS)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ParamError(f"multipart body: {exc.message}") from None
    try:
        pairs: list[tuple[str, str]] = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                raise ParamError(f"{name} must be a plain form field, not a file")
            pairs.append((name, value))
        return pairs
    finally:
        await form.close()


def _merge(params: dict[str, str], pairs: list[tuple[str, str]]) -> None:
    for name, value in pairs:
        if "\x00" in value:
            # No parameter may hold one, and PostgreSQL cannot even compare text with it.
            raise ParamError(f"{name} must not contain a NUL character")
        if name in params and params[name] != value:
            raise ParamError(f"{name} is given more than once with different values")
        params[name] = value
