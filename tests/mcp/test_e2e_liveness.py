""" "Working right now" from a real pane's content (selfheal.md §5.2, S40, S41) end to end.

Each pane of a private tmux server runs a small client program: it starts a real ``oxtail-mcp``
through the official MCP client (so the server binds its pane and registers, as under Claude Code),
then draws one of three screens: a turn in flight that keeps printing (with the clients'
``esc to interrupt`` chrome), an idle client whose counter keeps ticking, a quiet prompt. The test
reads them as ``oxtail status`` would: the core's :func:`capture_pane` over the file store's
registry and the tmux waker, which captures only the pane the live process tree proves.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs
import pytest

from oxtail_core.liveness import (
    Capture,
    LivenessFacts,
    LivenessSettings,
    Reason,
    State,
    capture_fleet,
    capture_pane,
    judge,
    start_check,
)
from oxtail_core.model import ClientInfo, RegistryEntry
from oxtail_fs.host.proctree import process_start
from oxtail_fs.host.project import LocalHost
from oxtail_fs.tmux.client import Tmux
from oxtail_fs.tmux.waker import TmuxWaker
from oxtail_mcp.transcripts.files import claude_transcript_path
from tests.support.e2e import SERVER_COMMAND, World, wait_until, world

CLIENT = """\
import json, os, sys
import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

spec = json.load(open(sys.argv[1]))
env = {**spec["env"], **{k: os.environ[k] for k in ("TMUX", "TMUX_PANE") if k in os.environ}}


def show(text):
    sys.stdout.write(text)
    sys.stdout.flush()


async def draw(mode):
    n = 0
    if mode == "quiet":
        show("\\u276f ")
        await anyio.sleep_forever()
    while True:
        n += 1
        if mode == "working":  # a turn in flight: output keeps coming, the chrome says so
            show(f"tool output line {n}\\n\\u273b Thinking\\u2026 ({n}s \\u00b7 esc to interrupt)\\n")
        else:  # idle at the prompt, but the screen keeps changing
            show(f"\\r\\u273b Worked for {n}s   ")
        await anyio.sleep(0.05)


async def main():
    params = StdioServerParameters(command=spec["server"], args=[], env=env, cwd=spec["cwd"])
    with open(spec["log"], "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (r, w), ClientSession(r, w) as session:
            await session.initialize()
            if spec.get("session"):
                await session.call_tool("claim_session", {"session_id": spec["session"]})
            got = await session.call_tool("get_my_session", {})
            entry = json.loads(got.content[0].text)["entry"]
            with open(spec["out"] + ".tmp", "w") as f:
                json.dump(entry, f)
            os.rename(spec["out"] + ".tmp", spec["out"])
            await draw(spec["mode"])


anyio.run(main)
"""

MODES = ("working", "ticking", "quiet")


@attrs.frozen
class Pane:
    pane: str
    entry: RegistryEntry


class CountingTmux(Tmux):
    """The private server's tmux, remembering every pane it was asked to capture."""

    def __init__(self, socket_name: str) -> None:
        super().__init__(socket_name=socket_name, timeout_s=5.0)
        self.captured: list[str] = []

    def capture(self, pane: str) -> str | None:
        self.captured.append(pane)
        return super().capture(pane)


def start_clients(w: World, proj: Path, sessions: Mapping[str, str] | None = None) -> dict[str, Pane]:
    script = w.tmp / "client.py"
    script.write_text(CLIENT)
    panes = {}
    for mode in MODES:
        spec = w.tmp / f"{mode}.json"
        out = w.tmp / f"{mode}.entry"
        env = w.env({"CLAUDECODE": "1"})
        spec.write_text(
            json.dumps(
                {"env": env, "server": SERVER_COMMAND, "cwd": str(proj), "mode": mode, "out": str(out)}
                | {"log": str(w.server_log), "session": (sessions or {}).get(mode)}
            )
        )
        command = (
            shlex.join([sys.executable, str(script), str(spec)]) + f" 2>>{shlex.quote(str(w.server_log))}"
        )
        panes[mode] = w.tmux.new_session(mode, command, cwd=str(proj))
    result = {}
    for mode, pane in panes.items():
        out = w.tmp / f"{mode}.entry"
        assert wait_until(out.exists, 60), f"{mode} client did not start:\n{w.server_log.read_text()[-4000:]}"
        pid = json.loads(out.read_text())["server_pid"]
        entry = wait_until(
            lambda pid=pid: next((e for e in w.store().registry_entries() if e.server_pid == pid), None)
        )
        assert entry is not None and entry.tmux_pane == pane and entry.process_start is not None
        result[mode] = Pane(pane, entry)
    return result


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[World, dict[str, Pane], CountingTmux]]:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        panes = start_clients(w, proj)
        assert w.tmux is not None
        yield w, panes, CountingTmux(w.tmux.socket_name)


