"""Reading the query API's parameters from form, multipart and query-string bodies.

Every failure is a :class:`ParamError` naming what is wrong; nothing here raises anything
else for any body a client can send.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncGenerator
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
    _merge(params, _parse_urlencoded(request.scope.get("query_string", b""), "utf-8"))
    try:
        # A client trickling its body would otherwise hold a connection (and this
        # coroutine) for as long as it likes.
        async with asyncio.timeout(timeout):
            body = await _read_body(request, max_body)
    except TimeoutError:
        raise BodyTimeout(f"request body not received within {timeout:g} s") from None
    if body:
        media_type, options = _content_type(request.headers.get("content-type", ""))
        if media_type == "application/x-www-form-urlencoded":
            _merge(params, _parse_urlencoded(body, options.get("charset", "utf-8")))
        elif media_type == "multipart/form-data":
            _merge(params, await _parse_multipart(request, body))
        else:
            raise ParamError(
                "Content-Type must be application/x-www-form-urlencoded or multipart/form-data"
            )
    return params


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
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
    options = {}
    for part in rest.split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            options[key.lower()] = value.strip().strip('"')
    return media_type.strip().lower(), options


def _parse_urlencoded(body: bytes, charset: str) -> list[tuple[str, str]]:
    try:
        codecs.lookup(charset)
    except LookupError:
        raise ParamError(f"unknown charset {charset!r}") from None
    try:
        text = body.decode(charset)
        return parse_qsl(
            text,
            keep_blank_values=True,
            encoding=charset,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise ParamError(f"form body is not valid {charset}") from None
    except ValueError:
        raise ParamError(f"at most {MAX_FIELDS} form fields are accepted") from None


async def _parse_multipart(request: Request, body: bytes) -> list[tuple[str, str]]:
    async def replay() -> AsyncGenerator[bytes, None]:
        yield body

    # One file is let through the parser only so the error below can name its field.
    parser = MultiPartParser(request.headers, replay(), max_files=1, max_fields=MAX_FIELDS)
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
        if name in params and params[name] != value:
            raise ParamError(f"{name} is given more than once with different values")
        params[name] = value
