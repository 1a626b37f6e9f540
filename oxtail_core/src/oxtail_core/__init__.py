"""oxtail-core: the I/O-free coordination core of oxtail.

Agents exchange messages through a :class:`Store`, wake each other through a
:class:`Waker`, and read time from a :class:`Clock`; the core holds the rules
(delivery, correlation, wake gating, pending asks) and nothing else. Start
with :class:`Peer` (or :class:`AsyncPeer`) on a :class:`MemoryStore`.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oxtail_core.clock import FakeClock, SystemClock
    from oxtail_core.context import Context
    from oxtail_core.errors import AskAborted, Cancelled, OxtailError, StoreBusy, StoreError
    from oxtail_core.memory import MemoryHost, MemoryStore, RecordingWaker
    from oxtail_core.model import (
        ActivityMarker,
        Capabilities,
        ClientInfo,
        Envelope,
        PendingAsk,
        RegistryEntry,
        StateCard,
        WakeOutcome,
        WakeReason,
        WakeStatus,
    )
    from oxtail_core.peer import AsyncPeer, Peer
    from oxtail_core.protocols import Batch, Clock, Holder, Host, InboxId, Store, Waker
    from oxtail_core.results import Asked, Messages, NotAsked, NotReplied, NotSent, Refused, Replied, Sent
    from oxtail_core.settings import Settings

_EXPORTS = {
    "ActivityMarker": "oxtail_core.model",
    "AskAborted": "oxtail_core.errors",
    "Asked": "oxtail_core.results",
    "AsyncPeer": "oxtail_core.peer",
    "Batch": "oxtail_core.protocols",
    "Cancelled": "oxtail_core.errors",
    "Capabilities": "oxtail_core.model",
    "ClientInfo": "oxtail_core.model",
    "Clock": "oxtail_core.protocols",
    "Context": "oxtail_core.context",
    "Envelope": "oxtail_core.model",
    "FakeClock": "oxtail_core.clock",
    "Holder": "oxtail_core.protocols",
    "Host": "oxtail_core.protocols",
    "InboxId": "oxtail_core.protocols",
    "MemoryHost": "oxtail_core.memory",
    "MemoryStore": "oxtail_core.memory",
    "Messages": "oxtail_core.results",
    "NotAsked": "oxtail_core.results",
    "NotReplied": "oxtail_core.results",
    "NotSent": "oxtail_core.results",
    "OxtailError": "oxtail_core.errors",
    "Peer": "oxtail_core.peer",
    "PendingAsk": "oxtail_core.model",
    "RecordingWaker": "oxtail_core.memory",
    "Refused": "oxtail_core.results",
    "RegistryEntry": "oxtail_core.model",
    "Replied": "oxtail_core.results",
    "Sent": "oxtail_core.results",
    "Settings": "oxtail_core.settings",
    "StateCard": "oxtail_core.model",
    "Store": "oxtail_core.protocols",
    "StoreBusy": "oxtail_core.errors",
    "StoreError": "oxtail_core.errors",
    "SystemClock": "oxtail_core.clock",
    "WakeOutcome": "oxtail_core.model",
    "WakeReason": "oxtail_core.model",
    "WakeStatus": "oxtail_core.model",
    "Waker": "oxtail_core.protocols",
}


def __getattr__(name: str) -> Any:
    """Load exports on first use, so ``import oxtail_core.convert`` (a hook) pays only for what it needs."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'oxtail_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ActivityMarker",
    "AskAborted",
    "Asked",
    "AsyncPeer",
    "Batch",
    "Cancelled",
    "Capabilities",
    "ClientInfo",
    "Clock",
    "Context",
    "Envelope",
    "FakeClock",
    "Holder",
    "Host",
    "InboxId",
    "MemoryHost",
    "MemoryStore",
    "Messages",
    "NotAsked",
    "NotReplied",
    "NotSent",
    "OxtailError",
    "Peer",
    "PendingAsk",
    "RecordingWaker",
    "Refused",
    "RegistryEntry",
    "Replied",
    "Sent",
    "Settings",
    "StateCard",
    "Store",
    "StoreBusy",
    "StoreError",
    "SystemClock",
    "WakeOutcome",
    "WakeReason",
    "WakeStatus",
    "Waker",
]
