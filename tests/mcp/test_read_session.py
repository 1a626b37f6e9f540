"""read_session: target resolution, every decision outcome, pane mode and the 14-key response (§8, §6.2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from oxtail_core.trace import ListTracer
from oxtail_core.wire import dumps
from oxtail_mcp.transcripts.read_session import (
    PaneCaptureError,
    TmuxPaneReader,
    cap_pane_text,
    missing_transcript_error,
    read_session,
)
from tests.support import transcripts as fx

ROOT = "/home/dev/proj"
OUT = "/somewhere/else"
KEYS = [
    "schema_version",
    "session",
    "mode",
    "client_type",
    "messages",
    "pane_text",
    "truncated",
    "count_truncated",
    "bytes_truncated",
    "total_messages",
    "total_messages_exact",
    "resolved_session_id",
    "session_id_source",
    "transcript_mtime",
    "transcript_age_seconds",
    "project_root",
    "inferred",
    "error",
]
ID_A = "aaaaaaaa-1111-2222-3333-444444444444"
ID_B = "bbbbbbbb-1111-2222-3333-444444444444"
CODEX_PEER = "019e7d25-bdb4-7f90-a422-795f18cbd222"


def call(name: str, entries: list[Any], panes: fx.FakePanes | None = None, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("resolved_root", ROOT)
    kwargs.setdefault("inferred", True)
    result = read_session(
        name,
        entries=entries,
        in_scope=fx.under(kwargs["resolved_root"]),
        panes=panes or fx.FakePanes(),
        **kwargs,
    )
    assert list(result) == KEYS
    assert "\n" not in dumps(result)
    return result


def none_response(session: str, error: str, client_type: str | None = None, **over: Any) -> dict[str, Any]:
    base = {
        "schema_version": 1,
        "session": session,
        "mode": "none",
        "client_type": client_type,
        "messages": None,
        "pane_text": None,
        "truncated": False,
        "count_truncated": False,
        "bytes_truncated": False,
        "total_messages": None,
        "total_messages_exact": False,
        "resolved_session_id": None,
        "session_id_source": None,
        "transcript_mtime": None,
        "transcript_age_seconds": None,
        "project_root": ROOT,
        "inferred": True,
        "error": error,
    }
    return base | over


@pytest.fixture
def codex_rollout(tmp_path: Path) -> str:
    turns = [
        fx.codex_message("user" if i % 2 == 0 else "assistant", f"m{i}-" + "z" * 20, timestamp=fx.ts(i))
        for i in range(8)
    ]
    path = fx.codex_day_dir(tmp_path, "2026/05/08") / fx.rollout_name(CODEX_PEER)
    return str(fx.write_jsonl(path, [fx.codex_meta(CODEX_PEER, ROOT), *turns]))


# --------------------------------------------------------------------------- scope and resolution


def test_registered_peer_outside_project(tmp_path: Path) -> None:
    peer = fx.entry(10, ID_A, tmux="fake-peer", cwd=OUT)
    result = call("fake-peer", [peer], resolved_root="/tmp/h", inferred=False)
    assert result == none_response(
        "fake-peer", "session 'fake-peer' not in project scope", project_root="/tmp/h", inferred=False
    )


def test_registry_decides_scope_without_asking_tmux() -> None:
    panes = fx.FakePanes(sessions={"alpha": ("alpha", ROOT)})
    result = call("alpha", [fx.entry(10, ID_A, tmux="alpha", cwd=OUT)], panes)
    assert result["error"] == "session 'alpha' not in project scope"
    assert panes.calls == []


def test_in_scope_peer_without_transcript_in_transcript_mode() -> None:
    peer = fx.entry(10, ID_A, tmux="alpha", cwd=ROOT + "/sub")
    result = call("alpha", [peer], mode="transcript")
    assert result == none_response(
        "alpha",
        "no registry entry with transcript path; agent may not be oxtail-aware",
        "claude-code",
        resolved_session_id=ID_A,
        session_id_source="self-register",
    )


def test_codex_transcript_only_peer_by_uuid(codex_rollout: str) -> None:
    peer = fx.entry(11, CODEX_PEER, cwd=ROOT, client_type="codex", transcript=codex_rollout)
    panes = fx.FakePanes()
    result = call(CODEX_PEER, [peer], panes)
    assert (result["mode"], result["client_type"], result["error"], result["session"]) == (
        "transcript",
        "codex",
        None,
        CODEX_PEER,
    )
    assert {"role": "user", "text": "m6-" + "z" * 20, "timestamp": None} in result["messages"]
    assert panes.calls == []
    pane = call(CODEX_PEER, [peer], panes, mode="pane")
    assert pane == none_response(
        CODEX_PEER,
        f"session '{CODEX_PEER}' has no tmux pane to capture (transcript-only peer)",
        "codex",
        resolved_session_id=CODEX_PEER,
        session_id_source="self-register",
    )


def test_success_response_matches_spec_example(codex_rollout: str) -> None:
    peer = fx.entry(11, CODEX_PEER, cwd="/tmp/h", client_type="codex", transcript=codex_rollout)
    written_ns = 1_778_246_887_123_456_789  # 2026-05-08T13:28:07.123456789Z
    os.utime(codex_rollout, ns=(written_ns, written_ns))
    result = call(
        CODEX_PEER,
        [peer],
        resolved_root="/tmp/h",
        inferred=False,
        limit=1,
        include_timestamps=True,
        now=lambda: written_ns / 1e9 + 90.9,
    )
    assert dumps(result) == (
        '{"schema_version":1,"session":"019e7d25-bdb4-7f90-a422-795f18cbd222","mode":"transcript",'
        '"client_type":"codex","messages":[{"role":"assistant","text":"m7-' + "z" * 20 + '",'
        '"timestamp":"2026-05-08T13:28:07.000Z"}],"pane_text":null,"truncated":true,"count_truncated":true,'
        '"bytes_truncated":false,"total_messages":8,"total_messages_exact":true,'
        '"resolved_session_id":"019e7d25-bdb4-7f90-a422-795f18cbd222","session_id_source":"self-register",'
        '"transcript_mtime":"2026-05-08T13:28:07.123Z","transcript_age_seconds":90,"project_root":"/tmp/h",'
        '"inferred":false,"error":null}'
    )


@pytest.mark.parametrize("mode", ["auto", "transcript", "pane"])
def test_neither_transcript_nor_tmux(mode: str) -> None:
    peer = fx.entry(12, ID_A, cwd=ROOT, client_type="codex")
    result = call(ID_A, [peer], mode=mode)
    assert result == none_response(
        ID_A,
        f"session '{ID_A}' is in scope but has no transcript and no tmux session to read",
        "codex",
        resolved_session_id=ID_A,
        session_id_source="self-register",
    )


def test_shared_tmux_session_is_ambiguous(tmp_path: Path) -> None:
    a = fx.entry(20, ID_A, tmux="shared-tmux", transcript=str(fx.write_jsonl(tmp_path / "a.jsonl", [])))
    b_path = fx.write_jsonl(tmp_path / "b.jsonl", [])
    b = fx.entry(21, ID_B, tmux="shared-tmux", client_type="codex", transcript=str(b_path))
    unclaimed = fx.entry(22, None, tmux="shared-tmux")
    result = call("shared-tmux", [a, unclaimed, b])
    assert result == none_response(
        "shared-tmux",
        "ambiguous-target: multiple agents share tmux session 'shared-tmux'; pass a client_session_id (UUID) "
        f"instead. candidates: {ID_A}, {ID_B}",
    )
    by_uuid = call(ID_B, [a, unclaimed, b])
    assert (by_uuid["mode"], by_uuid["session"], by_uuid["client_type"], by_uuid["error"]) == (
        "transcript",
        "shared-tmux",
        "codex",
        None,
    )
    assert by_uuid["messages"] == [] and by_uuid["total_messages"] == 0 and by_uuid["total_messages_exact"]


def test_shared_tmux_session_all_unclaimed() -> None:
    entries = [fx.entry(20, None, tmux="shared-tmux"), fx.entry(21, "", tmux="shared-tmux")]
    assert call("shared-tmux", entries)["error"] == (
        "ambiguous-target: multiple agents share tmux session 'shared-tmux'; all agents sharing it are "
        "unclaimed — have them run claim_session so they're addressable by UUID"
    )


def test_unknown_uuid_never_falls_through_to_tmux() -> None:
    panes = fx.FakePanes(sessions={ID_A: (ID_A, ROOT)})
    result = call(ID_A, [fx.entry(30, ID_B, tmux="x")], panes)
    assert result == none_response(
        ID_A,
        f"unknown-or-unclaimed-session: '{ID_A}' is not a currently claimed session in this project. "
        "If it is a peer that restarted its MCP server, it must re-run claim_session; "
        "if it just rotated, retry shortly.",
    )
    assert panes.calls == []


def test_uuid_lookup_is_global_then_scoped() -> None:
    result = call(ID_A, [fx.entry(30, ID_A, tmux="far", cwd=OUT)])
    assert result["error"] == f"session '{ID_A}' not in project scope"


def test_uppercase_uuid_matches_case_insensitively(tmp_path: Path) -> None:
    path = fx.write_jsonl(tmp_path / "t.jsonl", [fx.claude_text("user", "hello")])
    peer = fx.entry(31, ID_A, cwd=ROOT, transcript=str(path))
    result = call(ID_A.upper(), [peer])
    assert (result["mode"], result["session"], result["messages"]) == (
        "transcript",
        ID_A.upper(),
        [{"role": "user", "text": "hello", "timestamp": None}],
    )


def test_a_missing_transcript_is_an_error_not_an_empty_success_and_no_pane_fallback(tmp_path: Path) -> None:
    panes = fx.FakePanes(captures={"alpha": "pane text"})
    missing = str(tmp_path / "never-written.jsonl")
    peer = fx.entry(32, ID_A, tmux="alpha", transcript=missing)
    for mode in ("auto", "transcript"):
        result = call("alpha", [peer], panes, mode=mode)
        assert result == none_response(
            "alpha",
            missing_transcript_error(missing),
            "claude-code",
            resolved_session_id=ID_A,
            session_id_source="self-register",
        )  # provenance, and null freshness: the file is gone
        assert missing in result["error"] and result["error"].startswith("transcript-not-found: ")
    assert panes.calls == []


def test_transcript_budgets_pass_through(tmp_path: Path) -> None:
    lines = [fx.claude_text("user", f"turn {i}") for i in range(10)]
    peer = fx.entry(33, ID_A, tmux="alpha", transcript=str(fx.write_jsonl(tmp_path / "t.jsonl", lines)))
    result = call("alpha", [peer], tail_scan=True, limit=2)
    assert [m["text"] for m in result["messages"]] == ["turn 8", "turn 9"]
    assert (result["truncated"], result["count_truncated"], result["total_messages"]) == (True, True, None)
    assert result["total_messages_exact"] is False


def test_malformed_transcript_lines_are_traced(tmp_path: Path) -> None:
    path = fx.write_jsonl(tmp_path / "t.jsonl", ["{oops", fx.claude_text("user", "ok"), b"\xff"])
    tracer = ListTracer()
    peer = fx.entry(34, ID_A, tmux="alpha", transcript=str(path))
    result = read_session(
        "alpha",
        entries=[peer],
        resolved_root=ROOT,
        inferred=True,
        in_scope=fx.under(ROOT),
        panes=fx.FakePanes(),
        tracer=tracer,
    )
    assert [m["text"] for m in result["messages"]] == ["ok"]
    assert tracer.named("transcript_lines_skipped") == [{"path": str(path), "count": 2}]


def test_an_unreadable_transcript_is_a_structured_error_with_provenance_and_freshness(tmp_path: Path) -> None:
    unreadable = tmp_path / "rotated"
    unreadable.mkdir()
    os.utime(unreadable, ns=(1_778_246_887_000_000_000, 1_778_246_887_000_000_000))
    peer = fx.entry(35, ID_A, tmux="alpha", transcript=str(unreadable))
    result = call("alpha", [peer], now=lambda: 1_778_246_887 - 5.0)
    assert result == none_response(
        "alpha",
        f"transcript read failed (rotated or unreadable?): [Errno 21] Is a directory: '{unreadable}'",
        "claude-code",
        resolved_session_id=ID_A,
        session_id_source="self-register",
        transcript_mtime="2026-05-08T13:28:07.000Z",
        transcript_age_seconds=0,  # a clock behind the file never reports a negative age
    )


# --------------------------------------------------------------------------- pane mode


def test_auto_without_transcript_captures_pane() -> None:
    panes = fx.FakePanes(captures={"alpha": "$ make\nok\n"})
    result = call("alpha", [fx.entry(40, ID_A, tmux="alpha")], panes)
    assert result == none_response(
        "alpha",
        None,  # type: ignore[arg-type]
        "claude-code",
        mode="pane",
        pane_text="$ make\nok\n",
        resolved_session_id=ID_A,
        session_id_source="self-register",
    )  # provenance in pane mode too; no transcript, so no freshness
    assert panes.calls == [("capture", "alpha", "240")]


@pytest.mark.parametrize(
    ("lines", "rows"), [(5, "20"), (None, "240"), (2000.9, "2000"), (10**9, "2000"), (-3, "20")]
)
def test_pane_lines_clamped(lines: float | None, rows: str) -> None:
    panes = fx.FakePanes(captures={"alpha": "x"})
    call("alpha", [fx.entry(40, ID_A, tmux="alpha")], panes, mode="pane", pane_lines=lines)
    assert panes.calls == [("capture", "alpha", rows)]


def test_tmux_only_target_is_canonicalized() -> None:
    panes = fx.FakePanes(sessions={"beta:0.0": ("beta", ROOT + "/x")}, captures={"beta": "hello"})
    result = call("beta:0.0", [], panes, pane_lines=5, pane_max_chars=1)
    assert (result["session"], result["mode"], result["client_type"], result["pane_text"]) == (
        "beta",
        "pane",
        None,
        "hello",
    )
    assert panes.calls == [("resolve", "beta:0.0"), ("capture", "beta", "20")]


def test_tmux_only_target_in_scope_through_a_pane_path() -> None:
    panes = fx.FakePanes(
        sessions={"gamma": ("gamma", OUT)},
        pane_paths={"gamma": [OUT, ROOT + "/sub"]},
        captures={"gamma": "p"},
    )
    assert call("gamma", [], panes)["mode"] == "pane"
    panes.paths = {"gamma": [OUT]}
    assert call("gamma", [], panes)["error"] == "session 'gamma' not in project scope"


def test_tmux_only_target_unknown_or_registry_entry_for_canonical_ignored(tmp_path: Path) -> None:
    assert call("nope", [])["error"] == "session 'nope' not in project scope"
    # An entry registered under the canonical name is not attached when the target was another spelling.
    panes = fx.FakePanes(sessions={"delta:1": ("delta", ROOT)}, captures={"delta": "pane"})
    peer = fx.entry(41, ID_A, tmux="delta", transcript=str(tmp_path / "t.jsonl"))
    result = call("delta:1", [peer], panes)
    assert (result["mode"], result["client_type"], result["pane_text"]) == ("pane", None, "pane")


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (PaneCaptureError("  can't find session: alpha \n"), "can't find session: alpha"),
        (PaneCaptureError(""), "pane capture failed"),
        (OSError("boom"), "boom"),
    ],
)
def test_pane_capture_failure(failure: Exception, error: str) -> None:
    panes = fx.FakePanes(captures={"alpha": failure})
    result = call("alpha", [fx.entry(42, None, tmux="alpha", client_type="codex")], panes)
    assert result == none_response("alpha", error, "codex")


def test_pane_cap_keeps_last_code_points() -> None:
    text = "head\n" + "🦊" * 600
    capped, cut = cap_pane_text(text, 500)
    assert cut and capped == "…[pane truncated to last 500 chars]\n" + "🦊" * 500
    assert cap_pane_text("🦊" * 500, 500) == ("🦊" * 500, False)


def test_pane_cap_through_read_session() -> None:
    panes = fx.FakePanes(captures={"alpha": "y" * 800})
    result = call("alpha", [fx.entry(43, ID_A, tmux="alpha")], panes, pane_max_chars=1)
    assert result["pane_text"] == "…[pane truncated to last 500 chars]\n" + "y" * 500
    assert result["truncated"] is True
    assert (result["count_truncated"], result["bytes_truncated"], result["total_messages_exact"]) == (
        False,
        False,
        False,
    )


def test_real_scope_predicate(tmp_path: Path) -> None:
    from oxtail_fs.host.project import in_scope

    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "nested" / ".git").mkdir(parents=True)
    inside = fx.entry(50, ID_A, tmux="inside", cwd=str(root / "src"))
    nested = fx.entry(51, ID_B, tmux="nested", cwd=str(root / "nested"))
    kwargs: dict[str, Any] = {
        "entries": [inside, nested],
        "resolved_root": str(root),
        "inferred": False,
        "in_scope": in_scope,
        "panes": fx.FakePanes(captures={"inside": "ok"}),
    }
    assert read_session("inside", **kwargs)["pane_text"] == "ok"
    assert read_session("nested", **kwargs)["error"] == "session 'nested' not in project scope"


# --------------------------------------------------------------------------- tmux adapter


class FakeRunner:
    def __init__(self, result: Any) -> None:
        self.result = result
        self.argv: list[tuple[str, ...]] = []

    def run(self, *args: str) -> Any:
        self.argv.append(args)
        return self.result


def result(ok: bool, stdout: str = "", stderr: str = "", failure: str | None = None) -> Any:
    from oxtail_fs.tmux.client import TmuxResult

    return TmuxResult(0 if ok else 1, stdout, stderr, failure)


def test_adapter_resolve() -> None:
    runner = FakeRunner(result(True, "beta|/home/dev/proj\n"))
    assert TmuxPaneReader(runner).resolve("beta:0.0") == ("beta", "/home/dev/proj")
    assert runner.argv == [("display-message", "-p", "-t", "beta:0.0", "#{session_name}|#{session_path}")]
    assert TmuxPaneReader(FakeRunner(result(True, "|\n"))).resolve("x") is None
    assert TmuxPaneReader(FakeRunner(result(False, stderr="no server"))).resolve("x") is None


def test_adapter_pane_paths_and_capture() -> None:
    runner = FakeRunner(result(True, "/a\n\n/b\n"))
    reader = TmuxPaneReader(runner)
    assert reader.pane_paths("beta") == ["/a", "/b"]
    assert reader.capture("beta", 20) == "/a\n\n/b\n"
    assert runner.argv == [
        ("list-panes", "-t", "beta", "-F", "#{pane_current_path}"),
        ("capture-pane", "-p", "-J", "-t", "beta", "-S", "-20", "-E", "-"),
    ]
    with pytest.raises(PaneCaptureError, match=r"^can't find pane$"):
        TmuxPaneReader(FakeRunner(result(False, stderr=" can't find pane\n"))).capture("x", 20)
    with pytest.raises(PaneCaptureError, match=r"^tmux not found$"):
        TmuxPaneReader(FakeRunner(result(False, failure="tmux not found"))).capture("x", 20)


@pytest.fixture
def tmux_server(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux not installed")
    from oxtail_fs.tmux.client import Tmux

    tmux = Tmux(socket_name=f"oxtail-rs-{uuid.uuid4().hex[:8]}")
    workdir = tmp_path / "proj"
    workdir.mkdir()
    started = tmux.run("new-session", "-d", "-s", "beta", "-c", str(workdir), "-x", "80", "-y", "24")
    assert started.ok, started.stderr
    try:
        yield tmux, workdir
    finally:
        subprocess.run(["tmux", "-L", str(tmux.socket_name), "kill-server"], capture_output=True, check=False)


@pytest.mark.tmux
def test_real_tmux_pane_read(tmux_server: tuple[Any, Path]) -> None:
    from oxtail_fs.host.project import in_scope, realpath_or_self

    tmux, workdir = tmux_server
    root = realpath_or_self(str(workdir))
    kwargs: dict[str, Any] = {
        "entries": [],
        "resolved_root": root,
        "inferred": False,
        "in_scope": in_scope,
        "panes": TmuxPaneReader(tmux),
    }
    got = read_session("beta:0.0", pane_lines=5, **kwargs)
    assert (got["session"], got["mode"], got["error"]) == ("beta", "pane", None)
    assert isinstance(got["pane_text"], str)
    missing = read_session("no-such-session", **kwargs)
    assert missing["error"] == "session 'no-such-session' not in project scope"


def test_hostile_tmux_targets_never_reach_tmux() -> None:
    from oxtail_mcp.transcripts.read_session import TmuxPaneReader

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, ...]] = []

        def run(self, *args: str) -> object:
            self.calls.append(args)
            raise AssertionError("tmux must not be run for a hostile target")

    recorder = Recorder()
    reader = TmuxPaneReader(recorder)
    for hostile in ("-t", "-L", "a\nb", "x" * 300, "", "a\x00b"):
        assert reader.resolve(hostile) is None
    assert recorder.calls == []


# --------------------------------------------------------------------------- peers on other machines


def test_a_peer_on_another_machine_is_an_error_that_says_so_and_nothing_local_is_read(tmp_path: Path) -> None:
    """Its transcript path and tmux session name are that machine's: here they may name something
    else (a local session called the same, a file at the same path), so neither is opened."""
    local = tmp_path / "t.jsonl"
    local.write_text("")
    peer = attrs.evolve(fx.entry(10, ID_A, tmux="alpha", transcript=str(local)), host_id="h2")
    panes = fx.FakePanes(sessions={"alpha": ("alpha", ROOT)})
    for name in (ID_A, "alpha"):
        result = call(name, [peer], panes, here="h1")
        assert result == none_response(
            name,
            f"session '{name}' runs on another machine (host h2): read_session reads this machine's"
            " transcripts and tmux panes only",
            client_type="claude-code",
        )
    assert panes.calls == []


def test_a_peer_on_this_machine_of_a_shared_store_reads_as_on_one_machine(codex_rollout: str) -> None:
    peer = attrs.evolve(fx.entry(10, CODEX_PEER, client_type="codex", transcript=codex_rollout), host_id="h1")
    assert call(CODEX_PEER, [peer], here="h1")["error"] is None
