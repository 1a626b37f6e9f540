"""The tmux waker and own-pane binding against a real, private tmux server.

Keystrokes land in a pane running a reader in cbreak mode, which logs every
chunk it reads with a timestamp: the log shows exactly what was typed, when,
and whether anything was submitted early.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from oxtail_core.model import WAKE_TEXT, ClientInfo, RegistryEntry
from oxtail_fs.host import proctree
from oxtail_fs.host.proctree import process_start
from oxtail_fs.tmux.binding import TmuxBinding, own_binding, own_pane
from oxtail_fs.tmux.client import Tmux
from oxtail_fs.tmux.waker import TmuxWaker
from tests.support.tmux import PrivateTmux, private_tmux, wait_for

READER = """\
import json, os, sys, time, tty
log = sys.argv[1]
tty.setcbreak(0)
open(log + ".ready", "w").close()
while True:
    data = os.read(0, 4096)
    if not data:
        break
    with open(log, "a") as f:
        f.write(json.dumps([time.time(), data.decode("utf-8", "replace")]) + "\\n")
"""

SPAWNER = """\
import os, subprocess, sys
child = subprocess.Popen(["oxtail-mcp", "1000"], executable="sleep")  # looks like our server
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(child.pid))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
child.wait()
"""


@pytest.fixture
def server() -> Iterator[PrivateTmux]:
    with private_tmux() as s:
        yield s


class Reader:
    """A pane whose every input chunk is logged as ``(time, text)``."""

    def __init__(self, server: PrivateTmux, tmp: Path, name: str = "reader") -> None:
        script = tmp / "reader.py"
        script.write_text(READER)
        self.log = tmp / f"{name}.log"
        self.pane = server.new_session(name, shlex.join([sys.executable, str(script), str(self.log)]))
        assert wait_for(lambda: Path(f"{self.log}.ready").exists()), "reader did not start"

    def events(self) -> list[tuple[float, str]]:
        if not self.log.exists():
            return []
        return [tuple(json.loads(line)) for line in self.log.read_text().splitlines()]

    def text(self) -> str:
        return "".join(chunk for _, chunk in self.events())

    def wait_until_submitted(self) -> str:
        assert wait_for(lambda: self.text().endswith("\n")), f"no Enter arrived: {self.text()!r}"
        time.sleep(0.05)  # let anything typed after the Enter show up too
        return self.text()


def spawn_in_pane(server: PrivateTmux, tmp: Path, name: str) -> tuple[str, int]:
    """A session whose pane runs python, which runs ``sleep`` named ``oxtail-mcp`` (a server's command
    line); returns (pane id, its pid)."""
    script = tmp / "spawner.py"
    script.write_text(SPAWNER)
    pidfile = tmp / f"{name}.pid"
    pane = server.new_session(name, shlex.join([sys.executable, str(script), str(pidfile)]))
    assert wait_for(pidfile.exists), "spawner did not start"
    return pane, int(pidfile.read_text())


def entry_for(pid: int, tmux_pane: str | None = "%999", start: float | None = None) -> RegistryEntry:
    return RegistryEntry(
        server_pid=pid,
        started_at=int(time.time()),
        client=ClientInfo("claude-code", "aaaaaaaa-1111-2222-3333-444444444444"),
        tmux_pane=tmux_pane,
        tmux_session="spoofed",
        process_start=process_start(pid) if start is None else start,
    )


class FixedPanes(Tmux):
    """A Tmux whose pane table is given (nothing is ever run)."""

    def __init__(self, panes: dict[int, str]) -> None:
        super().__init__(executable="/nonexistent/oxtail-test-tmux")
        self._panes = panes

    def pane_pids(self) -> dict[int, str]:
        return dict(self._panes)


def recording_tmux(tmp: Path) -> tuple[Tmux, Path]:
    """A Tmux whose executable only records its arguments, one line per call."""
    marker = tmp / "calls"
    script = tmp / "fake-tmux"
    script.write_text(f'#!/bin/sh\necho "$@" >> {shlex.quote(str(marker))}\n')
    script.chmod(0o755)
    return Tmux(executable=str(script)), marker


# Keystrokes -------------------------------------------------------------------
@pytest.mark.tmux
def test_wake_types_exactly_the_text_then_enter(server: PrivateTmux, tmp_path: Path) -> None:
    reader = Reader(server, tmp_path)
    waker = TmuxWaker(server.tmux)
    assert waker.send_text(reader.pane, WAKE_TEXT)
    assert waker.send_enter(reader.pane)
    assert reader.wait_until_submitted() == WAKE_TEXT + "\n"


@pytest.mark.tmux
@pytest.mark.parametrize(
    ("text", "typed"),
    [
        ("-dash first", "-dash first"),
        ("-t %0 kill-server", "-t %0 kill-server"),
        ("C-c Enter $(echo X) 'q' \"d\" ;", "C-c Enter $(echo X) 'q' \"d\" ;"),
        ("line1\nline2\r\nline3", "line1 line2  line3"),
        ("tab\tand\x1b[Aesc\x03", "tab and [Aesc "),
        ("ends with a separator;", "ends with a separator;"),
        ("escaped\\;", "escaped\\;"),
        (";", ";"),
    ],
)
def test_text_is_typed_literally_and_never_submits(
    server: PrivateTmux, tmp_path: Path, text: str, typed: str
) -> None:
    reader = Reader(server, tmp_path)
    waker = TmuxWaker(server.tmux)
    assert waker.send_text(reader.pane, text)
    time.sleep(0.1)
    assert "\n" not in reader.text()  # nothing was submitted by the text alone
    assert waker.send_enter(reader.pane)
    received = reader.wait_until_submitted()
    assert received == typed + "\n"
    assert received.count("\n") == 1


@pytest.mark.tmux
def test_text_and_enter_arrive_as_two_ordered_events_across_a_gap(
    server: PrivateTmux, tmp_path: Path
) -> None:
    reader = Reader(server, tmp_path)
    waker = TmuxWaker(server.tmux)
    assert waker.send_text(reader.pane, WAKE_TEXT)
    time.sleep(0.5)  # the core's Codex gap, simulated by the caller
    assert waker.send_enter(reader.pane)
    reader.wait_until_submitted()
    events = reader.events()
    enter_at, enter = events[-1]
    assert enter == "\n"
    typed = events[:-1]
    assert "".join(chunk for _, chunk in typed) == WAKE_TEXT
    last_text_at = max(at for at, _ in typed)
    assert 0.25 <= enter_at - last_text_at < 2.0  # separate reads, in order, across the gap


@pytest.mark.tmux
def test_sending_to_a_missing_pane_fails(server: PrivateTmux, tmp_path: Path) -> None:
    Reader(server, tmp_path)
    waker = TmuxWaker(server.tmux)
    assert not waker.send_text("%999", "x")
    assert not waker.send_enter("%999")


@pytest.mark.parametrize(
    "pane", ["%1; rm -rf /", "-t", "1", "%", "%1.2", "victim-session", "", " %1", "%1\n"]
)
def test_hostile_pane_ids_never_reach_tmux(tmp_path: Path, pane: str) -> None:
    tmux, calls = recording_tmux(tmp_path)
    waker = TmuxWaker(tmux)
    assert not waker.send_text(pane, "x")
    assert not waker.send_enter(pane)
    assert tmux.session_of(pane) is None
    assert not calls.exists()


def test_a_valid_pane_id_reaches_tmux_as_one_argument(tmp_path: Path) -> None:
    tmux, calls = recording_tmux(tmp_path)
    waker = TmuxWaker(tmux)
    assert waker.send_text("%12", "-x y")
    assert waker.send_enter("%12")
    assert calls.read_text().splitlines() == ["send-keys -t %12 -l -- -x y", "send-keys -t %12 Enter"]


def test_a_missing_tmux_fails_the_wake() -> None:
    waker = TmuxWaker(Tmux(executable="oxtail-no-such-tmux"))
    assert not waker.send_text("%1", "x")
    assert not waker.send_enter("%1")


# locate -----------------------------------------------------------------------
@pytest.mark.tmux
def test_locate_finds_the_hosting_pane_not_the_registered_one(server: PrivateTmux, tmp_path: Path) -> None:
    pane_a, pid_a = spawn_in_pane(server, tmp_path, "a")
    pane_b, pid_b = spawn_in_pane(server, tmp_path, "b")
    waker = TmuxWaker(server.tmux)
    assert pane_a != pane_b
    assert waker.locate(entry_for(pid_a, tmux_pane=pane_b)) == pane_a
    assert waker.locate(entry_for(pid_b, tmux_pane=pane_a)) == pane_b
    assert waker.locate(entry_for(pid_a, tmux_pane="%999")) == pane_a


@pytest.mark.tmux
def test_a_forged_entry_naming_a_panes_own_shell_is_never_typed_into(
    server: PrivateTmux, tmp_path: Path
) -> None:
    """Issue 15 item 10: the pane's process (here a shell-like python) is not a server below a client."""
    pane, _ = spawn_in_pane(server, tmp_path, "a")
    waker = TmuxWaker(server.tmux)
    assert waker.locate(entry_for(server.pane_pid(pane), tmux_pane=pane)) is None
    shell = server.new_session("shell", "sh")
    assert waker.locate(entry_for(server.pane_pid(shell), tmux_pane=shell)) is None