@pytest.mark.tmux
def test_a_pane_that_keeps_printing_a_turn_is_working_and_a_ticking_or_quiet_prompt_is_not(
    fleet: tuple[World, dict[str, Pane], CountingTmux],
) -> None:
    w, panes, tmux = fleet
    store, waker = w.store(), TmuxWaker(tmux)
    assert wait_until(lambda: "esc to interrupt" in (tmux.capture(panes["working"].pane) or ""), 10)
    assert wait_until(lambda: "Worked for" in (tmux.capture(panes["ticking"].pane) or ""), 10)
    first = tmux.capture(panes["ticking"].pane)
    # the ticking screen really changes (what tmux's activity time would see)
    assert wait_until(lambda: tmux.capture(panes["ticking"].pane) != first, 10)

    reads = {mode: capture_pane(p.entry, store.registry_entries, waker) for mode, p in panes.items()}
    assert {mode: (r.outcome, r.busy) for mode, r in reads.items()} == {
        "working": (Capture.READ, True),
        "ticking": (Capture.READ, False),
        "quiet": (Capture.READ, False),
    }
    working = reads["working"].activity
    assert working is not None and working.tail is not None and working.tail.startswith("Thinking (")

    # As status would judge each one, with a transcript last written 5 minutes ago (S40).
    host, settings = LocalHost(), LivenessSettings()
    verdicts = {}
    for mode, p in panes.items():
        alive, start = start_check(host, p.entry)
        assert (alive, start) == (True, "ok")
        verdicts[mode] = judge(LivenessFacts(alive, start, 300.0, reads[mode].activity), settings)
    assert verdicts["working"].reason is Reason.PANE_FRESH and verdicts["working"].state is State.ACTIVE
    assert {verdicts["ticking"].state, verdicts["quiet"].state} == {State.IDLE}

    busy = capture_fleet(store.registry_entries(), store.registry_entries, waker, host, None)
    assert {pid for pid, seen in busy.items() if seen.busy} == {panes["working"].entry.server_pid}
    assert set(busy) == {p.entry.server_pid for p in panes.values()}


def sleeper_named_like_a_server() -> subprocess.Popen[bytes]:
    """A process outside every pane whose command line looks like ``oxtail-mcp``."""
    return subprocess.Popen(["oxtail-mcp", "600"], executable="sleep")


@pytest.mark.tmux
def test_a_forged_registry_entry_never_gets_the_pane_it_names_captured(
    fleet: tuple[World, dict[str, Pane], CountingTmux],
) -> None:
    w, panes, tmux = fleet
    store, waker = w.store(), TmuxWaker(tmux)
    target = panes["working"].pane  # the screen a forger would like to read
    client_pid = w.tmux.pane_pid(panes["quiet"].pane)  # a pane's own process: a client, not a server
    outsider = sleeper_named_like_a_server()
    try:
        forged = [
            RegistryEntry(
                server_pid=pid,
                started_at=panes["quiet"].entry.started_at,
                client=ClientInfo("claude-code", None),
                tmux_pane=target,
                process_start=process_start(pid),
            )
            for pid in (client_pid, outsider.pid)
        ]
        for entry in forged:
            store.registry_put(entry)
            assert os.path.exists(w.registry_file(entry.server_pid))
            got = capture_pane(entry, store.registry_entries, waker)
            assert got.outcome is Capture.UNVERIFIED and not got.busy
        assert tmux.captured == []

        # The quiet agent's own server, its entry rewritten to name the busy pane: the process
        # tree decides, so its own quiet pane is what is read.
        lying = attrs.evolve(panes["quiet"].entry, tmux_pane=target)
        store.registry_put(lying)
        got = capture_pane(lying, store.registry_entries, waker)
        assert (got.outcome, got.busy) == (Capture.READ, False)
        assert tmux.captured == [panes["quiet"].pane]

        # The same server under a wrong start time (a recycled pid, as far as anyone can tell).
        recycled = attrs.evolve(panes["quiet"].entry, process_start=panes["quiet"].entry.process_start + 50)
        store.registry_put(recycled)
        got = capture_pane(recycled, store.registry_entries, waker)
        assert got.outcome is Capture.UNVERIFIED and tmux.captured == [panes["quiet"].pane]
    finally:
        outsider.kill()
        outsider.wait()


