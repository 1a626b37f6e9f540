"""``redis://`` / ``rediss://`` URLs: where the server is and who we are to it (ACL user, password).

Parsed here rather than by redis-py's ``from_url`` so that a bad URL is one clear
:class:`StoreError` (with the password masked), never a ``TypeError`` from a query argument, and
so the connection settings (timeouts, retries) are always ours, never the library's defaults.

Standard library only, and not even :mod:`urllib.parse` (it loads ``re``): the hook's hot path
parses the store's URL before every tool call (docs/redis.md, "Choosing the store").

====================  ===================================================
URL part              meaning
====================  ===================================================
``redis://``          plain TCP (loopback, a private network)
``rediss://``         TLS, certificate verification on
``user:password@``    ACL user and password (percent-encoded); user alone is allowed
``host:port``         default port 6379; an IPv6 address in brackets
``/db``               database number, default 0
``?ssl_ca_certs=F``   a private CA bundle (``rediss://`` only)
====================  ===================================================
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the hook's hot path imports this module
if TYPE_CHECKING:
    from typing import Any

    from oxtail_core.errors import StoreError

SCHEMES = {"redis": False, "rediss": True}
QUERY = ("ssl_ca_certs",)
DEFAULT_PORT = 6379
_HEX = "0123456789abcdefABCDEF"
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class RedisTarget:
    """A parsed server address and identity (immutable; the password never shows in ``repr``)."""

    __slots__ = ("ca_certs", "db", "host", "password", "port", "tls", "username")
    host: str
    port: int
    db: int
    tls: bool
    username: str | None
    password: str | None
    ca_certs: str | None

    def __init__(
        self,
        host: str,
        *,
        port: int = DEFAULT_PORT,
        db: int = 0,
        tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        ca_certs: str | None = None,
    ) -> None:
        fields = {"host": host, "port": port, "db": db, "tls": tls, "username": username}
        fields.update(password=password, ca_certs=ca_certs)
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"RedisTarget is immutable ({name})")

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RedisTarget) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={'***' if name == 'password' and value is not None else repr(value)}"
            for name, value in zip(self.__slots__, self._fields(), strict=True)
        )
        return f"RedisTarget({shown})"

    def with_password(self, password: str) -> RedisTarget:
        """The same target with ``password`` (read from ``OXTAIL_REDIS_PASSWORD_FILE``)."""
        return RedisTarget(
            self.host,
            port=self.port,
            db=self.db,
            tls=self.tls,
            username=self.username,
            password=password,
            ca_certs=self.ca_certs,
        )

    def masked(self) -> str:
        """The URL for messages and status: the password is never shown."""
        return self._render("***")

    def url(self) -> str:
        """The whole URL, password included (percent-encoded): what ``parse_url`` reads back."""
        return self._render(None)

    def _render(self, mask: str | None) -> str:
        scheme = "rediss" if self.tls else "redis"
        who = ""
        if self.username or self.password:
            secret = "" if not self.password else ":" + (mask or quote(self.password))
            who = f"{quote(self.username or '')}{secret}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = f"?ssl_ca_certs={quote(self.ca_certs)}" if self.ca_certs and mask is None else ""
        return f"{scheme}://{who}{host}:{self.port}/{self.db}{query}"

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


def quote(text: str) -> str:
    """Percent-encode everything but RFC 3986's unreserved characters (UTF-8)."""
    return "".join(
        chr(b) if chr(b) in _UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8", "surrogatepass")
    )


def unquote(text: str) -> str:
    """Decode ``%XX`` escapes (as UTF-8; an invalid sequence decodes to U+FFFD); ``%`` alone stays."""
    if "%" not in text:
        return text
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "%" and i + 2 < len(text) and text[i + 1] in _HEX and text[i + 2] in _HEX:
            out.append(int(text[i + 1 : i + 3], 16))
            i += 3
            continue
        out += c.encode("utf-8", "surrogatepass")
        i += 1
    return out.decode("utf-8", "replace")


def _fail(url: str, why: str) -> StoreError:
    from oxtail_core.errors import StoreError

    return StoreError(f"bad Redis URL {_shown(url)}: {why}")


def _shown(url: str) -> str:
    """``url`` with the password of its user part (if any) replaced by ``***``."""
    head, sep, rest = url.partition("://")
    if not sep:
        return url if "@" not in url else "<a URL with a password>"
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    userinfo, at, _ = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{head}://{user}:***@{rest[len(userinfo) + 1 :]}"


def _split_host(url: str, hostport: str) -> tuple[str, int]:
    if hostport.startswith("["):
        host, bracket, tail = hostport[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise _fail(url, "a bracketed IPv6 host must be [address] or [address]:port")
        port_text = tail[1:] if tail else None
    else:
        host, colon, port_text_ = hostport.partition(":")
        port_text = port_text_ if colon else None
    if port_text is None or port_text == "":
        return host, DEFAULT_PORT
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) <= 65535:
        raise _fail(url, "the port must be a number from 1 to 65535")
    return host, int(port_text)


def _query(url: str, text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        found[unquote(name.replace("+", " "))] = unquote(value.replace("+", " "))
    unknown = sorted(set(found) - set(QUERY))
    if unknown:
        raise _fail(url, f"unknown query argument(s) {', '.join(unknown)}")
    return found


def parse_url(url: str) -> RedisTarget:
    """The target of a ``redis://`` or ``rediss://`` URL; a StoreError says what is wrong."""
    if not isinstance(url, str) or not url.isprintable() or " " in url:
        raise _fail(str(url)[:200], "a URL has no spaces or control characters")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise _fail(url, "the scheme must be redis:// or rediss://")
    if "#" in rest:
        raise _fail(url, "a fragment (#...) means nothing here")
    rest, _, query_text = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    host, port = _split_host(url, hostport)
    if not host:
        raise _fail(url, "no host")
    path = path.strip("/")
    if path and not (path.isascii() and path.isdigit()):
        raise _fail(url, "the path must be a database number")
    query = _query(url, query_text)
    tls = SCHEMES[scheme.lower()]
    ca = query.get("ssl_ca_certs")
    if ca is not None and not tls:
        raise _fail(url, "ssl_ca_certs needs rediss://")
    username: str | None = None
    password: str | None = None
    if at:
        user_text, colon, password_text = userinfo.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if colon else None
    return RedisTarget(
        host=host.lower() if host.isascii() else host,
        port=port,
        db=int(path) if path else 0,
        tls=tls,
        username=username,
        password=password,
        ca_certs=ca or None,
    )
