"""The guard's stdlib-only check reads what the real FsStore writes and answers as the full check does.

Every record here is written through ``FsStore`` (reserve, release, an expired one, another
project's), the registry through ``registry_put``; hostile files (corrupt, symlinked, forged) are
put next to them by hand. The fast check must read the same records and give the same answer, or
hand the run to the full check.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxtail_core import reservations as core_reservations
from oxtail_core.ids import same_session_id
from oxtail_core.model import ClientInfo, RegistryEntry
from oxtail_core.reservations import Reservation, release_step, reserve_step
from oxtail_fs.host import proctree
from oxtail_fs.store import layout
from oxtail_fs.store.fs_store import FsStore
from oxtail_mcp.commands import guard, guardcheck, guardgit, guardstate
from oxtail_mcp.commands.guardstate import Delegate
from oxtail_mcp.identity.client import claude_env_session_id, codex_env_session_id
from tests.mcp.test_guard import Repo
from tests.support.e2e import sid

A, B = sid(1), sid(2)
HOUR_MS = 3_600_000
HEAVY = ("attrs", "attr", "cattrs", "psutil", "mcp", "anyio", "portalocker", "argparse", "pathlib")
HEAVY_OURS = (
    "oxtail_core.reservations",
    "oxtail_core.model",
    "oxtail_fs.store.fs_store",
    "oxtail_mcp.commands.guard",
)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    r = Repo(tmp_path)
    try:
        yield r
    finally:
        r.close()


def put(store: FsStore, project: str, session: str, *patterns: str, at: int, exclusive: bool = True) -> None:
    wanted = [
        Reservation(
            pattern=p,
            holder_session_id=session,
            exclusive=exclusive,
            reserved_at=at,
            expires_at=at + HOUR_MS,
            reason="why not",
            holder_tmux="alpha",
            client_type="claude-code",
        )
        for p in patterns
    ]
    result = store.reservations_update(project, reserve_step(wanted, at, frozenset({session}), 10_000))
    assert result.granted == patterns


def fields(r: object) -> tuple[object, ...]:
    names = (
        "pattern",
        "holder_session_id",
        "exclusive",
        "expires_at",
        "reason",
        "holder_tmux",
        "client_type",
    )
    return tuple(getattr(r, n) for n in (*names, "orphaned_at"))


def test_the_mirrored_rules_are_the_stores() -> None:
    """Names and size bounds are shared (oxtail_fs/store/names.py); what the check still copies is pinned."""
    assert guardstate.GRACE_ENV == core_reservations.GRACE_ENV
    assert guardstate.GRACE_DEFAULT_MS == core_reservations.GRACE_DEFAULT_MS
    for name in ("1.json", "4294967296.json", "01.json", "12345678901.json", "x.json", "1.jsonx", "١.json"):
        ours = name.endswith(".json") and guardstate._is_pid_text(name[:-5])
        assert ours == bool(layout.REGISTRY_NAME.match(name)), name
    for raw in ("", "0", "250", " 7 ", "-1", "1e3", "abc"):
        env = {guardstate.GRACE_ENV: raw}
        assert guardstate.grace_from_env(env) == core_reservations.grace_from_env(env)
    envs = [
        {},
        {"CLAUDE_CODE_SESSION_ID": " x "},
        {"CLAUDE_CODE_SESSION_ID": "", "CODEX_THREAD_ID": "t"},
        {"CODEX_COMPANION_SESSION_ID": "c", "CODEX_SESSION_ID": "never"},
        {"CODEX_THREAD_ID": " ", "CODEX_COMPANION_SESSION_ID": "c"},
    ]
    for env in envs:
        assert guardcheck.env_session(env) == (
            claude_env_session_id(env) or codex_env_session_id(env) or None
        )
    upper = A.upper()
    for a, b in [(A, upper), (A, B), ("x", "X"), ("", ""), ("same", "same"), (upper, A.lower())]:
        assert guardcheck.same_holder(a, b) == same_session_id(a, b)


def test_the_fast_check_reads_the_records_the_store_wrote_and_skips_no_live_one(tmp_path: Path) -> None:
    home = tmp_path / "oxtail"
    store = FsStore(home)
    here, there = str(tmp_path / "here"), str(tmp_path / "there")
    now = int(time.time() * 1000)
    put(store, here, A, "src/*.py", "docs/", at=now)
    put(store, here, A, "old/**", at=now - 2 * HOUR_MS)  # expired an hour ago
    put(store, here, B, "lib/x.py", at=now, exclusive=False)
    put(store, here, B, "gone.md", at=now)
    assert store.reservations_update(here, release_step(B, ["gone.md"], now, frozenset({A, B}), 10_000))
    put(store, there, B, "src/*.py", at=now)  # another project
    held = guardstate.read_reservations(str(home), here)
    assert [fields(r) for r in held] == [fields(r) for r in store.reservations_list(here)]
    standing = guardstate.standing_records(held, now + 1, frozenset({A, B}), 10_000)
    assert [r.pattern for r in standing] == ["src/*.py", "docs/", "lib/x.py"]
    assert [r.pattern for r in guardstate.read_reservations(str(home), there)] == ["src/*.py"]
    assert guardstate.read_reservations(str(home), str(tmp_path / "nobody")) == []
    assert guardstate.reservations_file(str(home), here) == str(store._reservations_file(here))


def test_corrupt_symlinked_and_malformed_files_go_to_the_full_check(tmp_path: Path) -> None:
    home = tmp_path / "oxtail"
    store = FsStore(home)
    now = int(time.time() * 1000)
    good, bad = str(tmp_path / "good"), str(tmp_path / "bad")
    put(store, good, A, "src/*.py", at=now)
    target = Path(guardstate.reservations_file(str(home), bad))
    cases = {
        b"[{not json": "not JSON",
        b'{"a": 1}': "not a JSON list",
        b'[{"pattern": "x"}]': "missing or malformed",
        b'[{"pattern": "x", "holder_session_id": "s", "exclusive": 1, '
        b'"reserved_at": 0, "expires_at": 9}]': "exclusive",
        b"\xff\xfe": "not JSON",
    }
    for raw, why in cases.items():
        target.write_bytes(raw)
        with pytest.raises(Delegate, match=why):
            guardstate.read_reservations(str(home), bad)
    target.unlink()
    target.symlink_to(guardstate.reservations_file(str(home), good))
    with pytest.raises(Delegate, match="cannot open"):
        guardstate.read_reservations(str(home), bad)


def test_the_registry_is_read_as_the_store_reads_it(repo: Repo) -> None:
    live = [repo.live_server(A), repo.live_server(B)]
    store = FsStore(repo.home)
    registry = repo.home / "registry"
    forged = registry / "999999.json"
    forged.write_bytes((registry / f"{live[0].pid}.json").read_bytes())  # names another pid
    (registry / "12.json").write_bytes(b"{broken")
    (registry / "13.json").symlink_to(registry / f"{live[1].pid}.json")
    nameless = RegistryEntry(server_pid=live[0].pid + 100_000, started_at=1, client=ClientInfo(type="codex"))
    store.registry_put(nameless)
    expected = sorted(
        (e.server_pid, e.process_start, e.session_id) for e in store.registry_entries() if e.session_id
    )
    assert sorted(guardstate.registry_servers(str(repo.home))) == expected
    assert len(expected) == 2
    (repo.home / "sessions").mkdir()
    (repo.home / "sessions" / "77.json").write_text("{}")
    with pytest.raises(Delegate, match="sessions/"):
        guardstate.registry_servers(str(repo.home))


def both(repo: Repo, mode: str = "block", session: str | None = B, **env: str) -> tuple[int, str]:
    """The fast and the full check on the staged state, which must agree (the fast one first: the
    full one may sweep)."""
    environ = repo.env(session, **env)
    fast = guardcheck.fast_check("pre-commit", mode, str(repo.path), environ)
    full = guard.check("pre-commit", mode, repo.path, environ)
    assert fast == full
    return fast


def stage(repo: Repo, *files: str) -> None:
    repo.git("reset", "-q")
    for f in files:
        repo.write(f, "x\n")
        repo.git("add", f)


def test_the_fast_check_answers_exactly_as_the_full_check(repo: Repo) -> None:
    repo.live_server(A)
    repo.reserve(A, "src/*.py")
    repo.reserve(A, "docs/", exclusive=False)
    stage(repo, "src/a.py", "src/b.py", "docs/x.md")
    code, text = both(repo)
    assert code == 1 and "src/a.py: src/*.py held by session " + A in text and "src/b.py" in text
    assert both(repo, "warn")[0] == 0
    assert both(repo, session=A) == (0, "")
    assert both(repo, session=A.upper()) == (0, "")
    stage(repo, "docs/y.md", "src/sub/deep.py")
    assert both(repo) == (0, "")
    stage(repo, "src/c.py")
    assert both(repo, OXTAIL_GUARD="off") == (0, "")


def test_a_dead_holder_goes_to_the_full_check_until_its_orphan_clock_is_stamped(repo: Repo) -> None:
    (server,) = [repo.live_server(A)]
    repo.reserve(A, "src/*.py")
    stage(repo, "src/a.py")
    server.send_signal(signal.SIGKILL)
    server.wait()
    env = repo.env()
    with pytest.raises(Delegate, match="orphan clock starts"):
        guardcheck.fast_check("pre-commit", "block", str(repo.path), env)
    assert guard.check("pre-commit", "block", repo.path, env)[0] == 1  # stamps it, still in its grace
    assert guardcheck.fast_check("pre-commit", "block", str(repo.path), env)[0] == 1  # a plain read now
    elapsed = repo.env(OXTAIL_RESERVATION_GRACE_MS="0")
    with pytest.raises(Delegate, match="abandoned"):
        guardcheck.fast_check("pre-commit", "block", str(repo.path), elapsed)
    assert guard.check("pre-commit", "block", repo.path, elapsed) == (0, "")  # drops it
    assert guardcheck.fast_check("pre-commit", "block", str(repo.path), elapsed) == (0, "")


def hook_run(repo: Repo, *, session: str | None, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed hook's own command line, with ``-X importtime`` (and the variable, for a child)."""
    argv = guard.check_argv("pre-commit", "block")
    argv[1:1] = ["-X", "importtime"]
    environ = repo.env(session, PYTHONPROFILEIMPORTTIME="1", **env)
    return subprocess.run(
        argv, cwd=repo.path, env=environ, capture_output=True, text=True, timeout=60, check=False
    )


