"""A small RESP2 client, standard library only: what the hook's hot path talks to Redis with.

redis-py costs a hook 124-152 ms of imports before every tool call; this costs ``socket`` (and
``ssl`` only for ``rediss://``). It does exactly what the hot path and the start-up checks need:
one connection, the commands of one round trip written at once (pipelining), every reply read
with bounds. It is not a general client: no pub/sub, no RESP3, no retries (a hook that cannot
reach Redis delivers nothing this time; the next tool call tries again).

=================  ==========================================================================
bound              why
=================  ==========================================================================
``timeout_s``      every connect, send and receive; a hung server costs a hook at most this
``MAX_BULK``       a bulk string longer than this is a protocol error, never an allocation
``MAX_ITEMS``      likewise for an array's length; arrays nest at most ``MAX_DEPTH`` deep
``MAX_LINE``       a status, error or length line
=================  ==========================================================================

A ``-ERR`` reply is returned as a :class:`ReplyError` value in its place (the other replies of
the pipeline still count); a broken or malformed stream raises :class:`RespError`.
"""

from __future__ import annotations

import socket

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the hook's hot path imports this module
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TypeAlias

    from oxtail_redis.url import RedisTarget

    Reply: TypeAlias = "bytes | int | list[Reply] | ReplyError | None"

MAX_BULK = 4 * 1024 * 1024
MAX_ITEMS = 4096
MAX_DEPTH = 4
MAX_LINE = 64 * 1024
_RECV = 65536


class RespError(Exception):
    """The connection failed, timed out, or the server sent something this client will not read."""


class ReplyError:
    """An error reply (``-WRONGTYPE ...``, ``-NOAUTH ...``) in the place of its command's reply."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"ReplyError({self.message!r})"


def encode(command: Sequence[str | bytes | int]) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(command)]
    for arg in command:
        data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class Client:
    """One connection to ``target``, authenticated and on its database after :meth:`pipeline`'s first
    round trip (AUTH and SELECT travel in that same write)."""

    def __init__(self, target: RedisTarget, timeout_s: float = 1.0) -> None:
        self._target = target
        self._buffer = bytearray()
        self._greeted = False
        # an ASCII host as bytes: a str is IDNA-encoded first, which loads re and unicodedata
        host: str | bytes = target.host.encode("ascii") if target.host.isascii() else target.host
        try:
            sock = socket.create_connection((host, target.port), timeout=timeout_s)  # type: ignore[arg-type]  # bytes work
        except OSError as exc:
            raise RespError(f"cannot connect to {target.masked()}: {exc}") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if target.tls:
                import ssl

                context = ssl.create_default_context(cafile=target.ca_certs)
                sock = context.wrap_socket(sock, server_hostname=target.host)
        except OSError as exc:  # ssl.SSLError is an OSError
            sock.close()
            raise RespError(f"cannot connect to {target.masked()}: {exc}") from None
        self._sock = sock

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pipeline(self, commands: Sequence[Sequence[str | bytes | int]]) -> list[Reply]:
        """Send every command in one write, then read one reply per command, in order."""
        hello: list[Sequence[str | bytes | int]] = []
        if not self._greeted:
            t = self._target
            if t.password is not None:
                hello.append(("AUTH", t.username, t.password) if t.username else ("AUTH", t.password))
            if t.db:
                hello.append(("SELECT", t.db))
        data = b"".join(encode(c) for c in (*hello, *commands))
        try:
            self._sock.sendall(data)
            replies = [self._reply(0) for _ in range(len(hello) + len(commands))]
        except OSError as exc:
            raise RespError(f"{self._target.masked()} did not answer: {exc}") from None
        for reply in replies[: len(hello)]:
            if isinstance(reply, ReplyError):
                raise RespError(f"{self._target.masked()} refused us: {reply.message}")
        self._greeted = True
        return replies[len(hello) :]

    def call(self, *command: str | bytes | int) -> Reply:
        """One command, one round trip."""
        return self.pipeline([command])[0]

    # Reading ----------------------------------------------------------------------------------
    def _fill(self) -> None:
        chunk = self._sock.recv(_RECV)
        if not chunk:
            raise RespError(f"{self._target.masked()} closed the connection")
        self._buffer += chunk

    def _line(self) -> bytes:
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                return line
            if len(self._buffer) > MAX_LINE:
                raise RespError("a reply line longer than this client reads")
            self._fill()

    def _exact(self, size: int) -> bytes:
        while len(self._buffer) < size + 2:
            self._fill()
        if self._buffer[size : size + 2] != b"\r\n":
            raise RespError("a bulk string without its CRLF")
        data = bytes(self._buffer[:size])
        del self._buffer[: size + 2]
        return data

    def _reply(self, depth: int) -> Reply:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return ReplyError(rest.decode("utf-8", "replace"))
        if kind in (b":", b"$", b"*"):
            number = _integer(rest)
            if kind == b":":
                return number
            if number < 0:
                return None
            if kind == b"$":
                if number > MAX_BULK:
                    raise RespError(f"a bulk string of {number} bytes (the bound is {MAX_BULK})")
                return self._exact(number)
            if number > MAX_ITEMS or depth >= MAX_DEPTH:
                raise RespError(
                    f"an array of {number} items at depth {depth} (bounds {MAX_ITEMS}, {MAX_DEPTH})"
                )
            return [self._reply(depth + 1) for _ in range(number)]
        raise RespError(f"an unknown reply type {kind!r}")


def _integer(text: bytes) -> int:
    digits = text[1:] if text[:1] == b"-" else text
    if not digits or len(digits) > 19 or not digits.isdigit():
        raise RespError(f"a malformed integer {text[:32]!r}")
    return int(text)