@pytest.mark.tmux
def test_a_forged_entry_naming_another_program_in_a_pane_is_never_typed_into(
    server: PrivateTmux, tmp_path: Path
) -> None:
    """Only an oxtail server's command line is a wake target: a plain ``sleep`` under a pane is not."""
    script = tmp_path / "plain.py"
    script.write_text(SPAWNER.replace('["oxtail-mcp", "1000"], executable="sleep"', '["sleep", "1000"]'))
    pidfile = tmp_path / "plain.pid"
    pane = server.new_session("plain", shlex.join([sys.executable, str(script), str(pidfile)]))
    assert wait_for(pidfile.exists)
    plain = int(pidfile.read_text())
    assert proctree.cmdline_of(plain) == ("sleep", "1000")
    assert TmuxWaker(server.tmux).locate(entry_for(plain, tmux_pane=pane)) is None
    assert TmuxWaker(server.tmux, is_server=lambda pid: True).locate(entry_for(plain, tmux_pane=pane)) == pane


def test_an_entry_without_a_start_time_is_never_located() -> None:
    pid = os.getpid()
    waker = TmuxWaker(FixedPanes({os.getppid(): "%3"}), is_server=lambda p: True)
    assert waker.locate(entry_for(pid)) == "%3"
    assert waker.locate(attrs.evolve(entry_for(pid), process_start=None)) is None