def imported(stderr: str) -> set[str]:
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_the_hooks_check_imports_nothing_heavy_even_when_it_refuses(repo: Repo) -> None:
    repo.live_server(A)
    repo.reserve(A, *(f"src/mod{i}/*.py" for i in range(99)), "src/*.py")
    stage(repo, "src/a.py", "notes.txt")
    # B by its environment: refused; no id: the process tree finds A (this test process is the
    # agent of A's server and an ancestor of the hook), whose own reservation lets it through.
    for session, code in ((B, 1), (None, 0)):
        done = hook_run(repo, session=session)
        assert done.returncode == code
        assert ("src/a.py: src/*.py held by session " + A in done.stderr) == (code == 1)
        loaded = imported(done.stderr)
        assert "oxtail_core.wildmatch" in loaded and "oxtail_mcp.commands.guardcheck" in loaded
        heavy = sorted(n for n in loaded if n.split(".")[0] in HEAVY or n in HEAVY_OURS)
        assert heavy == [], f"the guard's check imported {heavy}"


def test_what_the_fast_check_cannot_read_the_full_check_answers_in_the_same_hook(repo: Repo) -> None:
    assert repo.guard("install").returncode == 0
    repo.live_server(A)
    repo.reserve(A, "src/*.py")
    target = Path(guardstate.reservations_file(str(repo.home), os.path.realpath(repo.path)))
    target.write_bytes(b"[{torn")
    done = hook_run(repo, session=B)
    assert done.returncode == 0 and "oxtail_mcp.commands.guard" in imported(done.stderr)  # the child ran
    moved = target.with_name("elsewhere.json")
    target.write_bytes(b"[]")
    os.replace(target, moved)
    target.symlink_to(moved)
    committed = repo.commit("src/a.py")
    assert committed.returncode == 0 and "cannot read reservations" in committed.stderr


