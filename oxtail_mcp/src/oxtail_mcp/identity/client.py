"""Which agent host launched this server, from its environment and from the MCP handshake.

Hosts announce themselves differently: Claude Code sets ``CLAUDECODE=1`` in
its children, Codex leaves a handful of ``CODEX_*`` variables, and both send a
``clientInfo.name`` in the MCP handshake. The environment is read at startup
and the handshake may refine it later (see :mod:`oxtail_mcp.identity.session` for the
monotonic merge). Values are trimmed, so a stray space or newline in a shell
profile does not change who we think we are.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from oxtail_core.model import ClientInfo, ClientType
from oxtail_mcp.transcripts.files import transcript_path_for

BARE_ENV = frozenset({"HOME", "LANG", "PATH", "SHELL", "TERM"})
"""What Codex 0.171.0 gives an MCP server unless ``env_vars`` forwards more (CA-bundle variables aside)."""

FORWARDED_NOTHING = (
    "this environment holds only HOME LANG PATH SHELL TERM, as Codex gives its MCP servers: "
    "OXTAIL_HOME, TMUX, TMUX_PANE and OXTAIL_* settings were not forwarded (another state dir than "
    "the peers', wakes on the wrong tmux server); add env_vars = [...] under [mcp_servers.oxtail] "
    "(see `oxtail-mcp print-config`)."
)


def forwarded_nothing(env: Mapping[str, str]) -> bool:
    """True for an environment stripped to Codex's bare set: nothing of the user's reached us."""
    names = {name for name in env if not name.endswith(("_CERT_FILE", "_CERT_DIR", "_CA_BUNDLE"))}
    names -= {"LC_CTYPE"}  # CPython's own locale coercion may add it
    return bool(env) and names <= BARE_ENV


_CODEX_MARKERS = ("CODEX_HOME", "CODEX_THREAD_ID", "CODEX_COMPANION_SESSION_ID", "CODEX_RUNTIME")


def env_value(env: Mapping[str, str], name: str) -> str | None:
    """``env[name]`` with surrounding whitespace removed; None when the variable is not set at all."""
    value = env.get(name)
    return None if value is None else value.strip()


def claude_env_session_id(env: Mapping[str, str]) -> str | None:
    """``CLAUDE_CODE_SESSION_ID`` as set; an empty value stays ``""`` (present but no id)."""
    return env_value(env, "CLAUDE_CODE_SESSION_ID")


def codex_env_session_id(env: Mapping[str, str]) -> str | None:
    """``CODEX_THREAD_ID``, else ``CODEX_COMPANION_SESSION_ID``; ``CODEX_SESSION_ID`` is never consulted."""
    return env_value(env, "CODEX_THREAD_ID") or env_value(env, "CODEX_COMPANION_SESSION_ID") or None


def _client(
    client_type: ClientType,
    session_id: str | None,
    env_cwd: str,
    home: Path,
    now_ms: int,
    *,
    env: Mapping[str, str],
) -> ClientInfo:
    return ClientInfo(
        type=client_type,
        session_id=session_id,
        transcript_path=transcript_path_for(client_type, home, env_cwd, session_id, now_ms, env=env),
        session_id_source="env" if session_id else None,
        cwd=env_cwd,
    )


def claude_client(env: Mapping[str, str], cwd: str, home: Path, now_ms: int) -> ClientInfo:
    """A claude-code ClientInfo whose id (if any) comes from ``CLAUDE_CODE_SESSION_ID``."""
    return _client("claude-code", claude_env_session_id(env), cwd, home, now_ms, env=env)


def codex_client(env: Mapping[str, str], cwd: str, home: Path, now_ms: int) -> ClientInfo:
    """A codex ClientInfo whose id (if any) comes from the Codex thread variables."""
    return _client("codex", codex_env_session_id(env), cwd, home, now_ms, env=env)


def detect_from_env(env: Mapping[str, str], cwd: str, home: Path, now_ms: int) -> ClientInfo:
    """The client as the process environment describes it at startup (discovery §2.1).

    ``now_ms`` picks the Codex date directories searched for a transcript; ``env`` also
    locates the transcripts (``CLAUDE_CONFIG_DIR``, ``CODEX_HOME``).
    """
    if env_value(env, "CLAUDECODE") == "1":
        return claude_client(env, cwd, home, now_ms)
    if any(env_value(env, name) for name in _CODEX_MARKERS):
        return codex_client(env, cwd, home, now_ms)
    return ClientInfo(type="unknown", cwd=cwd)


def detect_from_handshake(
    client_name: str | None, env: Mapping[str, str], cwd: str, home: Path, now_ms: int
) -> ClientInfo:
    """The client as the MCP handshake names it, falling back to the environment (discovery §2.2).

    ``claude`` is tested before ``codex``, so a name containing both is Claude Code.
    """
    name = (client_name or "").strip().lower()
    if "claude" in name:
        return claude_client(env, cwd, home, now_ms)
    if "codex" in name:
        return codex_client(env, cwd, home, now_ms)
    return detect_from_env(env, cwd, home, now_ms)
