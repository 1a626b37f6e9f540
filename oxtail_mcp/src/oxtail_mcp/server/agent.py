"""This server process as the agent it serves: its registry entry, its identity, its world.

Identity is monotonic: once a session id is known, only an explicit
``claim_session`` / ``register_my_session`` changes it; detection, the
handshake and retries never do. Every identity or state change republishes
the entry (which also folds mail owed to this agent into its inbox).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from oxtail_core import AsyncPeer, ClientInfo, Context, RegistryEntry, Settings, StateCard, SystemClock
from oxtail_core.claims import SessionHeld, check_claim
from oxtail_core.convert import to_wire
from oxtail_core.ids import same_session_id
from oxtail_core.protocols import Store
from oxtail_core.trace import NullTracer, Tracer, safe_emit
from oxtail_fs.host import proctree
from oxtail_fs.host.project import LocalHost
from oxtail_fs.tmux.binding import own_binding
from oxtail_fs.tmux.client import Tmux
from oxtail_fs.tmux.waker import TmuxWaker
from oxtail_mcp.home import state_home, user_home
from oxtail_mcp.identity import session as detection
from oxtail_mcp.identity import sticky
from oxtail_mcp.identity.client import (
    claude_env_session_id,
    codex_env_session_id,
    detect_from_env,
    detect_from_handshake,
)
from oxtail_mcp.server.tracefile import FileTracer
from oxtail_mcp.storage import open_store, open_with_info
from oxtail_mcp.transcripts.files import transcript_path_for

RETRY_DELAYS_MS = (1_000, 5_000, 30_000, 300_000)


def tracer_from_env(env: Mapping[str, str], pid: int) -> Tracer:
    """A FileTracer when ``MCP_TRACE_FILE`` is set (read once, at startup), else a NullTracer."""
    path = env.get("MCP_TRACE_FILE", "")
    return FileTracer(Path(path), pid) if path else NullTracer()


def _enriched(
    client: ClientInfo,
    started_at: int,
    env: Mapping[str, str],
    user: Path,
    now: int,
    *,
    tracer: Tracer,
    trigger: str,
) -> tuple[ClientInfo, detection.Diagnosis | None]:
    """Detection's view of ``client``, traced as a run for ``trigger``."""
    client, diagnosis = detection.enrich(client, started_at, env, user, now)
    if diagnosis is not None:
        safe_emit(tracer, "detect_run", **diagnosis.trace_fields(trigger))
    return client, diagnosis


def proves(diagnosis: detection.Diagnosis | None, session_id: str) -> bool:
    """Whether our own detection is evidence that we are ``session_id`` (the claim rule's "proven").

    Evidence: our environment names it, a SessionStart drop of our own client
    (ancestry-confirmed, confidence high) names it, or a transcript of our
    client born after we started. A medium hook-drop (a drop whose client we
    could not confirm) and a sticky claim are no evidence.
    """
    won = None if diagnosis is None else diagnosis.winning
    if won is None or not same_session_id(won.session_id, session_id):
        return False
    return won.source in ("env", "birth-time") or (won.source == "hook-drop" and won.confidence == "high")


def env_names(env: Mapping[str, str], session_id: str) -> bool:
    """Whether the host's environment hands us ``session_id`` (Claude Code's or Codex's variable)."""
    named = (claude_env_session_id(env), codex_env_session_id(env))
    return any(value and same_session_id(value, session_id) for value in named)


def _admitted(
    ctx: Context, probe: RegistryEntry, client: ClientInfo, proven: bool, tracer: Tracer
) -> ClientInfo:
    """``client``, or ``client`` without its id when the claim rule refuses it (traced, never raised)."""
    if not client.session_id:
        return client
    try:
        check_claim(ctx, probe, client.session_id, proven=proven)
    except SessionHeld as held:
        safe_emit(
            tracer,
            "claim_refused",
            session_id=client.session_id,
            source=client.session_id_source,
            holder_pid=held.holder.server_pid,
        )
        return attrs.evolve(client, session_id=None, session_id_source=None, transcript_path=None)
    return client


def _recovered(client: ClientInfo, store: Store, now: int, pid: int, tracer: Tracer) -> ClientInfo | None:
    """The client with a recovered sticky claim, or None (nothing to recover, or nothing found)."""
    if client.session_id or client.type == "unknown":
        return None  # nothing to recover: spare the process-table snapshot
    return sticky.maybe_recover(
        client,
        store=store,
        ancestors=sticky.current_ancestors(os.getppid()),
        now_ms=now,
        server_pid=pid,
        tracer=tracer,
    )