class KillingWaker(TmuxWaker):
    """Reads the pane, then SIGKILLs ``victim`` and waits for it to be gone: the agent exits between
    the read and the re-verification (S41)."""

    def __init__(self, tmux: Tmux, victim: int) -> None:
        super().__init__(tmux)
        self.victim = victim

    def capture(self, target: str) -> str | None:
        text = super().capture(target)
        os.kill(self.victim, signal.SIGKILL)
        assert wait_until(lambda: not LocalHost().is_alive(self.victim, None), 10)
        return text


@pytest.mark.tmux
def test_s41_a_screen_read_just_before_its_server_died_is_discarded(
    fleet: tuple[World, dict[str, Pane], CountingTmux],
) -> None:
    w, panes, tmux = fleet
    working = panes["working"]
    assert wait_until(lambda: "esc to interrupt" in (tmux.capture(working.pane) or ""), 10)
    tmux.captured.clear()
    waker = KillingWaker(tmux, working.entry.server_pid)
    got = capture_pane(working.entry, w.store().registry_entries, waker)
    assert got.outcome is Capture.DISCARDED and got.activity is None and not got.busy
    assert tmux.captured == [working.pane]  # it was read, and thrown away


@pytest.fixture
def claimed_fleet(tmp_path: Path) -> Iterator[tuple[World, dict[str, Pane]]]:
    """The three screens as claimed Claude Code agents, each with a transcript last written 5 minutes
    ago: within the stall window, so a busy screen is what makes an agent active (S40)."""
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        sessions = {mode: f"5e55{n:04x}-0000-4000-8000-{n:012x}" for n, mode in enumerate(MODES, start=1)}
        panes = start_clients(w, proj, sessions)
        env = w.env()
        for session in sessions.values():
            path = Path(claude_transcript_path(Path(env["HOME"]), str(proj.resolve()), session, env))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text('{"type":"user","message":{"content":"hi"}}\n')
            then = time.time() - 300
            os.utime(path, (then, then))
        yield w, panes


@pytest.mark.tmux
def test_s42_status_on_a_terminal_reads_the_panes_and_piped_json_never_does(
    claimed_fleet: tuple[World, dict[str, Pane]],
) -> None:
    """``oxtail-mcp status`` in a real terminal (a pane of the same tmux server) sees the turn in
    flight on the working agent's screen; the same status piped forks no capture, so no ``pane_fresh``."""
    w, panes = claimed_fleet
    assert w.tmux is not None
    proj = panes["working"].entry.client.cwd
    cli = str(Path(sys.executable).with_name("oxtail-mcp"))
    env = w.env()
    status = shlex.join(
        ["env", f"OXTAIL_HOME={env['OXTAIL_HOME']}", f"HOME={env['HOME']}", cli, "status", proj]
    )
    pane = w.tmux.new_session("status", f"{status}; sleep 60", cwd=proj)

    def screen() -> str:
        return w.tmux.raw("capture-pane", "-p", "-J", "-t", pane)

    assert wait_until(lambda: "active ✻" in screen(), 30), screen()
    line = next(text for text in screen().splitlines() if "active ✻" in text)
    assert "working" in line  # the working agent's tmux session, and only its row
    assert screen().count("active ✻") == 1
    piped = subprocess.run(
        [cli, "status", proj, "--json"], env=env, capture_output=True, text=True, check=True
    )
    reasons = {row["tmux_session"]: row["liveness_reason"] for row in json.loads(piped.stdout)["agents"]}
    assert reasons == {mode: "idle" for mode in MODES}  # no pane read: the 5-minute transcript is idle
