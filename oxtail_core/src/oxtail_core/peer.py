"""The Python API for orchestrators: a :class:`Peer` (blocking) and an :class:`AsyncPeer` (asyncio).

Both run the very same flows from :mod:`oxtail_core.ask` and
:mod:`oxtail_core.messaging`; they differ only in the driver that performs
the waits. :class:`AsyncPeer` never blocks the event loop: every step that
touches the Store, the Waker or the Host runs in a worker thread.

Messages a call returns are settled before it returns (handing them to the
caller *is* the delivery, and that is when their receipts are written),
unless the caller asks for a hand-off with ``settle=False``: then the result
carries its in-flight ``handoff`` and the caller settles it with
:func:`oxtail_core.receipts.settle_handoff` once the messages are really
handed on (a server: once the response is on its pipe), or restores its
batch if that failed (no receipt then).
"""

from __future__ import annotations

from typing import TypeVar

import attrs

from oxtail_core import ask as _ask
from oxtail_core import messaging as _messaging
from oxtail_core import obligations as _obligations
from oxtail_core import receipts as _receipts
from oxtail_core.claims import check_claim
from oxtail_core.context import Context
from oxtail_core.effects import Flow, call_async, finish_async, run, run_async
from oxtail_core.ids import same_session_id
from oxtail_core.limits import SESSION_ID_MAX_CHARS, check_id
from oxtail_core.model import ClientInfo, ClientType, ObligationState, RegistryEntry, StateCard, WakeMode
from oxtail_core.protocols import Batch
from oxtail_core.results import (
    Asked,
    Closed,
    Handoff,
    Messages,
    MessageStatus,
    NotAsked,
    NotReplied,
    NotSent,
    OpenWork,
    Refused,
    Replied,
    RequesterUnreachable,
    Sent,
)
from oxtail_core.routing import live_entries, publish, retire

T = TypeVar("T")


class _Keep:
    """The "leave it as it is" default of :meth:`_PeerCore.claim`'s optional facts."""


