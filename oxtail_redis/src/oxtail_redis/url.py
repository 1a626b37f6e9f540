"""``redis://`` / ``rediss://`` URLs: where the server is and who we are to it (ACL user, password).

Parsed here rather than by redis-py's ``from_url`` so that a bad URL is one clear
:class:`StoreError` (with the password masked), never a ``TypeError`` from a query argument, and
so the connection settings (timeouts, retries) are always ours, never the library's defaults.

====================  ===================================================
URL part              meaning
====================  ===================================================
``redis://``          plain TCP (loopback, a private network)
``rediss://``         TLS, certificate verification on
``user:password@``    ACL user and password (percent-encoded); user alone is allowed
``host:port``         default port 6379
``/db``               database number, default 0
``?ssl_ca_certs=F``   a private CA bundle (``rediss://`` only)
====================  ===================================================
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import attrs

from oxtail_core.errors import StoreError

SCHEMES = {"redis": False, "rediss": True}
_QUERY = frozenset({"ssl_ca_certs"})


@attrs.frozen
class RedisTarget:
    """A parsed server address and identity."""

    host: str
    port: int = 6379
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    ca_certs: str | None = None

    def masked(self) -> str:
        """The URL for messages and status: the password is never shown."""
        scheme = "rediss" if self.tls else "redis"
        who = ""
        if self.username or self.password:
            who = f"{self.username or ''}{':***' if self.password else ''}@"
        return f"{scheme}://{who}{self.host}:{self.port}/{self.db}"

    def connection_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``redis.Redis`` for this target (no timeouts: the store sets them)."""
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "db": self.db,
            "username": self.username,
            "password": self.password,
        }
        if self.tls:
            kwargs["ssl"] = True
            kwargs["ssl_cert_reqs"] = "required"
            if self.ca_certs:
                kwargs["ssl_ca_certs"] = self.ca_certs
        return kwargs


def _fail(url: str, why: str) -> StoreError:
    shown = url
    try:
        parts = urlsplit(url)
        if parts.password:
            shown = url.replace(parts.password, "***", 1)
    except ValueError:
        shown = "<unparseable URL>"
    return StoreError(f"bad Redis URL {shown}: {why}")


def parse_url(url: str) -> RedisTarget:
    """The target of a ``redis://`` or ``rediss://`` URL; a StoreError says what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _fail(url, str(exc)) from None
    if parts.scheme not in SCHEMES:
        raise _fail(url, "the scheme must be redis:// or rediss://")
    if not parts.hostname:
        raise _fail(url, "no host")
    if parts.fragment:
        raise _fail(url, "a fragment (#...) means nothing here")
    path = parts.path.strip("/")
    if path and not (path.isascii() and path.isdigit()):
        raise _fail(url, "the path must be a database number")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - _QUERY)
    if unknown:
        raise _fail(url, f"unknown query argument(s) {', '.join(unknown)}")
    tls = SCHEMES[parts.scheme]
    ca = query.get("ssl_ca_certs", [None])[-1]
    if ca is not None and not tls:
        raise _fail(url, "ssl_ca_certs needs rediss://")
    return RedisTarget(
        host=parts.hostname,
        port=port if port is not None else 6379,
        db=int(path) if path else 0,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        ca_certs=ca or None,
    )
