"""Sticky claims: record format, ancestry, GC and recovery ranking (discovery §7.6)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from oxtail_core.convert import to_wire
from oxtail_core.memory import MemoryStore
from oxtail_core.model import Ancestor, ClaimRecord, ClientInfo, claim_key
from oxtail_core.trace import ListTracer
from oxtail_fs.store.fs_store import FsStore
from oxtail_mcp.identity import sticky as s

NOW_MS = 1_795_609_000_000
CWD = "/home/dev/proj"
ID_A = "aaaaaaaa-1111-2222-3333-444444444444"
ID_B = "bbbbbbbb-1111-2222-3333-444444444444"

HOST = Ancestor(100, "Wed Nov 25 10:00:00 2026")
HOST2 = Ancestor(200, "Wed Nov 25 10:05:00 2026")
LAUNCHER_A = Ancestor(300, "Wed Nov 25 11:00:00 2026")
LAUNCHER_B = Ancestor(301, "Wed Nov 25 11:30:00 2026")
SHELL = Ancestor(50, "Wed Nov 25 09:00:00 2026")


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "oxtail"


def transcript(tmp_path: Path, name: str = "t.jsonl") -> str:
    path = tmp_path / "transcripts" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}\n")
    return str(path)


def record(
    session_id: str,
    ancestors: list[Ancestor],
    transcript_path: str | None,
    *,
    claimed_at: int = NOW_MS // 1000 - 60,
    client_type: str = "codex",
    cwd: str = CWD,
    server_pid: int = 4242,
) -> ClaimRecord:
    return ClaimRecord(
        client_type, cwd, tuple(ancestors), session_id, transcript_path, claimed_at, server_pid
    )


def put(state: Path, rec: ClaimRecord) -> None:
    assert s.write_claim(FsStore(state), rec, NOW_MS)


# --------------------------------------------------------------------------- key and file format


def test_claim_key_is_sha256_prefix() -> None:
    expected = hashlib.sha256(f"codex {CWD} {ID_A}".encode()).hexdigest()[:32]
    assert claim_key("codex", CWD, ID_A) == expected
    assert record(ID_A, [], None).key == expected


def test_written_record_format_and_modes(state: Path, tmp_path: Path) -> None:
    rec = record(ID_A, [LAUNCHER_A, HOST], transcript(tmp_path), cwd="/home/dev/prøj 漢")
    put(state, rec)
    path = state / "claims" / f"{rec.key}.json"
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == to_wire(rec)
    assert list(json.loads(text)) == [
        "schema_version",
        "client_type",
        "cwd",
        "ancestors",
        "session_id",
        "transcript_path",
        "claimed_at",
        "server_pid",
    ]
    assert text.startswith(
        '{\n  "schema_version": 1,\n  "client_type": "codex",\n  "cwd": "/home/dev/prøj 漢",'
    )
    assert '"ancestors": [\n    {\n      "pid": 300,' in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "claims").stat().st_mode) == 0o700
    assert sorted(p.name for p in (state / "claims").iterdir()) == [path.name]


def test_write_errors_are_swallowed(tmp_path: Path) -> None:
    store = FsStore(tmp_path / "oxtail")
    blocker = tmp_path / "oxtail" / "claims"
    blocker.rmdir()
    blocker.write_text("x")
    assert s.write_claim(store, record(ID_A, [HOST], transcript(tmp_path)), NOW_MS) is False


def test_reclaim_same_session_overwrites_one_record(state: Path, tmp_path: Path) -> None:
    path = transcript(tmp_path)
    put(state, record(ID_A, [LAUNCHER_A, HOST], path, server_pid=1111))
    put(state, record(ID_A, [LAUNCHER_A, HOST], path, server_pid=2222, claimed_at=NOW_MS // 1000))
    assert len(list((state / "claims").glob("*.json"))) == 1
    found = s.recover(FsStore(state), "codex", CWD, [LAUNCHER_B, HOST])
    assert found is not None and found.server_pid == 2222


# --------------------------------------------------------------------------- ancestry


PS_OUTPUT = """\
    1     0 Wed Nov 25 09:00:00 2026
   50     1 Wed Nov 25 09:00:00 2026
  100    50 Wed Nov 25 10:00:00 2026
  300   100 Wed Nov  5 11:00:00 2026
  400   300 Wed Nov 25 12:00:00 2026
garbage line
  12x  1 Wed Nov 25 12:00:00 2026
  500