KEEP = _Keep()


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
        client: ClientInfo | None = None,
        started_at: int | None = None,
        client_process: tuple[int, float | None] | None = None,
        host_name: str | None = None,
        project_id: str | None = None,
    ) -> _P:
        """Register a new peer (one server process) and return it.

        ``client`` (what a server detected about its host) replaces
        ``session_id`` / ``client_type`` / ``cwd``; ``started_at`` (seconds)
        defaults to now; ``client_process`` is the (pid, start) of the process
        that launched the server (its parent), published for the claim rule.
        An id in ``client`` is published as given: its caller applied the rule.
        The entry names the Host's ``host_id``; ``host_name`` and ``project_id``
        are published only with one (a one-machine entry keeps its old shape).
        """
        if client is None:
            client = ClientInfo(
                type=client_type,
                session_id=session_id,
                session_id_source="self-register" if session_id else None,
                cwd=cwd,
            )
        me = RegistryEntry(
            server_pid=pid,
            started_at=started_at if started_at is not None else ctx.clock.now_ms() // 1000,
            client=client,
            tmux_pane=tmux_pane,
            tmux_session=tmux_session,
            process_start=process_start,
            client_pid=None if client_process is None else client_process[0],
            client_start=None if client_process is None else client_process[1],
        )
        if ctx.host.host_id is not None:
            me = attrs.evolve(me, host_id=ctx.host.host_id, host_name=host_name, project_id=project_id)
        peer = cls(ctx, me)
        peer._publish()
        return peer

    @property
    def session_id(self) -> str | None:
        return self.me.session_id

    def claim(
        self,
        session_id: str,
        *,
        transcript_path: str | _Keep | None = KEEP,
        tmux: tuple[str | None, str | None] | _Keep = KEEP,
        proven: bool = False,
    ) -> RegistryEntry:
        """Take on an agent identity; mail sent to our process so far moves to the agent's inbox.

        A server also passes the agent's ``transcript_path`` and its freshly
        verified ``tmux`` (pane, session); left out, they are kept. ValueError
        for an id over ``SESSION_ID_MAX_CHARS`` or with a lone surrogate (limits.py);
        :class:`oxtail_core.claims.SessionHeld` when a live server of another
        client process holds the id and ``proven`` (evidence that we are that
        session) is not given: nothing changed then.
        """
        check_id("session_id", session_id, SESSION_ID_MAX_CHARS)
        check_claim(self.ctx, self.me, session_id, proven=proven)
        client = attrs.evolve(self.me.client, session_id=session_id, session_id_source="self-register")
        if not isinstance(transcript_path, _Keep):
            client = attrs.evolve(client, transcript_path=transcript_path)
        me = attrs.evolve(self.me, client=client)
        if not isinstance(tmux, _Keep):
            me = attrs.evolve(me, tmux_pane=tmux[0], tmux_session=tmux[1])
        self.me = me
        self._publish()
        return self.me

    def describe(self, client: ClientInfo, *, proven: bool = False) -> None:
        """Republish with what detection learned about our host.

        A new session id goes through the claim rule like :meth:`claim` (a
        sticky or SessionStart adoption is a claim too): SessionHeld, nothing
        changed, when it is held elsewhere and not ``proven``.
        """
        if client.session_id and not same_session_id(client.session_id, self.me.session_id):
            check_claim(self.ctx, self.me, client.session_id, proven=proven)
        if client != self.me.client:
            self.me = attrs.evolve(self.me, client=client)
            self._publish()

    def set_state(self, purpose: str | None = None, *, keep_purpose: bool | None = None) -> StateCard:
        """Publish what this agent is doing.

        ``keep_purpose`` (by default: when ``purpose`` is None) keeps the
        previous purpose, a touch; ``purpose=None, keep_purpose=False`` clears it.
        """
        keep = purpose is None if keep_purpose is None else keep_purpose
        previous = self.me.state.purpose if self.me.state else None
        card = StateCard(purpose=previous if keep else purpose, updated_at=self.ctx.clock.now_ms() // 1000)
        self.me = attrs.evolve(self.me, state=card)
        self._publish()
        return card

    def publish(self) -> None:
        """Publish our entry again (it also folds mail owed to this agent into its inbox)."""
        self._publish()

    def _publish(self) -> None:
        """Every registry write also ages out old receipts and outbox records (accounting.md §1.8)."""
        publish(self.ctx, self.me)
        _receipts.collect_old_records(self.ctx)

    def peers(self) -> list[RegistryEntry]:
        """Every other live agent, one entry each."""
        return [e for e in live_entries(self.ctx) if e.server_pid != self.me.server_pid]

    def leave(self) -> None:
        """Unregister without stranding mail."""
        retire(self.ctx, self.me)

    def _settle(self, handoff: Handoff | None) -> None:
        if handoff is not None:
            _receipts.settle_handoff(self.ctx, handoff)

    def _put_back(self, result: object) -> None:
        """An abandoned result (its caller was cancelled) gives back what it holds, same ids."""
        batch = getattr(result, "batch", None)
        if isinstance(batch, Batch):
            self.ctx.store.restore(batch)

    def _read(self, settle: bool) -> Messages:
        result = _messaging.read_messages(self.ctx, self.me)
        if settle:
            self._settle(result.handoff)
        return result

    def _send(
        self,
        target: str,
        body: str,
        wake: WakeMode | None,
        reply_to: str | None,
        source_message_id: str | None,
        *,
        action_required: bool,
    ) -> Flow[Sent | NotSent]:
        return _messaging.send_message(
            self.ctx,
            self.me,
            target,
            body,
            wake=wake,
            reply_to=reply_to,
            source_message_id=source_message_id,
            action_required=action_required,
        )

    def _status(self, message_id: str) -> MessageStatus:
        return _receipts.message_status(self.ctx, message_id)

    def _open_work(self) -> OpenWork | Refused:
        return _obligations.open_work(self.ctx, self.me)

    def _close(
        self, message_id: str, body: str, state: ObligationState, wake: WakeMode | None
    ) -> Flow[Closed | RequesterUnreachable | Refused]:
        return _obligations.close(self.ctx, self.me, message_id, body, state=state, wake=wake)

    def _reply(
        self, message_id: str, body: str, wake: WakeMode | None
    ) -> Flow[Replied | NotReplied | Refused]:
        return _messaging.reply_to_message(self.ctx, self.me, message_id, body, wake=wake)

    def _asked(self, result: Asked | NotAsked | Refused, settle: bool) -> Asked | NotAsked | Refused:
        """The ask's reply is receipted as handed to us (``ask_peer_reply``), when settled."""
        if isinstance(result, Asked):
            result = attrs.evolve(result, requester=self.me.session_id)
            if settle:
                self._settle(result.handoff)
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
        action_required: bool = False,
    ) -> Sent | NotSent:
        """Deliver ``body`` to ``target`` (a session id or a tmux session name); ``action_required``
        makes it a durable delegation the receiver closes with complete_work / block_work."""
        return self._run(
            self._send(target, body, wake, reply_to, source_message_id, action_required=action_required)
        )

    def message_status(self, message_id: str) -> MessageStatus:
        """Whether a message was delivered into its recipient's context, is still waiting, or unknown."""
        return self._status(message_id)

    def open_work(self) -> OpenWork | Refused:
        """The durable obligations this agent still owes (read-only)."""
        return self._open_work()

    def complete_work(
        self, message_id: str, body: str, *, wake: WakeMode | None = None
    ) -> Closed | RequesterUnreachable | Refused:
        """Close an obligation we own as done, delivering ``body`` to its requester."""
        return self._run(self._close(message_id, body, "done", wake))

    def block_work(
        self, message_id: str, reason: str, *, wake: WakeMode | None = None
    ) -> Closed | RequesterUnreachable | Refused:
        """Close an obligation we own as blocked, telling its requester why."""
        return self._run(self._close(message_id, reason, "blocked", wake))

    def read_messages(self, *, settle: bool = True) -> Messages:
        """Take and return the next budgeted batch of our mail (``settle=False``: a hand-off)."""
        return self._read(settle)

    def ask(
        self, target: str, body: str, *, timeout_ms: float | None = None, settle: bool = True
    ) -> Asked | NotAsked | Refused:
        """Ask ``target`` and wait for its correlated reply (or time out, leaving a pending ask)."""
        flow = _ask.ask_peer(self.ctx, self.me, target, body, timeout_ms=timeout_ms)
        return self._asked(self._run(flow), settle)

    def reply(
        self, message_id: str, body: str, *, wake: WakeMode | None = None
    ) -> Replied | NotReplied | Refused:
        """Reply to a message we received, by its id."""
        return self._run(self._reply(message_id, body, wake))