@pytest.mark.parametrize(
    ("argv", "ours"),
    [
        (("/usr/bin/python3", "/home/u/.local/bin/oxtail-mcp"), True),
        (("/venv/bin/oxtail-mcp", "serve"), True),
        (("python3", "-m", "oxtail_mcp"), True),
        (("python3", "-I", "-m", "oxtail_mcp", "serve"), True),
        (("bash",), False),
        (("sleep", "1000"), False),
        (("python3", "-c", "oxtail-mcp"), False),
        (("vim", "notes/oxtail-mcp.txt"), False),
        ((), False),
    ],
)
def test_the_server_check_reads_the_command_line(
    monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...], ours: bool
) -> None:
    monkeypatch.setattr(proctree, "cmdline_of", lambda pid: argv)
    assert proctree.is_oxtail_server(123) is ours


@pytest.mark.tmux
def test_locate_refuses_a_process_outside_every_pane(server: PrivateTmux, tmp_path: Path) -> None:
    pane, _ = spawn_in_pane(server, tmp_path, "a")
    waker = TmuxWaker(server.tmux)
    assert waker.locate(entry_for(os.getpid(), tmux_pane=pane)) is None


@pytest.mark.tmux
def test_locate_refuses_an_entry_without_a_pane(server: PrivateTmux, tmp_path: Path) -> None:
    _, pid = spawn_in_pane(server, tmp_path, "a")
    waker = TmuxWaker(server.tmux)
    assert waker.locate(entry_for(pid, tmux_pane=None)) is None
    assert waker.locate(entry_for(pid, tmux_pane="")) is None


