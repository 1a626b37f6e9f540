"""oxtail-core: the I/O-free coordination core of oxtail.

Agents exchange messages through a :class:`Store`, wake each other through a
:class:`Waker`, and read time from a :class:`Clock`; the core holds the rules
(delivery, correlation, wake gating, pending asks) and nothing else. Start
with :class:`Peer` (or :class:`AsyncPeer`) on a :class:`MemoryStore`.
"""

TYPE_CHECKING = False  # not ``typing.TYPE_CHECKING``: importing typing costs a hook start-up
if TYPE_CHECKING:  # what a type checker sees; at run time __getattr__ loads each name from _EXPORTS
    from typing import Any

    from oxtail_core.clock import FakeClock as FakeClock
    from oxtail_core.clock import SystemClock as SystemClock
    from oxtail_core.context import Context as Context
    from oxtail_core.errors import AskAborted as AskAborted
    from oxtail_core.errors import Cancelled as Cancelled
    from oxtail_core.errors import OxtailError as OxtailError
    from oxtail_core.errors import StoreBusy as StoreBusy
    from oxtail_core.errors import StoreError as StoreError
    from oxtail_core.memory import MemoryHost as MemoryHost
    from oxtail_core.memory import MemoryStore as MemoryStore
    from oxtail_core.memory import RecordingWaker as RecordingWaker
    from oxtail_core.model import ActivityMarker as ActivityMarker
    from oxtail_core.model import Capabilities as Capabilities
    from oxtail_core.model import ClientInfo as ClientInfo
    from oxtail_core.model import Envelope as Envelope
    from oxtail_core.model import PendingAsk as PendingAsk
    from oxtail_core.model import RegistryEntry as RegistryEntry
    from oxtail_core.model import StateCard as StateCard
    from oxtail_core.model import WakeOutcome as WakeOutcome
    from oxtail_core.model import WakeReason as WakeReason
    from oxtail_core.model import WakeStatus as WakeStatus
    from oxtail_core.peer import AsyncPeer as AsyncPeer
    from oxtail_core.peer import Peer as Peer
    from oxtail_core.protocols import Batch as Batch
    from oxtail_core.protocols import Clock as Clock
    from oxtail_core.protocols import Holder as Holder
    from oxtail_core.protocols import Host as Host
    from oxtail_core.protocols import InboxId as InboxId
    from oxtail_core.protocols import Store as Store
    from oxtail_core.protocols import Waker as Waker
    from oxtail_core.results import Asked as Asked
    from oxtail_core.results import Messages as Messages
    from oxtail_core.results import NotAsked as NotAsked
    from oxtail_core.results import NotReplied as NotReplied
    from oxtail_core.results import NotSent as NotSent
    from oxtail_core.results import Refused as Refused
    from oxtail_core.results import Replied as Replied
    from oxtail_core.results import Sent as Sent
    from oxtail_core.settings import Settings as Settings

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


def __getattr__(name: str) -> "Any":
    """Load exports on first use, so ``import oxtail_core.convert`` (a hook) pays only for what it needs."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'oxtail_core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = sorted(_EXPORTS)  # noqa: PLE0605 - the names are listed once, in _EXPORTS
