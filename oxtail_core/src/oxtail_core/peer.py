"""The Python API for orchestrators: a :class:`Peer` (blocking) and an :class:`AsyncPeer` (asyncio).

Both run the very same flows from :mod:`oxtail_core.ask` and
:mod:`oxtail_core.messaging`; they differ only in the driver that performs
the waits. Messages a call returns are settled before it returns: handing
them to the caller *is* the delivery.
"""

from __future__ import annotations

from typing import TypeVar

import attrs

from oxtail_core import ask as _ask
from oxtail_core import messaging as _messaging
from oxtail_core.context import Context
from oxtail_core.effects import Flow, run, run_async
from oxtail_core.limits import SESSION_ID_MAX_CHARS, check_id
from oxtail_core.model import ClientInfo, ClientType, RegistryEntry, StateCard, WakeMode
from oxtail_core.protocols import Batch
from oxtail_core.results import Asked, Messages, NotAsked, NotReplied, NotSent, Refused, Replied, Sent
from oxtail_core.routing import live_entries, publish, retire

T = TypeVar("T")


class _PeerCore:
    """Identity and the operations that never wait; shared by both flavors."""

    def __init__(self, ctx: Context, me: RegistryEntry) -> None:
        self.ctx = ctx
        self.me = me

    @classmethod
    def join(
        cls: type[_P],
        ctx: Context,
        pid: int,
        *,
        session_id: str | None = None,
        client_type: ClientType = "unknown",
        cwd: str = "",
        tmux_pane: str | None = None,
        tmux_session: str | None = None,
        process_start: float | None = None,
    ) -> _P:
        """Register a new peer (one server process) and return it."""
        me = RegistryEntry(
            server_pid=pid,
            started_at=ctx.clock.now_ms() // 1000,
            client=ClientInfo(
                type=client_type,
                session_id=session_id,
                session_id_source="self-register" if session_id else None,
                cwd=cwd,
            ),
            tmux_pane=tmux_pane,
            tmux_session=tmux_session,
            process_start=process_start,
        )
        publish(ctx, me)
        return cls(ctx, me)

    @property
    def session_id(self) -> str | None:
        return self.me.session_id

    def claim(self, session_id: str) -> None:
        """Take on an agent identity; mail sent to our process so far moves to the agent's inbox.

        ValueError for an id over ``SESSION_ID_MAX_CHARS`` or with a lone surrogate (limits.py).
        """
        check_id("session_id", session_id, SESSION_ID_MAX_CHARS)
        client = attrs.evolve(self.me.client, session_id=session_id, session_id_source="self-register")
        self.me = attrs.evolve(self.me, client=client)
        publish(self.ctx, self.me)

    def set_state(self, purpose: str | None = None) -> StateCard:
        """Publish what this agent is doing; without ``purpose`` the previous one is kept (a touch)."""
        previous = self.me.state.purpose if self.me.state else None
        card = StateCard(
            purpose=purpose if purpose is not None else previous, updated_at=self.ctx.clock.now_ms() // 1000
        )
        self.me = attrs.evolve(self.me, state=card)
        publish(self.ctx, self.me)
        return card

    def peers(self) -> list[RegistryEntry]:
        """Every other live agent, one entry each."""
        return [e for e in live_entries(self.ctx) if e.server_pid != self.me.server_pid]

    def leave(self) -> None:
        """Unregister without stranding mail."""
        retire(self.ctx, self.me)

    def _settle(self, batch: Batch | None) -> None:
        if batch is not None:
            self.ctx.store.settle(batch)

    def _read(self) -> Messages:
        result = _messaging.read_messages(self.ctx, self.me)
        self._settle(result.batch)
        return result

    def _send(
        self,
        target: str,
        body: str,
        wake: WakeMode | None,
        reply_to: str | None,
        source_message_id: str | None,
    ) -> Flow[Sent | NotSent]:
        return _messaging.send_message(
            self.ctx, self.me, target, body, wake=wake, reply_to=reply_to, source_message_id=source_message_id
        )

    def _reply(
        self, message_id: str, body: str, wake: WakeMode | None
    ) -> Flow[Replied | NotReplied | Refused]:
        return _messaging.reply_to_message(self.ctx, self.me, message_id, body, wake=wake)

    def _asked(self, result: Asked | NotAsked | Refused) -> Asked | NotAsked | Refused:
        if isinstance(result, Asked):
            self._settle(result.batch)
        return result


_P = TypeVar("_P", bound=_PeerCore)


class Peer(_PeerCore):
    """One agent on a Store, with blocking calls."""

    def _run(self, flow: Flow[T]) -> T:
        return run(flow, self.ctx.store, self.ctx.clock)

    def send(
        self,
        target: str,
        body: str,
        *,
        wake: WakeMode | None = None,
        reply_to: str | None = None,
        source_message_id: str | None = None,
    ) -> Sent | NotSent:
        """Deliver ``body`` to ``target`` (a session id or a tmux session name)."""
        return self._run(self._send(target, body, wake, reply_to, source_message_id))

    def read_messages(self) -> Messages:
        """Take and return the next budgeted batch of our mail."""
        return self._read()

    def ask(self, target: str, body: str, *, timeout_ms: float | None = None) -> Asked | NotAsked | Refused:
        """Ask ``target`` and wait for its correlated reply (or time out, leaving a pending ask)."""
        return self._asked(self._run(_ask.ask_peer(self.ctx, self.me, target, body, timeout_ms=timeout_ms)))

    def reply(
        self, message_id: str, body: str, *, wake: WakeMode | None = None
    ) -> Replied | NotReplied | Refused:
        """Reply to a message we received, by its id."""
        return self._run(self._reply(message_id, body, wake))


class AsyncPeer(_PeerCore):
    """One agent on a Store, with asyncio calls; cancelling an ask never loses its reply."""

    async def _run(self, flow: Flow[T]) -> T:
        return await run_async(flow, self.ctx.store, self.ctx.clock)

    async def send(
        self,
        target: str,
        body: str,
        *,
        wake: WakeMode | None = None,
        reply_to: str | None = None,
        source_message_id: str | None = None,
    ) -> Sent | NotSent:
        """Deliver ``body`` to ``target`` (a session id or a tmux session name)."""
        return await self._run(self._send(target, body, wake, reply_to, source_message_id))

    async def read_messages(self) -> Messages:
        """Take and return the next budgeted batch of our mail."""
        return self._read()

    async def ask(
        self, target: str, body: str, *, timeout_ms: float | None = None
    ) -> Asked | NotAsked | Refused:
        """Ask ``target`` and wait for its correlated reply (or time out, leaving a pending ask)."""
        flow = _ask.ask_peer(self.ctx, self.me, target, body, timeout_ms=timeout_ms)
        return self._asked(await self._run(flow))

    async def reply(
        self, message_id: str, body: str, *, wake: WakeMode | None = None
    ) -> Replied | NotReplied | Refused:
        """Reply to a message we received, by its id."""
        return await self._run(self._reply(message_id, body, wake))
