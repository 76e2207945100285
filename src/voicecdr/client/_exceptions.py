"""The client's exceptions, one tree rooted at :class:`ClientError`::

    ClientError
    ├── TransportError          the endpoint could not be reached or did not answer in time
    ├── ProtocolError           the answer is not NXCloud's envelope (a proxy page, bad JSON)
    ├── ApiError                the endpoint answered {"code": "0", "error": slug, ...}
    │   ├── AuthFailed          auth_failed: wrong appkey or secretkey
    │   ├── InvalidParameter    invalid_parameter: the message names the parameter
    │   ├── RangeTooLarge       range_too_large: the window is longer than the server allows
    │   ├── OutOfWindow         out_of_window: start_time is older than the server keeps
    │   ├── RateLimited         rate_limited: still limited after the retries
    │   └── ServerError         internal (or an error slug this client does not know)
    ├── IncompleteExport        a span's total kept growing past the re-check bound
    ├── ExportError             an export cannot start: its output or checkpoint is in the way
    ├── WindowError             a window that cannot be queried (also a ValueError)
    └── ReceiptError            a receipt that must not be trusted or cannot be read
        ├── SignatureError      missing, stale or non-matching webhook signature
        └── MalformedReceipt    a signed body that is not a receipt form

Transient failures (``TransportError``, ``ServerError``, ``RateLimited`` and HTTP 5xx) are
retried by the client before they are raised; the others are raised at once.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of every exception the client raises."""


class TransportError(ClientError):
    """The request did not complete: connection refused, reset, or a timeout."""


class ProtocolError(ClientError):
    """The endpoint answered, but not with NXCloud's JSON envelope."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ApiError(ClientError):
    """A failure envelope, ``{"code": "0", "info": message, "error": slug}``."""

    slug = ""

    def __init__(self, message: str, slug: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if slug is not None:
            self.slug = slug

    def __str__(self) -> str:
        return f"{self.slug or 'error'}: {self.message}"


class AuthFailed(ApiError):
    """The appkey or secretkey is wrong; never retried."""

    slug = "auth_failed"


class InvalidParameter(ApiError):
    """A parameter the endpoint refuses; the message names it. Never retried."""

    slug = "invalid_parameter"


class RangeTooLarge(ApiError):
    """The window is longer than the endpoint allows in one query."""

    slug = "range_too_large"


class OutOfWindow(ApiError):
    """``start_time`` is older than the endpoint keeps records queryable."""

    slug = "out_of_window"


class RateLimited(ApiError):
    """``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one."""

    slug = "rate_limited"

    def __init__(
        self, message: str, slug: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, slug)
        self.retry_after = retry_after


class ServerError(ApiError):
    """The endpoint failed (``internal`` or HTTP 5xx); retried before raised."""

    slug = "internal"


class IncompleteExport(ClientError):
    """A span's reported total stayed above what paging could collect."""


class ExportError(ClientError):
    """The export cannot start: the output exists, or a checkpoint belongs to another job."""


class WindowError(ClientError, ValueError):
    """A window that cannot be queried: its start after its end, or a bound outside the
    years 0001-9999 once in the app's timezone."""


class ReceiptError(ClientError):
    """A receipt that must not be trusted or cannot be read."""


class SignatureError(ReceiptError):
    """The webhook headers are missing, outside the tolerance window, or no signature
    matches the signing secret."""


class MalformedReceipt(ReceiptError):
    """The body is not an NXCloud voice receipt form."""


SLUGS: dict[str, type[ApiError]] = {
    cls.slug: cls
    for cls in (AuthFailed, InvalidParameter, RangeTooLarge, OutOfWindow, RateLimited, ServerError)
}
