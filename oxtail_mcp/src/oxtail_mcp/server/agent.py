"""This server process as the agent it serves: its registry entry, its identity, its world.

Identity is monotonic: once a session id is known, only an explicit
``claim_session`` / ``register_my_session`` changes it; detection, the
handshake and retries never do. Every identity or state change republishes
the entry (which also folds mail owed to this agent into its inbox).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from oxtail_core import Capabilities, Context, RegistryEntry, Settings, StateCard, SystemClock
from oxtail_core.convert import to_wire
from oxtail_core.limits import SESSION_ID_MAX_CHARS, check_id
from oxtail_core.routing import publish, retire
from oxtail_core.trace import NullTracer, Tracer, safe_emit
from oxtail_fs import proctree
from oxtail_fs.binding import own_binding
from oxtail_fs.project import LocalHost
from oxtail_fs.store import FsStore
from oxtail_fs.tmux import Tmux
from oxtail_fs.waker import TmuxWaker
from oxtail_mcp.home import state_home, user_home
from oxtail_mcp.identity import session as detection
from oxtail_mcp.identity import sticky
from oxtail_mcp.identity.client import detect_from_env, detect_from_handshake
from oxtail_mcp.server.tracefile import FileTracer
from oxtail_mcp.transcripts.files import transcript_path_for

RETRY_DELAYS_MS = (1_000, 5_000, 30_000, 300_000)


def tracer_from_env(env: Mapping[str, str], pid: int) -> Tracer:
    """A FileTracer when ``MCP_TRACE_FILE`` is set (read once, at startup), else a NullTracer."""
    path = env.get("MCP_TRACE_FILE", "")
    return FileTracer(Path(path), pid) if path else NullTracer()


class Agent:
    """Owns ``me`` (our registry entry) and the Context every tool runs in."""

    def __init__(
        self,
        ctx: Context,
        me: RegistryEntry,
        *,
        env: Mapping[str, str],
        state_dir: Path,
        user: Path,
        tmux: Tmux,
    ) -> None:
        self.ctx = ctx
        self.me = me
        self.env = env
        self.state_dir = state_dir
        self.user = user
        self.tmux = tmux
        self.startup_diagnosis: detection.Diagnosis | None = None
        self.client_name: str | None = None
        self.env_client_type = me.client.type  # as the environment said at start, before any handshake

    @classmethod
    def start(cls, env: Mapping[str, str] = os.environ, *, cwd: str | None = None) -> Agent:
        """Detect who we are, bind our pane, recover a sticky claim, and publish our entry."""
        pid = os.getpid()
        state_dir = state_home(env)
        user = user_home(env)
        tmux = Tmux()
        clock = SystemClock()
        tracer = tracer_from_env(env, pid)
        ctx = Context(
            FsStore(state_dir),
            TmuxWaker(tmux),
            clock,
            LocalHost(),
            settings=Settings.from_env(env),
            tracer=tracer,
        )
        now = clock.now_ms()
        here = cwd if cwd is not None else os.getcwd()
        client = detect_from_env(env, here, user, now)
        binding = own_binding(tmux, env, pid)
        me = RegistryEntry(
            server_pid=pid,
            started_at=now // 1000,
            client=client,
            tmux_pane=binding.pane,
            tmux_session=binding.session,
            capabilities=Capabilities(),
            process_start=proctree.process_start(pid),
        )
        agent = cls(ctx, me, env=env, state_dir=state_dir, user=user, tmux=tmux)
        agent.startup_diagnosis = agent._enrich("startup")
        agent._recover_sticky()
        agent.publish()
        return agent

    # Identity -------------------------------------------------------------------
    def _enrich(self, trigger: str) -> detection.Diagnosis | None:
        now = self.ctx.clock.now_ms()
        client, diagnosis = detection.enrich(self.me.client, self.me.started_at, self.env, self.user, now)
        if diagnosis is not None:
            safe_emit(self.ctx.tracer, "detect_run", **diagnosis.trace_fields(trigger))
        if client != self.me.client:
            self.me = attrs.evolve(self.me, client=client)
        return diagnosis

    def _recover_sticky(self) -> bool:
        if self.me.client.session_id or self.me.client.type == "unknown":
            return False  # nothing to recover: spare the process-table snapshot
        recovered = sticky.maybe_recover(
            self.me.client,
            state_dir=self.state_dir,
            ancestors=sticky.current_ancestors(os.getppid()),
            now_ms=self.ctx.clock.now_ms(),
            server_pid=self.me.server_pid,
            tracer=self.ctx.tracer,
        )
        if recovered is None:
            return False
        self.me = attrs.evolve(self.me, client=recovered)
        return True

    def claim(self, session_id: str) -> RegistryEntry:
        """Pin our identity (an explicit claim always wins), rebind tmux, publish, persist a sticky claim.

        ValueError (a tool error) for an id the core bounds refuse (oxtail_core.limits).
        """
        check_id("session_id", session_id, SESSION_ID_MAX_CHARS)
        now = self.ctx.clock.now_ms()
        client = self.me.client
        transcript = client.transcript_path
        if client.type != "unknown":
            transcript = transcript_path_for(client.type, self.user, client.cwd, session_id, now)
        client = attrs.evolve(
            client, session_id=session_id, session_id_source="self-register", transcript_path=transcript
        )
        binding = own_binding(self.tmux, self.env, self.me.server_pid)
        self.me = attrs.evolve(self.me, client=client, tmux_pane=binding.pane, tmux_session=binding.session)
        self.publish()
        record = sticky.claim_for(client, sticky.current_ancestors(os.getppid()), now, self.me.server_pid)
        if record is not None:
            sticky.write_claim(self.state_dir, record, now, self.me.server_pid)
        return self.me

    def refine(self, client_name: str | None, trigger: str) -> detection.Diagnosis | None:
        """Fold what the MCP handshake says about our client into our entry (monotonic identity)."""
        now = self.ctx.clock.now_ms()
        fresh = detect_from_handshake(client_name, self.env, self.me.client.cwd, self.user, now)
        fresh, diagnosis = detection.enrich(fresh, self.me.started_at, self.env, self.user, now)
        if diagnosis is not None:
            safe_emit(self.ctx.tracer, "detect_run", **diagnosis.trace_fields(trigger))
        merged = detection.merge_handshake(self.me.client, fresh, self.user, now)
        if merged.preserved is not None:
            safe_emit(
                self.ctx.tracer, "detect_preserved_existing_session_id", trigger=trigger, **merged.preserved
            )
        if merged.changed:
            self.me = attrs.evolve(self.me, client=merged.client)
            self.publish()
        if self._recover_sticky():
            self.publish()
        return diagnosis

    def retry_detection(self, delay_ms: int) -> None:
        """A late re-detection (the transcript may only now exist); never changes a known id."""
        if self.me.session_id:
            return
        before = self.me.client
        self._enrich(f"retry+{delay_ms}ms")
        if self.me.client != before and self.me.session_id:
            self.publish()

    def should_retry(self, diagnosis: detection.Diagnosis | None) -> bool:
        """Retries make sense unless every strategy abstained for a structural reason."""
        if self.me.session_id or self.me.client.type == "unknown":
            return False
        if diagnosis is not None and diagnosis.all_structural():
            safe_emit(self.ctx.tracer, "detect_skip_retries", reason="all-structural")
            return False
        return True

    def set_state(self, purpose: str | None, given: bool) -> StateCard:
        """Replace the state card; without ``purpose`` the previous purpose is kept (a touch)."""
        previous = self.me.state.purpose if self.me.state else None
        card = StateCard(purpose=purpose if given else previous, updated_at=self.ctx.clock.now_ms() // 1000)
        self.me = attrs.evolve(self.me, state=card)
        self.publish()
        return card

    def diagnosis(self, trigger: str) -> dict[str, Any]:
        """get_my_session's ``detect_diagnosis``: synthesized when the id is known, else a live run."""
        if self.me.session_id:
            return detection.known_id_diagnosis(
                self.me.session_id, self.me.client.session_id_source
            ).as_dict()
        diagnosis = self._enrich(trigger)
        if self.me.session_id:
            self.publish()
        if diagnosis is None:
            return {"per_strategy": {}, "winning": None, "next_step": None}
        return diagnosis.as_dict()

    # Registry ---------------------------------------------------------------------
    def publish(self) -> None:
        publish(self.ctx, self.me)

    def retire(self) -> None:
        """Leave the registry without stranding mail (best effort: we are exiting)."""
        with contextlib.suppress(Exception):  # an exit path must not raise
            retire(self.ctx, self.me)

    @staticmethod
    def forget_own_entry(env: Mapping[str, str] = os.environ) -> None:
        """Remove our registry entry when we are stopped before we finished starting."""
        with contextlib.suppress(Exception):
            FsStore(state_home(env)).registry_remove(os.getpid())

    def entry_wire(self) -> dict[str, Any]:
        """The entry as get_my_session shows it (no capabilities, no process start)."""
        full = to_wire(self.me)
        return {
            key: full[key]
            for key in ("server_pid", "started_at", "tmux_pane", "tmux_session", "client", "state")
        }
