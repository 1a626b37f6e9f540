"""The registry: one HASH of entries by pid, one HASH of incarnations beside it.

Entries have no TTL: a dead server's entry with undelivered mail is a breadcrumb that must stay
(R74). The incarnation (``started_at``, ``process_start``) is kept as its own field so that the
guarded append and ``remove_if_drained`` compare strings in Lua, never JSON.
"""

from __future__ import annotations

from oxtail_core.convert import ShapeError, from_wire, to_wire
from oxtail_core.model import RegistryEntry
from oxtail_core.wire import WireError, dumps, loads

ENTRIES = "reg"
INCARNATIONS = "regi"


def is_registry_pid(pid: object) -> bool:
    return isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 10**10


def field(entry: RegistryEntry) -> str:
    return str(entry.server_pid)


def incarnation(entry: RegistryEntry) -> str:
    return dumps([entry.started_at, entry.process_start])


def encode(entry: RegistryEntry) -> str:
    return dumps(to_wire(entry))


def decode(name: bytes, raw: bytes) -> RegistryEntry | None:
    """The entry in one field, or None for a malformed one or one filed under another pid (forged)."""
    try:
        entry = from_wire(loads(raw.decode("utf-8")), RegistryEntry)
    except (ShapeError, WireError, ValueError, TypeError, RecursionError):
        return None
    return entry if isinstance(entry, RegistryEntry) and name == str(entry.server_pid).encode() else None
