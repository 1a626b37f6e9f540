"""Reading a pane back (``Tmux.capture``, ``TmuxWaker.capture``) against a real, private tmux server.

The capture is what the core judges "working right now" from (selfheal.md §5.2):
the visible screen as text, wrapped lines joined, no escape sequences, bounded;
a pane id that is not ``%<digits>`` never reaches tmux.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxtail_fs.tmux.client import CAPTURE_MAX_CHARS, PaneInfo, Tmux
from oxtail_fs.tmux.waker import TmuxWaker
from tests.support.tmux import PrivateTmux, private_tmux, wait_for

PRINTER = """\
import sys, time
sys.stdout.write(sys.argv[1].encode().decode("unicode_escape"))
sys.stdout.flush()
time.sleep(600)
"""


@pytest.fixture
def server() -> Iterator[PrivateTmux]:
    with private_tmux() as s:
        yield s


def printing_pane(server: PrivateTmux, tmp: Path, name: str, text: str) -> str:
    """A pane whose program prints ``text`` (Python escapes allowed) once, then waits."""
    script = tmp / "printer.py"
    script.write_text(PRINTER)
    return server.new_session(name, shlex.join([sys.executable, str(script), text]))


@pytest.mark.tmux
def test_a_capture_is_the_visible_screen_with_wrapped_lines_joined_and_no_escape_sequences(
    server: PrivateTmux, tmp_path: Path
) -> None:
    long = "w" * 450  # the pane is 200 columns wide: this wraps over three rows
    pane = printing_pane(server, tmp_path, "p", f"\\x1b[31mred\\x1b[0m line\\r\\n{long}\\r\\nlast")
    assert wait_for(lambda: "last" in (server.tmux.capture(pane) or ""))
    text = server.tmux.capture(pane)
    assert text is not None
    lines = text.split("\n")
    assert lines[:3] == ["red line", long, "last"]
    assert "\x1b" not in text
    assert TmuxWaker(server.tmux).capture(pane) == text


@pytest.mark.tmux
def test_a_pane_that_does_not_exist_reads_as_none(server: PrivateTmux, tmp_path: Path) -> None:
    printing_pane(server, tmp_path, "p", "hello")
    assert server.tmux.capture("%999") is None
    assert Tmux(executable="/nonexistent/oxtail-test-tmux").capture("%0") is None


def recording_tmux(tmp: Path, output: str = "") -> tuple[Tmux, Path]:
    """A Tmux whose executable records its arguments and prints ``output`` (a shell snippet)."""
    calls = tmp / "calls"
    script = tmp / "fake-tmux"
    script.write_text(f'#!/bin/sh\necho "$@" >> {shlex.quote(str(calls))}\n{output}\n')
    script.chmod(0o755)
    return Tmux(executable=str(script)), calls


@pytest.mark.parametrize(
    "bad", ["", "%", "1", "%1 ", "%1;kill-server", "-t", "%-1", "%1\n", "=%1", "main:0.0"]
)
def test_a_target_that_is_not_a_pane_id_never_reaches_tmux(tmp_path: Path, bad: str) -> None:
    tmux, calls = recording_tmux(tmp_path)
    assert tmux.capture(bad) is None and TmuxWaker(tmux).capture(bad) is None
    assert not calls.exists()


def test_a_huge_screen_keeps_only_its_last_characters(tmp_path: Path) -> None:
    tmux, calls = recording_tmux(tmp_path, "head -c 200000 /dev/zero | tr '\\0' x; printf 'END'")
    text = tmux.capture("%3")
    assert text is not None and len(text) == CAPTURE_MAX_CHARS and text.endswith("xEND")
    assert calls.read_text() == "capture-pane -p -J -t %3\n"


@pytest.mark.tmux
def test_pane_presence_names_each_pane_with_its_window_and_last_output_time(
    server: PrivateTmux, tmp_path: Path
) -> None:
    before = int(time.time())
    pane = printing_pane(server, tmp_path, "p", "hello")
    server.raw("rename-window", "-t", pane, "a name | with a bar")
    second = server.raw("new-window", "-d", "-t", "p", "-P", "-F", "#{pane_id}", "sleep 600").strip()
    presence = server.tmux.pane_presence()
    assert presence[pane] == PaneInfo("a name | with a bar", presence[pane].activity_at, 0)
    at = presence[pane].activity_at
    assert at is not None and before - 1 <= at <= int(time.time()) + 1
    assert presence[second].window_index == 1
    assert Tmux(executable="/nonexistent/oxtail-test-tmux").pane_presence() == {}


def test_pane_presence_skips_lines_that_do_not_name_a_pane_and_keeps_a_tab_in_a_name(tmp_path: Path) -> None:
    rows = "printf '%s\\n' '%1\t\t1700000000\t2\tok\tname' 'x\t1\t1\t1\tforged' '%2\tnope\t\t\t'"
    tmux, _ = recording_tmux(tmp_path, rows)
    expected = {"%1": PaneInfo("ok\tname", 1_700_000_000, 2), "%2": PaneInfo(None, None, None)}
    assert tmux.pane_presence() == expected
