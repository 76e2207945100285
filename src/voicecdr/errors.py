"""The one exception tree of voicecdr.

::

    VoiceCdrError
    ├── ConfigError            a setting or command-line value is unusable
    ├── NotFound               an app (or other named thing) does not exist
    ├── Conflict               a unique name or key is already taken
    ├── ValidationError        a value breaks the contract; ``.field`` names it
    ├── TokenRefused           a request's rate-limit token was refused; nothing was read
    └── StorageError           the database failed (the driver's error is the ``__cause__``)
        ├── SchemaOutOfDate    the database needs ``voicecdr db upgrade``
        └── DatabaseUnavailable  the database cannot serve now (down, read-only, disk
                               full): nothing of the request was done; retry later

Driver and library exceptions never escape ``voicecdr.storage``: they are translated here
with the original kept as the cause.
"""

from __future__ import annotations


class VoiceCdrError(Exception):
    """Base of every error voicecdr raises on purpose."""


class ConfigError(VoiceCdrError):
    """A setting or command-line value cannot be used."""


class NotFound(VoiceCdrError):
    """The named thing does not exist."""


class Conflict(VoiceCdrError):
    """A unique name or key is already taken."""


class ValidationError(VoiceCdrError):
    """A value breaks the contract. ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TokenRefused(VoiceCdrError):
    """A request's rate-limit token was refused (its rate, or its address locked out);
    nothing of the request was read. The limiter's ``refused`` tells which."""


class StorageError(VoiceCdrError):
    """The database could not do what was asked."""


class SchemaOutOfDate(StorageError):
    """The database schema is behind this version of voicecdr."""


class DatabaseUnavailable(StorageError):
    """The database cannot do its work now, whatever is asked: its server is down or
    unreachable, its file system is read-only, or its disk is full. The message names
    which. Nothing of the failed operation was stored."""
