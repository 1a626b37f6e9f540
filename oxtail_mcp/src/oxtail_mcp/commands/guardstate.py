"""What the guard's stdlib check reads of the state directory and /proc, and which records stand.

The two kinds of files are read directly, in the file store's on-disk format
(``tests/mcp/test_guardcheck.py`` writes them through the real ``FsStore`` and
reads them back here):

========================================  ======================================================
file                                      read as
========================================  ======================================================
``reservations/<hash32(project)>.json``   a JSON list of ``Reservation.to_json()`` objects
                                          (:mod:`oxtail_fs.store.reservation_file`)
``registry/<pid>.json``                   a ``RegistryEntry``: ``server_pid`` (equal to the
                                          name), ``process_start``, ``client.session_id``
========================================  ======================================================

Anything the store might read differently raises :class:`Delegate`: the caller
hands the run to the full check.
"""

from __future__ import annotations

import os

from oxtail_core.naming import canonical_session_id
from oxtail_fs.store.names import (
    REGISTRY,
    REGISTRY_MAX_BYTES,
    RESERVATIONS,
    RESERVATIONS_MAX_BYTES,
    SESSIONS,
    reservations_name,
)
from oxtail_mcp.hooks.hook import parse_json

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the hook's check imports nothing it does not use
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from typing import TypeVar

    T = TypeVar("T")

GRACE_ENV = "OXTAIL_RESERVATION_GRACE_MS"
GRACE_DEFAULT_MS = 10_000

_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
_S_IFMT, _S_IFREG = 0o170000, 0o100000


class Delegate(Exception):
    """The fast path cannot answer with a plain read; ``str()`` says why (for tests and traces)."""


class Held:
    """One reservation record as stored (the fields :func:`standing_records` and a report read)."""

    __slots__ = (
        "client_type",
        "exclusive",
        "expires_at",
        "holder_session_id",
        "holder_tmux",
        "orphaned_at",
        "pattern",
        "reason",
    )

    def __init__(self, data: object) -> None:
        """Raises Delegate for anything ``Reservation.from_json`` might read differently."""
        if not isinstance(data, dict):
            raise Delegate("a reservation record that is not an object")
        self.pattern: str = _required(data, "pattern", str)
        self.holder_session_id: str = _required(data, "holder_session_id", str)
        self.exclusive: bool = _required(data, "exclusive", bool)
        self.expires_at: int = _required(data, "expires_at", int)
        _required(data, "reserved_at", int)
        self.reason: str | None = _optional(data, "reason", str)
        self.holder_tmux: str | None = _optional(data, "holder_tmux", str)
        self.orphaned_at: int | None = _optional(data, "orphaned_at", int)
        client = data.get("client_type", "unknown")
        if not isinstance(client, str):
            raise Delegate("a reservation record with a malformed client_type")
        self.client_type: str = client


def _required(data: dict[str, object], name: str, kind: type[T]) -> T:
    """``data[name]``, exactly of ``kind`` (a bool is not an int, as in the core's validators)."""
    value = data.get(name)
    if type(value) is not kind:
        raise Delegate(f"a reservation record with a missing or malformed {name}")
    return value


def _optional(data: dict[str, object], name: str, kind: type[T]) -> T | None:
    """:func:`_required`, but missing or null is None (the record's default)."""
    return None if data.get(name) is None else _required(data, name, kind)


# Reading the state directory -------------------------------------------------------------------
def read_small(path: str, limit: int) -> bytes | None:
    """A regular file of at most ``limit`` bytes (never following a symlink); None if it is missing.

    Raises Delegate for anything else there (the store refuses or skips it, in its own words).
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise Delegate(f"cannot open {path}: {exc}") from exc
    try:
        st = os.fstat(fd)
        if st.st_mode & _S_IFMT != _S_IFREG or st.st_size > limit:
            raise Delegate(f"{path} is not a regular file of <= {limit} bytes")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise Delegate(f"{path} grew past {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def reservations_file(home: str, project: str) -> str:
    return os.path.join(home, RESERVATIONS, reservations_name(project))


def read_reservations(home: str, project: str) -> list[Held]:
    raw = read_small(reservations_file(home, project), RESERVATIONS_MAX_BYTES)
    if raw is None:
        return []
    try:
        data = parse_json(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Delegate(f"reservations that are not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise Delegate("reservations that are not a JSON list")
    return [Held(item) for item in data]


def registry_servers(home: str) -> list[tuple[int, float | None, str]]:
    """``(server_pid, process_start, session id)`` of each registry entry that names a session.

    A file the store would skip (unparseable, renamed, malformed) is skipped here too; an entry of
    the reference's ``sessions/`` directory is for the full check to read.
    """
    legacy = os.path.join(home, SESSIONS)
    if os.path.isdir(legacy) and not os.path.islink(legacy) and any(_registry_names(legacy)):
        raise Delegate("entries in the reference's sessions/ directory")
    directory = os.path.join(home, REGISTRY)
    servers = []
    for name in _registry_names(directory):
        try:
            raw = read_small(os.path.join(directory, name), REGISTRY_MAX_BYTES)
            data = parse_json(raw) if raw is not None else None
        except (Delegate, ValueError, RecursionError):
            continue
        if not isinstance(data, dict):
            continue
        pid, start, client = data.get("server_pid"), data.get("process_start"), data.get("client")
        if type(pid) is not int or pid != int(name[:-5]) or not isinstance(client, dict):
            continue
        if start is not None and type(start) not in (int, float):
            continue
        session = client.get("session_id")
        if isinstance(session, str) and session:
            servers.append((pid, None if start is None else float(start), session))
    return servers


def _registry_names(directory: str) -> list[str]:
    """Names the store's ``REGISTRY_NAME`` accepts: ``<1-10 digits, no leading 0>.json``."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [n for n in names if n.endswith(".json") and _is_pid_text(n[:-5])]