"""


def test_parse_ps_collapses_spaces_and_skips_junk() -> None:
    table = s.parse_ps(PS_OUTPUT)
    assert table[300] == (100, "Wed Nov 5 11:00:00 2026")
    assert table[1] == (0, "Wed Nov 25 09:00:00 2026")
    assert sorted(table) == [1, 50, 100, 300, 400]


def test_ancestor_chain_walks_from_parent_to_below_init() -> None:
    chain = s.ancestor_chain(300, s.parse_ps(PS_OUTPUT))
    assert chain == [
        Ancestor(300, "Wed Nov 5 11:00:00 2026"),
        Ancestor(100, "Wed Nov 25 10:00:00 2026"),
        Ancestor(50, "Wed Nov 25 09:00:00 2026"),
    ]


def test_ancestor_chain_stops_at_missing_pid_and_caps_at_eight() -> None:
    assert s.ancestor_chain(999, s.parse_ps(PS_OUTPUT)) == [Ancestor(999, "")]
    assert s.ancestor_chain(999, {}) == [Ancestor(999, "")]
    assert s.ancestor_chain(1, s.parse_ps(PS_OUTPUT)) == []
    deep = {pid: (pid - 1, f"sig{pid}") for pid in range(2, 40)}
    chain = s.ancestor_chain(39, deep)
    assert [a.pid for a in chain] == list(range(39, 31, -1))


def test_ps_snapshot_uses_argv_without_shell() -> None:
    seen: dict[str, Any] = {}

    def fake_run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen["argv"], seen["kwargs"] = argv, kwargs
        return subprocess.CompletedProcess(argv, 0, PS_OUTPUT, "")

    assert s.ps_snapshot(fake_run)[400] == (300, "Wed Nov 25 12:00:00 2026")
    assert seen["argv"] == ["ps", "-A", "-o", "pid=,ppid=,lstart="]
    assert "shell" not in seen["kwargs"]


@pytest.mark.parametrize(
    "outcome",
    [
        FileNotFoundError("ps"),
        subprocess.TimeoutExpired("ps", 5),
        subprocess.CompletedProcess([], 1, "x", ""),
    ],
)
def test_ps_snapshot_unavailable_is_empty(outcome: object) -> None:
    def fake_run(argv: list[str], **kwargs: Any) -> object:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert s.ps_snapshot(fake_run) == {}  # type: ignore[arg-type]


def test_current_ancestors_of_this_process() -> None:
    chain = s.current_ancestors(os.getppid())
    assert chain and chain[0].pid == os.getppid()
    assert all(a.sig for a in chain)  # every ancestor is in a live ps snapshot


# --------------------------------------------------------------------------- GC


def test_gc_on_write_removes_gone_and_expired(state: Path, tmp_path: Path) -> None:
    deleted = transcript(tmp_path, "deleted.jsonl")
    put(state, record(ID_A, [HOST], deleted))
    put(
        state,
        record(ID_B, [HOST], transcript(tmp_path, "old.jsonl"), claimed_at=NOW_MS // 1000 - 15 * 86_400),
    )
    os.unlink(deleted)
    (state / "claims" / "junk.json").write_text("{not json")
    (state / "claims" / "null-path.json").write_text(json.dumps({"transcript_path": None}))
    keep = record("cccccccc-1111-2222-3333-444444444444", [HOST], transcript(tmp_path, "fresh.jsonl"))
    s.write_claim(FsStore(state), keep, NOW_MS)
    names = sorted(p.name for p in (state / "claims").iterdir())
    assert names == sorted([f"{keep.key}.json", "junk.json"])


def test_gc_keeps_a_record_exactly_fourteen_days_old(state: Path, tmp_path: Path) -> None:
    rec = record(ID_A, [HOST], transcript(tmp_path), claimed_at=(NOW_MS - s.CLAIM_TTL_MS) // 1000)
    put(state, rec)
    s.gc_claims(FsStore(state), NOW_MS)
    assert (state / "claims" / f"{rec.key}.json").exists()
    s.gc_claims(FsStore(state), NOW_MS + 1000)
    assert not (state / "claims" / f"{rec.key}.json").exists()


# --------------------------------------------------------------------------- recovery


def test_recover_through_a_different_launcher(state: Path, tmp_path: Path) -> None:
    put(state, record(ID_A, [LAUNCHER_A, HOST], transcript(tmp_path)))
    found = s.recover(FsStore(state), "codex", CWD, [LAUNCHER_B, HOST])
    assert found is not None and found.session_id == ID_A


def test_recover_needs_type_cwd_and_shared_signed_ancestor(state: Path, tmp_path: Path) -> None:
    put(state, record(ID_A, [LAUNCHER_A, HOST], transcript(tmp_path)))
    assert s.recover(FsStore(state), "codex", CWD, [LAUNCHER_B, HOST2]) is None
    assert (
        s.recover(FsStore(state), "codex", CWD, [LAUNCHER_B, Ancestor(HOST.pid, "Thu Nov 26 10:00:00 2026")])
        is None
    )
    assert s.recover(FsStore(state), "codex", CWD, [Ancestor(HOST.pid, "")]) is None
    assert s.recover(FsStore(state), "claude-code", CWD, [LAUNCHER_B, HOST]) is None
    assert s.recover(FsStore(state), "codex", CWD + "/sub", [LAUNCHER_B, HOST]) is None


def test_empty_signatures_never_match(state: Path, tmp_path: Path) -> None:
    put(state, record(ID_A, [Ancestor(HOST.pid, "")], transcript(tmp_path)))
    assert s.recover(FsStore(state), "codex", CWD, [Ancestor(HOST.pid, "")]) is None


def test_recover_aborts_when_transcript_missing(state: Path, tmp_path: Path) -> None:
    path = transcript(tmp_path)
    put(state, record(ID_A, [HOST], path))
    os.unlink(path)
    assert s.recover(FsStore(state), "codex", CWD, [HOST]) is None


def test_recover_without_records(state: Path) -> None:
    assert s.recover(FsStore(state), "codex", CWD, [HOST]) is None


def test_true_tie_abstains(state: Path, tmp_path: Path) -> None:
    put(state, record(ID_A, [LAUNCHER_A, HOST], transcript(tmp_path, "a.jsonl"), claimed_at=1_795_600_000))
    put(state, record(ID_B, [LAUNCHER_B, HOST], transcript(tmp_path, "b.jsonl"), claimed_at=1_795_600_000))
    assert s.recover(FsStore(state), "codex", CWD, [Ancestor(302, "x"), HOST]) is None


def test_stronger_overlap_beats_newer_claim(state: Path, tmp_path: Path) -> None:
    put(state, record(ID_A, [LAUNCHER_A, HOST], transcript(tmp_path, "a.jsonl"), claimed_at=1_795_600_000))
    put(state, record(ID_B, [LAUNCHER_B, HOST], transcript(tmp_path, "b.jsonl"), claimed_at=1_795_608_000))
    found = s.recover(FsStore(state), "codex", CWD, [LAUNCHER_A, HOST])
    assert found is not None and found.session_id == ID_A


def test_nearer_shared_ancestor_in_record_chain_wins(state: Path, tmp_path: Path) -> None:
    put(state, record(ID_A, [HOST], transcript(tmp_path, "a.jsonl"), claimed_at=1_795_600_000))
    put(state, record(ID_B, [LAUNCHER_A, HOST], transcript(tmp_path, "b.jsonl"), claimed_at=1_795_608_000))
    # Both share only HOST, at current index 1; HOST is nearer in ID_A's record (0 vs 1):
    # the older claim wins.
    found = s.recover(FsStore(state), "codex", CWD, [LAUNCHER_B, HOST])
    assert found is not None and found.session_id == ID_A


def test_nearer_current_index_beats_record_index(state: Path, tmp_path: Path) -> None:
    put(state, record(ID_A, [LAUNCHER_A, HOST2], transcript(tmp_path, "a.jsonl"), claimed_at=1_795_608_000))
    put(state, record(ID_B, [HOST], transcript(tmp_path, "b.jsonl"), claimed_at=1_795_600_000))
    # current [HOST, HOST2]: ID_B shares HOST at current index 0, ID_A shares HOST2 at index 1.
    found = s.recover(FsStore(state), "codex", CWD, [HOST, HOST2])
    assert found is not None and found.session_id == ID_B


def test_equal_scores_newer_claim_wins(state: Path, tmp_path: Path) -> None:
    put(state, record(ID_A, [LAUNCHER_A, HOST], transcript(tmp_path, "a.jsonl"), claimed_at=1_795_600_000))
    put(state, record(ID_B, [LAUNCHER_B, HOST], transcript(tmp_path, "b.jsonl"), claimed_at=1_795_600_001))
    found = s.recover(FsStore(state), "codex", CWD, [Ancestor(302, "x"), HOST])
    assert found is not None and found.session_id == ID_B


def test_two_hosts_in_one_cwd_each_recover_their_own(state: Path, tmp_path: Path) -> None:
    put(state, record(ID_A, [LAUNCHER_A, HOST], transcript(tmp_path, "a.jsonl")))
    put(state, record(ID_B, [LAUNCHER_B, HOST2], transcript(tmp_path, "b.jsonl")))
    assert (
        getattr(s.recover(FsStore(state), "codex", CWD, [Ancestor(5, "n"), HOST]), "session_id", None) == ID_A
    )
    assert (
        getattr(s.recover(FsStore(state), "codex", CWD, [Ancestor(6, "m"), HOST2]), "session_id", None)
        == ID_B
    )


def test_malformed_records_are_ignored(state: Path, tmp_path: Path) -> None:
    put(state, record(ID_A, [HOST], transcript(tmp_path)))
    claims = state / "claims"
    good = json.loads(next(claims.glob("*.json")).read_text())
    variants: list[Any] = [
        [1, 2],
        good | {"claimed_at": "yesterday"},
        good | {"ancestors": "HOST"},
        good | {"session_id": ""},
        good | {"session_id": ID_B, "claimed_at": True},
    ]
    for i, variant in enumerate(variants):
        (claims / f"bad{i}.json").write_text(json.dumps(variant))
    (claims / "bytes.json").write_bytes(b"\xff\xfe{")
    found = s.recover(FsStore(state), "codex", CWD, [HOST])
    assert found is not None and found.session_id == ID_A


# --------------------------------------------------------------------------- applying recovery


def test_maybe_recover_adopts_and_refreshes_record(state: Path, tmp_path: Path) -> None:
    path = transcript(tmp_path)
    put(state, record(ID_A, [LAUNCHER_A, HOST], path, server_pid=1111, claimed_at=1_795_000_000))
    tracer = ListTracer()
    client = ClientInfo(type="codex", cwd=CWD)
    recovered = s.maybe_recover(
        client,
        store=FsStore(state),
        ancestors=[LAUNCHER_B, HOST],
        now_ms=NOW_MS,
        server_pid=2222,
        tracer=tracer,
    )
    assert recovered == ClientInfo(
        type="codex", session_id=ID_A, transcript_path=path, session_id_source="sticky-claim", cwd=CWD
    )
    assert tracer.named("sticky_claim_recovered") == [{"session_id": ID_A, "cwd": CWD}]
    stored = json.loads(next((state / "claims").glob("*.json")).read_text())
    assert stored["server_pid"] == 2222
    assert stored["claimed_at"] == NOW_MS // 1000
    assert stored["ancestors"] == [{"pid": 301, "sig": LAUNCHER_B.sig}, {"pid": 100, "sig": HOST.sig}]


def test_maybe_recover_only_for_identityless_known_clients(state: Path, tmp_path: Path) -> None:
    put(state, record(ID_A, [HOST], transcript(tmp_path)))
    kwargs: dict[str, Any] = {"store": FsStore(state), "ancestors": [HOST], "now_ms": NOW_MS, "server_pid": 9}
    assert s.maybe_recover(ClientInfo(type="unknown", cwd=CWD), **kwargs) is None
    held = ClientInfo(type="codex", session_id=ID_B, session_id_source="env", cwd=CWD)
    assert s.maybe_recover(held, **kwargs) is None
    assert s.maybe_recover(ClientInfo(type="codex", session_id="", cwd=CWD), **kwargs) is not None


def test_claim_for_explicit_claims() -> None:
    client = ClientInfo(
        type="claude-code", session_id=ID_A, transcript_path="/t", session_id_source="self-register", cwd=CWD
    )
    rec = s.claim_for(client, [HOST], NOW_MS, 77)
    assert rec == ClaimRecord("claude-code", CWD, (HOST,), ID_A, "/t", NOW_MS // 1000, 77)
    assert s.claim_for(ClientInfo(type="unknown", session_id=ID_A, cwd=CWD), [HOST], NOW_MS, 77) is None
    assert s.claim_for(ClientInfo(type="codex", session_id="", cwd=CWD), [HOST], NOW_MS, 77) is None


def test_recovery_and_gc_work_the_same_on_a_memory_store(tmp_path: Path) -> None:
    store = MemoryStore()
    gone = transcript(tmp_path, "gone.jsonl")
    assert s.write_claim(store, record(ID_B, [HOST], gone), NOW_MS)
    os.unlink(gone)
    assert s.write_claim(store, record(ID_A, [LAUNCHER_A, HOST], transcript(tmp_path)), NOW_MS)
    assert [c.session_id for c in store.claim_list()] == [ID_A]  # the write swept the transcriptless one
    recovered = s.maybe_recover(
        ClientInfo(type="codex", cwd=CWD),
        store=store,
        ancestors=[LAUNCHER_B, HOST],
        now_ms=NOW_MS,
        server_pid=7,
    )
    assert recovered is not None and recovered.session_id == ID_A
    (refreshed,) = store.claim_list()
    assert (refreshed.server_pid, refreshed.ancestors) == (7, (LAUNCHER_B, HOST))