class AsyncPeer(_PeerCore):
    """One agent on a Store, with asyncio calls; cancelling an ask never loses its reply."""

    async def _run(self, flow: Flow[T]) -> T:
        return await run_async(flow, self.ctx.store, self.ctx.clock, abandon=self._put_back)

    async def send(
        self,
        target: str,
        body: str,
        *,
        wake: WakeMode | None = None,
        reply_to: str | None = None,
        source_message_id: str | None = None,
        action_required: bool = False,
    ) -> Sent | NotSent:
        """Deliver ``body`` to ``target`` (a session id or a tmux session name); ``action_required``
        makes it a durable delegation the receiver closes with complete_work / block_work."""
        return await self._run(
            self._send(target, body, wake, reply_to, source_message_id, action_required=action_required)
        )

    async def message_status(self, message_id: str) -> MessageStatus:
        """Whether a message was delivered into its recipient's context, is still waiting, or unknown."""
        return await call_async(self._status, message_id)

    async def open_work(self) -> OpenWork | Refused:
        """The durable obligations this agent still owes (read-only)."""
        return await call_async(self._open_work)

    async def complete_work(
        self, message_id: str, body: str, *, wake: WakeMode | None = None
    ) -> Closed | RequesterUnreachable | Refused:
        """Close an obligation we own as done, delivering ``body`` to its requester."""
        return await self._run(self._close(message_id, body, "done", wake))

    async def block_work(
        self, message_id: str, reason: str, *, wake: WakeMode | None = None
    ) -> Closed | RequesterUnreachable | Refused:
        """Close an obligation we own as blocked, telling its requester why."""
        return await self._run(self._close(message_id, reason, "blocked", wake))

    async def read_messages(self, *, settle: bool = True) -> Messages:
        """Take and return the next budgeted batch of our mail (``settle=False``: a hand-off)."""
        result = await call_async(self._read, False, abandon=self._put_back)
        if settle and result.handoff is not None:
            await finish_async(self._settle, result.handoff)
        return result

    async def ask(
        self, target: str, body: str, *, timeout_ms: float | None = None, settle: bool = True
    ) -> Asked | NotAsked | Refused:
        """Ask ``target`` and wait for its correlated reply (or time out, leaving a pending ask)."""
        flow = _ask.ask_peer(self.ctx, self.me, target, body, timeout_ms=timeout_ms)
        result = self._asked(await self._run(flow), settle=False)
        if settle and isinstance(result, Asked) and result.handoff is not None:
            await finish_async(self._settle, result.handoff)
        return result

    async def reply(
        self, message_id: str, body: str, *, wake: WakeMode | None = None
    ) -> Replied | NotReplied | Refused:
        """Reply to a message we received, by its id."""
        return await self._run(self._reply(message_id, body, wake))
