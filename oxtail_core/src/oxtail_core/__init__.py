"""oxtail-core: the I/O-free coordination core of oxtail.

Agents exchange messages through a :class:`Store`, wake each other through a
:class:`Waker`, and read time from a :class:`Clock`; the core holds the rules
(delivery, correlation, wake gating, pending asks) and nothing else. Start
with :class:`Peer` (or :class:`AsyncPeer`) on a :class:`MemoryStore`.
"""

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
