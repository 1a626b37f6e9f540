"""The registry: one HASH of entries by host and pid, one HASH of incarnations beside it.

A field is ``<host_id>:<pid>`` (two machines may both run pid 7), or the bare pid for an entry
without a host id (written by a one-machine caller: the contract tests, an older version).

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
    return field_of(entry.host_id, entry.server_pid)


def field_of(host_id: str | None, pid: int) -> str:
    return str(pid) if host_id is None else f"{host_id}:{pid}"


def incarnation(entry: RegistryEntry) -> str:
    return dumps([entry.started_at, entry.process_start])


def encode(entry: RegistryEntry) -> str:
    return dumps(to_wire(entry))


def decode(name: bytes, raw: bytes) -> RegistryEntry | None:
    """The entry in one field, or None for a malformed one or one filed under another host or pid
    (forged)."""
    try:
        entry = from_wire(loads(raw.decode("utf-8")), RegistryEntry)
    except (ShapeError, WireError, ValueError, TypeError, RecursionError):
        return None
    return entry if isinstance(entry, RegistryEntry) and name == field(entry).encode() else None