def test_a_hook_whose_source_roots_are_gone_runs_the_full_check(repo: Repo) -> None:
    assert repo.guard("install").returncode == 0
    repo.live_server(A)
    repo.reserve(A, "src/*.py")
    hook = repo.path / ".git" / "hooks" / "pre-commit"
    text = hook.read_text()
    for root in guard.source_roots():
        text = text.replace(f'"{root}"', f'"{repo.tmp / "moved"}"')
    hook.write_text(text)
    done = repo.commit("src/a.py")
    assert done.returncode != 0 and "src/a.py: src/*.py held by session " + A in done.stderr


def test_a_repository_module_named_like_the_standard_library_is_never_imported(repo: Repo) -> None:
    repo.live_server(A)
    repo.reserve(A, "src/*.py")
    repo.write("subprocess.py", "raise SystemExit('the repository ran')\n")
    repo.write("time.py", "raise SystemExit('the repository ran')\n")
    stage(repo, "src/a.py")
    done = hook_run(repo, session=B)
    assert done.returncode == 1 and "the repository ran" not in done.stderr
    assert sys.executable in guard.check_argv("pre-commit", "block")


def test_the_process_reads_agree_with_proctree(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "60"])
    zombie = subprocess.Popen(["true"])
    try:
        while proctree.is_alive(zombie.pid):  # exited, not yet reaped: a zombie
            time.sleep(0.01)
        start = proctree.process_start(child.pid)
        assert start is not None
        cases = [
            (os.getpid(), None),
            (child.pid, None),
            (child.pid, start),
            (child.pid, start + 5),
            (zombie.pid, None),
            (0, None),
            (-1, None),
            (4_000_000_000, None),
        ]
        for pid, started in cases:
            assert guardstate.is_alive(pid, started) == proctree.is_alive(pid, started), (pid, started)
        for pid in (os.getpid(), child.pid, 1, 4_000_000_000):
            assert guardstate.ppid_of(pid) == proctree.ppid_of(pid)
            walk = list(guardstate.ancestry(pid, guardstate.ppid_of))
            assert walk == list(proctree.ancestry(pid))
        assert guardstate.MAX_HOPS == proctree.MAX_HOPS
        assert guardstate.START_TOLERANCE_S == proctree.START_TOLERANCE_S
    finally:
        child.kill()
        child.wait()
        zombie.wait()


def test_spawn_feeds_stdin_reads_both_pipes_whole_and_kills_at_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = os.urandom(300_000).hex().encode()  # more than any pipe buffer, both ways
    script = "\n".join(
        [
            "import sys",
            "d = sys.stdin.buffer.read()",
            "sys.stderr.buffer.write(d)",
            "sys.stdout.buffer.write(d[::-1])",
        ]
    )
    code, out, err = guardgit.spawn([sys.executable, "-c", script], big, 30)
    assert (code, out, err) == (0, big[::-1], big)
    assert guardgit.spawn([sys.executable, "-c", "raise SystemExit(3)"], None, 30)[0] == 3
    begun = time.monotonic()
    with pytest.raises(TimeoutError):
        guardgit.spawn(["sleep", "30"], None, 0.3)
    assert time.monotonic() - begun < 10
    with pytest.raises(FileNotFoundError):
        guardgit.spawn(["no-such-program-oxtail"], None, 30)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(guardgit.GuardError, match="git is not installed"):
        guardgit.git(".", "status")