def _is_pid_text(stem: str) -> bool:
    return 1 <= len(stem) <= 10 and stem.isascii() and stem.isdigit() and stem[0] != "0"


def grace_from_env(env: Mapping[str, str]) -> int:
    """Same rule as :func:`oxtail_core.reservations.grace_from_env`."""
    raw = (env.get(GRACE_ENV) or "").strip()
    return int(raw) if raw.isdigit() else GRACE_DEFAULT_MS


def standing_records(records: Iterable[Held], now_ms: int, live: frozenset[str], grace_ms: int) -> list[Held]:
    """The records that stand (:func:`oxtail_core.reservations.standing`); Delegate when the sweep
    would change a record (an orphan clock to start or clear, an abandoned record to drop)."""
    kept = []
    holders: dict[str, bool] = {}  # holder -> has a live server (holders are few, records many)
    for r in records:
        if now_ms >= r.expires_at:
            continue
        alive = holders.get(r.holder_session_id)
        if alive is None:
            alive = holders[r.holder_session_id] = canonical_session_id(r.holder_session_id) in live
        if alive:
            if r.orphaned_at is not None:
                raise Delegate("a live holder's orphan clock to clear")
            kept.append(r)
            continue
        if r.orphaned_at is None:
            raise Delegate("a holder without a live server: its orphan clock starts now")
        if now_ms - r.orphaned_at >= grace_ms:
            raise Delegate("an abandoned reservation to drop")
        kept.append(r)
    return kept


# Processes -------------------------------------------------------------------------------------
# Linux reads of oxtail_fs.host.proctree, kept here because importing it costs the check ``typing`` and
# ``re`` (a third of its start-up); without /proc the check uses proctree itself (psutil).
# tests/mcp/test_guardcheck.py checks each against proctree.
MAX_HOPS = 64
START_TOLERANCE_S = 0.05


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    _, sep, rest = text.rpartition(b")")
    fields = rest.decode("ascii", "replace").split()
    return fields if sep and len(fields) >= 20 else None


_BOOT: list[float | None] = []


def _boot_time() -> float | None:
    if not _BOOT:
        _BOOT.append(None)
        try:
            with open("/proc/stat", "rb") as f:
                for line in f:
                    if line.startswith(b"btime "):
                        _BOOT[0] = float(line.split()[1])
                        break
        except (OSError, ValueError):
            pass
    return _BOOT[0]


def is_alive(pid: int, process_start: float | None) -> bool:
    """Same answer as :func:`oxtail_fs.host.proctree.is_alive`."""
    if isinstance(pid, bool) or pid <= 0:
        return False
    boot = _boot_time()
    if boot is None:
        from oxtail_fs.host import proctree

        return proctree.is_alive(pid, process_start)
    fields = _stat_fields(pid)
    if fields is None or fields[0] == "Z":
        return False
    try:
        started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except ValueError:
        return False
    return process_start is None or abs(started - process_start) <= START_TOLERANCE_S


def ppid_of(pid: int) -> int | None:
    """Same answer as :func:`oxtail_fs.host.proctree.ppid_of`."""
    if _boot_time() is None:
        from oxtail_fs.host import proctree

        return proctree.ppid_of(pid)
    fields = _stat_fields(pid)
    try:
        return None if fields is None else int(fields[1])
    except ValueError:
        return None


def ancestry(pid: int, parent_of: Callable[[int], int | None]) -> Iterator[int]:
    """Same walk as :func:`oxtail_fs.host.proctree.ancestry`: ``pid``, then its ancestors, above 1."""
    current: int | None = pid
    for _ in range(MAX_HOPS):
        if current is None or current <= 1:
            return
        yield current
        current = parent_of(current)