@pytest.mark.tmux
def test_locate_refuses_a_dead_pid(server: PrivateTmux, tmp_path: Path) -> None:
    spawn_in_pane(server, tmp_path, "a")
    child = subprocess.Popen(["true"])
    start = process_start(child.pid)
    child.wait()
    assert start is not None
    assert TmuxWaker(server.tmux).locate(entry_for(child.pid, start=start)) is None


@pytest.mark.tmux
def test_locate_refuses_a_recycled_pid(server: PrivateTmux, tmp_path: Path) -> None:
    pane, pid = spawn_in_pane(server, tmp_path, "a")
    start = process_start(pid)
    assert start is not None
    waker = TmuxWaker(server.tmux)
    assert waker.locate(entry_for(pid, start=start)) == pane
    assert waker.locate(entry_for(pid, start=start - 5.0)) is None


@pytest.mark.tmux
def test_locate_follows_a_process_into_its_new_pane(server: PrivateTmux, tmp_path: Path) -> None:
    """R82: the target is recomputed on every call, so a killed pane is never reused from cache."""
    pane, pid = spawn_in_pane(server, tmp_path, "a")
    waker = TmuxWaker(server.tmux)
    assert waker.locate(entry_for(pid)) == pane
    server.raw("kill-pane", "-t", pane)
    assert wait_for(lambda: waker.locate(entry_for(os.getpid())) is None)
    assert wait_for(lambda: process_start(pid) is None)  # the pane's processes went with it


def test_locate_refuses_a_malformed_resolved_pane() -> None:
    pid, parent = os.getpid(), os.getppid()

    def waker(panes: dict[int, str]) -> TmuxWaker:
        return TmuxWaker(FixedPanes(panes), is_server=lambda p: True)

    assert waker({parent: "%3; evil"}).locate(entry_for(pid)) is None
    assert waker({parent: "%3"}).locate(entry_for(pid, tmux_pane="%999")) == "%3"
    assert waker({parent: "%3"}).locate(entry_for(pid, tmux_pane=None)) is None
    assert waker({}).locate(entry_for(pid)) is None


def test_locate_checks_liveness_with_the_registered_start() -> None:
    seen: list[tuple[int, float | None]] = []

    def is_alive(pid: int, start: float | None) -> bool:
        seen.append((pid, start))
        return False

    pid = os.getpid()
    waker = TmuxWaker(FixedPanes({os.getppid(): "%3"}), is_alive=is_alive, is_server=lambda p: True)
    assert waker.locate(entry_for(pid, start=12.5)) is None
    assert seen == [(pid, 12.5)]


# own binding --------------------------------------------------------------------
def test_a_well_formed_tmux_pane_env_is_trusted_without_running_tmux(tmp_path: Path) -> None:
    tmux, calls = recording_tmux(tmp_path)
    assert own_pane(tmux, {"TMUX_PANE": "%7"}) == "%7"
    assert not calls.exists()


@pytest.mark.tmux
def test_a_spoofed_tmux_pane_env_is_ignored(server: PrivateTmux, tmp_path: Path) -> None:
    pane, pid = spawn_in_pane(server, tmp_path, "work")
    assert own_pane(server.tmux, {"TMUX_PANE": "%1; tmux kill-server"}) is None  # we are in no pane
    assert own_pane(server.tmux, {"TMUX_PANE": "%1; tmux kill-server"}, pid=pid) == pane


@pytest.mark.tmux
def test_own_binding_recovers_pane_and_session_by_ancestry(server: PrivateTmux, tmp_path: Path) -> None:
    pane, pid = spawn_in_pane(server, tmp_path, "work")
    assert own_binding(server.tmux, {}, pid=pid) == TmuxBinding(pane, "work")
    assert own_binding(server.tmux, {"TMUX_PANE": pane}) == TmuxBinding(pane, "work")
    assert own_binding(server.tmux, {}) == TmuxBinding(None, None)
