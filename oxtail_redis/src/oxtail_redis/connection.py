"""The two connection pools, the registered scripts, and how Redis failures become StoreErrors.

Retries are explicit, never redis-py's defaults (its plain constructor retries a timed-out
script up to ten times: one call ran eleven times when measured, docs/redis.md). Every mutating
script is replay-safe (batch id, first envelope id, or an op key), so a short retry budget on a
lost connection cannot apply anything twice.

==========================  ====================================================================
failure (after retries)     what the caller sees
==========================  ====================================================================
read, connection/timeout    :class:`StoreBusy` (retryable, nothing changed)
the read phase of a write   :class:`StoreBusy` (:func:`read_phase`: nothing was written yet)
write, connection/timeout   :class:`StoreError` "outcome unknown" (it may have been applied)
any other Redis error       :class:`StoreError` (wrong type, OOM, ACL refusal, script error)
==========================  ====================================================================
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from typing import Any, ParamSpec, TypeVar

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from oxtail_core.errors import OutcomeUnknown, StoreBusy, StoreError
from oxtail_redis.url import RedisTarget

P = ParamSpec("P")
R = TypeVar("R")

SCRIPTS = (
    "append",
    "take_commit",
    "put_back",
    "merge",
    "remove_if_drained",
    "put_once",
    "swap_field",
    "take_field",
    "claim_stamp",
    "release_stamp",
    "put_stamp",
    "gc_scored",
    "swap_string",
    "ledger_record",
    "ledger_close",
    "ledger_open",
)

RETRIES = 3
BLOCK_SLICE_S = 10.0
"""A blocking read waits at most this long per command, so a half-open connection is noticed."""


class Connection:
    """A command pool (bounded timeout, short replay-safe retry) and a blocking pool (for XREAD)."""

    def __init__(self, target: RedisTarget, timeout_s: float = 2.0) -> None:
        self.where = target.masked()
        kwargs = target.connection_kwargs()
        retry = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.5), RETRIES)
        # Any: redis-py types replies as bytes | str; with decode_responses off they are bytes.
        self.client: Any = redis.Redis(
            **kwargs, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=retry
        )
        self.blocking: Any = redis.Redis(
            **kwargs,
            socket_timeout=BLOCK_SLICE_S + timeout_s,
            socket_connect_timeout=timeout_s,
            socket_keepalive=True,
            retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.5), 0),
        )
        folder = resources.files("oxtail_redis.scripts")
        self._scripts = {
            name: self.client.register_script(folder.joinpath(f"{name}.lua").read_text("utf-8"))
            for name in SCRIPTS
        }

    def run(self, name: str, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        """EVALSHA the script (redis-py loads it on NOSCRIPT, which means it did not run)."""
        return self._scripts[name](keys=list(keys), args=list(args))

    def close(self) -> None:
        self.client.close()
        self.blocking.close()


def _mapped(kind: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            where = args[0]._conn.where  # type: ignore[attr-defined]
            try:
                return method(*args, **kwargs)
            except StoreError:
                raise
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if kind == "read":
                    raise StoreBusy(f"{where} ({method.__name__}: {exc})") from exc
                unknown = f"{method.__name__}: outcome unknown, {where} did not answer: {exc}"
                raise OutcomeUnknown(unknown) from exc
            except redis.RedisError as exc:
                raise StoreError(f"{method.__name__} on {where}: {exc}") from exc

        return wrapper

    return decorate


reading = _mapped("read")
"""A read: a lost connection is StoreBusy (nothing changed, try again)."""
writing = _mapped("write")
"""A write: a lost connection is a StoreError whose outcome is unknown."""


@contextlib.contextmanager
def read_phase(conn: Connection, what: str) -> Iterator[None]:
    """The reads a write makes before it writes (take's snapshot, recover's look at the batches):
    a lost connection there changed nothing, so it is :class:`StoreBusy`, never "outcome unknown"."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreBusy(f"{conn.where} ({what}: {exc})") from exc