class Agent:
    """This server's identity detection and sticky recovery, around one :class:`AsyncPeer`.

    The peer owns our registry entry and every rule about it (join, claim,
    state card); the agent only decides *what* we are (environment,
    handshake, transcripts, sticky claims) and tells the peer. Tool calls run
    in worker threads, so identity changes are serialized by ``_lock``.
    """

    def __init__(
        self,
        peer: AsyncPeer,
        *,
        env: Mapping[str, str],
        state_dir: Path,
        user: Path,
        tmux: Tmux,
    ) -> None:
        self.peer = peer
        self.env = env
        self.state_dir = state_dir
        self.user = user
        self.tmux = tmux
        self.startup_diagnosis: detection.Diagnosis | None = None
        self.client_name: str | None = None
        self.env_client_type = peer.me.client.type  # as the environment said at start, before any handshake
        self._lock = threading.RLock()

    @property
    def ctx(self) -> Context:
        return self.peer.ctx

    @property
    def me(self) -> RegistryEntry:
        return self.peer.me

    @classmethod
    def start(cls, env: Mapping[str, str] = os.environ, *, cwd: str | None = None) -> Agent:
        """Detect who we are, bind our pane, recover a sticky claim, and join (publish our entry)."""
        pid = os.getpid()
        state_dir = state_home(env)
        user = user_home(env)
        tmux = Tmux()
        clock = SystemClock()
        tracer = tracer_from_env(env, pid)
        store, store_info = open_with_info(env)
        for warning in store_info.get("warnings", []):
            safe_emit(tracer, "store_warning", where=store_info["where"], warning=warning)
        ctx = Context(
            store,
            TmuxWaker(tmux),
            clock,
            LocalHost(),
            settings=Settings.from_env(env),
            tracer=tracer,
        )
        now = clock.now_ms()
        here = cwd if cwd is not None else os.getcwd()
        detected = detect_from_env(env, here, user, now)
        client, diagnosis = _enriched(detected, now // 1000, env, user, now, tracer=tracer, trigger="startup")
        recovered = _recovered(client, ctx.store, now, pid, tracer)
        proven = recovered is None and bool(client.session_id) and proves(diagnosis, client.session_id or "")
        client = recovered or client
        binding = own_binding(tmux, env, pid)
        parent = proctree.parent_of(pid)
        probe = RegistryEntry(
            server_pid=pid,
            started_at=now // 1000,
            client=attrs.evolve(detected, session_id=None),
            client_pid=None if parent is None else parent[0],
            client_start=None if parent is None else parent[1],
        )
        client = _admitted(ctx, probe, client, proven or env_names(env, client.session_id or ""), tracer)
        peer = AsyncPeer.join(
            ctx,
            pid,
            client=client,
            started_at=now // 1000,
            tmux_pane=binding.pane,
            tmux_session=binding.session,
            process_start=proctree.process_start(pid),
            client_process=parent,
        )
        agent = cls(peer, env=env, state_dir=state_dir, user=user, tmux=tmux)
        agent.startup_diagnosis = diagnosis
        return agent

    # Identity -------------------------------------------------------------------
    def _enrich(self, trigger: str) -> detection.Diagnosis | None:
        """Run detection on our entry; the caller publishes if the client changed."""
        now = self.ctx.clock.now_ms()
        client, diagnosis = _enriched(
            self.me.client,
            self.me.started_at,
            self.env,
            self.user,
            now,
            tracer=self.ctx.tracer,
            trigger=trigger,
        )
        self._describe(client, proves(diagnosis, client.session_id or ""))
        return diagnosis

    def _describe(self, client: ClientInfo, proven: bool) -> None:
        """Publish what detection learned; an id the claim rule refuses is not adopted (traced)."""
        try:
            self.peer.describe(client, proven=proven or env_names(self.env, client.session_id or ""))
        except SessionHeld as held:
            safe_emit(
                self.ctx.tracer,
                "claim_refused",
                session_id=client.session_id,
                source=client.session_id_source,
                holder_pid=held.holder.server_pid,
            )

    def _recover_sticky(self) -> None:
        recovered = _recovered(
            self.me.client, self.ctx.store, self.ctx.clock.now_ms(), self.me.server_pid, self.ctx.tracer
        )
        if recovered is not None:
            self._describe(recovered, proven=False)

    def claim(self, session_id: str) -> RegistryEntry:
        """Pin our identity, rebind tmux, publish, persist a sticky claim.

        An explicit claim wins over detection, but not over a live agent of
        another client process (the claim rule, :mod:`oxtail_core.claims`):
        then SessionHeld, unless our environment or our own detection names
        the id (evidence, gathered only when the rule would refuse).
        """
        with self._lock:
            now = self.ctx.clock.now_ms()
            client = self.me.client
            transcript = client.transcript_path
            if client.type != "unknown":
                transcript = transcript_path_for(
                    client.type, self.user, client.cwd, session_id, now, env=self.env
                )
            binding = own_binding(self.tmux, self.env, self.me.server_pid)
            claim = functools.partial(
                self.peer.claim, session_id, transcript_path=transcript, tmux=(binding.pane, binding.session)
            )
            try:
                me = claim(proven=env_names(self.env, session_id))
            except SessionHeld:
                if not self._detection_names(session_id, now):
                    raise
                me = claim(proven=True)
            record = sticky.claim_for(me.client, sticky.current_ancestors(os.getppid()), now, me.server_pid)
            if record is not None:
                sticky.write_claim(self.ctx.store, record, now)
            return me

    def _detection_names(self, session_id: str, now: int) -> bool:
        """Whether a fresh detection run of our client finds ``session_id`` by evidence (:func:`proves`)."""
        client = self.me.client
        if client.type == "unknown":
            return False
        diagnosis = detection.diagnose(
            client.type, client.cwd, started_at=self.me.started_at, env=self.env, home=self.user, now_ms=now
        )
        return proves(diagnosis, session_id)

    def refine(self, client_name: str | None, trigger: str) -> detection.Diagnosis | None:
        """Fold what the MCP handshake says about our client into our entry (monotonic identity)."""
        with self._lock:
            return self._refine(client_name, trigger)

    def _refine(self, client_name: str | None, trigger: str) -> detection.Diagnosis | None:
        now = self.ctx.clock.now_ms()
        fresh = detect_from_handshake(client_name, self.env, self.me.client.cwd, self.user, now)
        fresh, diagnosis = detection.enrich(fresh, self.me.started_at, self.env, self.user, now)
        if diagnosis is not None:
            safe_emit(self.ctx.tracer, "detect_run", **diagnosis.trace_fields(trigger))
        merged = detection.merge_handshake(self.me.client, fresh, self.user, now, env=self.env)
        if merged.preserved is not None:
            safe_emit(
                self.ctx.tracer, "detect_preserved_existing_session_id", trigger=trigger, **merged.preserved
            )
        if merged.changed:
            self._describe(merged.client, proves(diagnosis, merged.client.session_id or ""))
        self._recover_sticky()
        return diagnosis

    def retry_detection(self, delay_ms: int) -> None:
        """A late re-detection (the transcript may only now exist); never changes a known id."""
        with self._lock:
            if not self.me.session_id:
                self._enrich(f"retry+{delay_ms}ms")

    def should_retry(self, diagnosis: detection.Diagnosis | None) -> bool:
        """Retries make sense unless every strategy abstained for a structural reason."""
        if self.me.session_id or self.me.client.type == "unknown":
            return False
        if diagnosis is not None and diagnosis.all_structural():
            safe_emit(self.ctx.tracer, "detect_skip_retries", reason="all-structural")
            return False
        return True

    def set_state(self, purpose: str | None, given: bool) -> StateCard:
        """Replace the state card; without ``purpose`` given the previous purpose is kept (a touch)."""
        with self._lock:
            return self.peer.set_state(purpose, keep_purpose=not given)

    def diagnosis(self, trigger: str) -> dict[str, Any]:
        """get_my_session's ``detect_diagnosis``: synthesized when the id is known, else a live run."""
        with self._lock:
            if self.me.session_id:
                return detection.known_id_diagnosis(
                    self.me.session_id, self.me.client.session_id_source
                ).as_dict()
            diagnosis = self._enrich(trigger)
        if diagnosis is None:
            return {"per_strategy": {}, "winning": None, "next_step": None}
        return diagnosis.as_dict()

    # Registry ---------------------------------------------------------------------
    def retire(self) -> None:
        """Leave the registry without stranding mail (best effort: we are exiting)."""
        with contextlib.suppress(Exception):  # an exit path must not raise
            self.peer.leave()

    @staticmethod
    def forget_own_entry(env: Mapping[str, str] = os.environ) -> None:
        """Remove our registry entry when we are stopped before we finished starting."""
        with contextlib.suppress(Exception):
            open_store(env).registry_remove(os.getpid())

    def entry_wire(self) -> dict[str, Any]:
        """The entry as get_my_session shows it (no capabilities, no process start)."""
        full = to_wire(self.me)
        return {
            key: full[key]
            for key in ("server_pid", "started_at", "tmux_pane", "tmux_session", "client", "state")
        }
