"""The git guard on real repositories: the hooks installed by the real CLI, real commits and pushes
(refused, allowed, warned, bypassed, in a worktree, with a rename, NUL-unsafe names, a chained hook)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxtail_core.model import ClientInfo, RegistryEntry
from oxtail_core.reservations import Reservation, reserve_step
from oxtail_fs.host import proctree
from oxtail_fs.store.fs_store import FsStore
from oxtail_mcp.commands.guard import committer, name_status
from tests.support.e2e import sid

A, B = sid(1), sid(2)
NOW_MS = 0


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{args} failed: {done.stdout}\n{done.stderr}")
    return done


class Repo:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.path = tmp / "repo"
        self.path.mkdir()
        self.home = tmp / "oxtail"
        self.servers: list[subprocess.Popen[bytes]] = []
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "t@example.invalid")
        self.git("config", "user.name", "t")
        self.write("README.md", "hello\n")
        self.write("src/old.py", "x = 1\n")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "initial")

    def env(self, session: str | None = B, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE_CODE", "CODEX_", "OXTAIL"))}
        env.update(OXTAIL_HOME=str(self.home), GIT_TERMINAL_PROMPT="0", **extra)
        if session is not None:
            env["CLAUDE_CODE_SESSION_ID"] = session
        return env

    def git(self, *args: str, cwd: Path | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
        return run(cwd or self.path, "git", *args, **kw)  # type: ignore[arg-type]

    def write(self, rel: str, text: str, root: Path | None = None) -> None:
        path = (root or self.path) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def guard(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return run(
            cwd or self.path, sys.executable, "-m", "oxtail_mcp", "guard", *args, env=self.env(), check=False
        )

    def live_server(self, session: str, pid_offset: int = 0) -> subprocess.Popen[bytes]:
        """A real process standing in for ``session``'s oxtail server, published in the registry."""
        proc = subprocess.Popen(["sleep", "120"])
        self.servers.append(proc)
        entry = RegistryEntry(
            server_pid=proc.pid,
            started_at=1,
            client=ClientInfo(type="claude-code", session_id=session, cwd=str(self.path)),
            tmux_session="alpha",
            process_start=proctree.process_start(proc.pid),
        )
        FsStore(self.home).registry_put(entry)
        return proc

    def reserve(
        self, session: str, *patterns: str, project: Path | None = None, exclusive: bool = True
    ) -> None:
        import time

        now = int(time.time() * 1000)
        wanted = [
            Reservation(
                pattern=p,
                holder_session_id=session,
                exclusive=exclusive,
                reserved_at=now,
                expires_at=now + 3_600_000,
                reason="refactoring the parser",
                holder_tmux="alpha",
                client_type="claude-code",
            )
            for p in patterns
        ]
        root = os.path.realpath(project or self.path)
        result = FsStore(self.home).reservations_update(
            root, reserve_step(wanted, now, frozenset({session}), 10_000)
        )
        assert result.granted == patterns

    def commit(
        self, *files: str, session: str | None = B, cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        where = cwd or self.path
        for f in files:
            self.write(f, f"changed by {session}\n", where)
        self.git("add", "-A", cwd=where)
        return run(where, "git", "commit", "-q", "-m", "change", env=self.env(session, **env), check=False)

    def head(self, cwd: Path | None = None) -> str:
        return self.git("rev-parse", "HEAD", cwd=cwd).stdout.strip()

    def close(self) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait()


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    r = Repo(tmp_path)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def guarded(repo: Repo) -> Repo:
    done = repo.guard("install")
    assert done.returncode == 0, done.stderr
    repo.live_server(A)
    repo.reserve(A, "src/*.py")
    return repo


def test_a_commit_touching_another_sessions_exclusive_reservation_is_refused_naming_it(guarded: Repo) -> None:
    before = guarded.head()
    done = guarded.commit("src/a.py")
    assert done.returncode != 0
    assert guarded.head() == before
    err = done.stderr
    assert "src/a.py: src/*.py held by session " + A in err
    assert "tmux alpha" in err and "refactoring the parser" in err and " UTC" in err
    assert "OXTAIL_GUARD=off" in err and "send_message" in err


def test_commits_outside_the_reservation_or_by_its_holder_go_through(guarded: Repo) -> None:
    assert guarded.commit("docs/notes.md").returncode == 0
    assert guarded.commit("src/sub/deep.py").returncode == 0  # src/*.py names files directly in src
    mine = guarded.commit("src/a.py", session=A)
    assert mine.returncode == 0 and mine.stderr == ""


def test_warn_mode_lets_the_commit_through_and_says_why(guarded: Repo) -> None:
    assert guarded.guard("install", "--mode", "warn").returncode == 0
    done = guarded.commit("src/a.py")
    assert done.returncode == 0
    assert "oxtail guard (warning)" in done.stderr and A in done.stderr


def test_oxtail_guard_off_bypasses_the_check_for_one_commit(guarded: Repo) -> None:
    done = guarded.commit("src/a.py", OXTAIL_GUARD="off")
    assert done.returncode == 0 and done.stderr == ""
    assert guarded.commit("src/b.py").returncode != 0  # only that one


def test_a_rename_out_of_a_reserved_path_is_refused(guarded: Repo) -> None:
    (guarded.path / "lib").mkdir()
    guarded.git("mv", "src/old.py", "lib/new.py")
    done = run(guarded.path, "git", "commit", "-q", "-m", "mv", env=guarded.env(B), check=False)
    assert done.returncode != 0 and "src/old.py: src/*.py" in done.stderr


def test_paths_with_spaces_quotes_and_newlines_are_read_whole(guarded: Repo) -> None:
    odd = 'src/we ird "q"\nname.py'
    done = guarded.commit(odd)
    assert done.returncode != 0 and 'src/we ird "q"\nname.py: src/*.py' in done.stderr


def test_a_shared_reservation_never_refuses(repo: Repo) -> None:
    repo.guard("install")
    repo.live_server(A)
    repo.reserve(A, "docs/", exclusive=False)
    assert repo.commit("docs/a.md").returncode == 0


def test_the_reservation_ends_with_the_holders_last_server(guarded: Repo) -> None:
    (server,) = guarded.servers
    server.send_signal(signal.SIGKILL)
    server.wait()
    grace = {"OXTAIL_RESERVATION_GRACE_MS": "0"}
    assert guarded.commit("src/a.py", **grace).returncode == 0


def test_the_hooks_serve_every_worktree_and_each_checkout_is_its_own_project(guarded: Repo) -> None:
    wt = guarded.tmp / "wt"
    guarded.git("worktree", "add", "-q", "-b", "side", str(wt))
    from_worktree = guarded.guard("install", cwd=wt)
    assert f"installed {guarded.path / '.git' / 'hooks' / 'pre-commit'}" in from_worktree.stdout
    assert guarded.commit("src/a.py", cwd=wt).returncode == 0  # the main checkout's reservation
    guarded.reserve(A, "src/*.py", project=wt)
    done = guarded.commit("src/b.py", cwd=wt)
    assert done.returncode != 0 and "src/b.py: src/*.py" in done.stderr


def test_an_existing_hook_is_chained_first_and_put_back_on_uninstall(repo: Repo) -> None:
    hooks = repo.path / ".git" / "hooks"
    mine = hooks / "pre-commit"
    mine.write_text('#!/bin/sh\necho "mine ran" >> "$(git rev-parse --git-dir)/mine.log"\n[ ! -e STOP ]\n')
    mine.chmod(0o755)
    assert "kept your pre-commit hook" in repo.guard("install").stdout
    repo.live_server(A)
    repo.reserve(A, "src/*.py")
    assert repo.commit("src/a.py").returncode != 0
    assert (repo.path / ".git" / "mine.log").read_text() == "mine ran\n"
    repo.write("STOP", "")
    stopped = repo.commit("docs/x.md")  # the chained hook's failure stops the commit
    assert stopped.returncode != 0 and "oxtail guard" not in stopped.stderr
    (repo.path / "STOP").unlink()
    assert "your pre-commit hook is back" in repo.guard("uninstall").stdout
    assert mine.read_text().startswith('#!/bin/sh\necho "mine ran"')
    assert not (hooks / "pre-push").exists()
    assert repo.commit("src/a.py").returncode == 0


def test_a_configured_core_hookspath_is_where_the_hooks_go(repo: Repo) -> None:
    repo.git("config", "core.hooksPath", ".githooks")
    assert f"installed {repo.path / '.githooks' / 'pre-commit'}" in repo.guard("install").stdout
    repo.live_server(A)
    repo.reserve(A, "src/*.py")
    assert repo.commit("src/a.py").returncode != 0


def test_a_push_of_commits_touching_a_reserved_path_is_refused(repo: Repo) -> None:
    remote = repo.tmp / "remote.git"
    run(repo.tmp, "git", "init", "-q", "--bare", str(remote))
    repo.git("remote", "add", "origin", str(remote))
    repo.git("push", "-q", "origin", "main")
    assert repo.commit("src/a.py").returncode == 0  # before anyone reserved: committed locally
    repo.guard("install")
    repo.live_server(A)
    repo.reserve(A, "src/*.py")
    push = run(repo.path, "git", "push", "-q", "origin", "main", env=repo.env(B), check=False)
    assert push.returncode != 0 and "src/a.py: src/*.py" in push.stderr
    repo.git("checkout", "-q", "-b", "topic")
    new_branch = run(repo.path, "git", "push", "-q", "origin", "topic", env=repo.env(B), check=False)
    assert new_branch.returncode != 0 and "src/a.py" in new_branch.stderr
    ok = run(repo.path, "git", "push", "-q", "origin", "main", env=repo.env(A), check=False)
    assert ok.returncode == 0, ok.stderr


def test_a_guard_whose_python_is_gone_lets_commits_through_saying_so(guarded: Repo) -> None:
    hook = guarded.path / ".git" / "hooks" / "pre-commit"
    hook.write_text(hook.read_text().replace(sys.executable, str(guarded.tmp / "no-such-python")))
    done = guarded.commit("src/a.py")
    assert done.returncode == 0 and "is gone (reinstall the guard); allowed" in done.stderr


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    done = run(plain, sys.executable, "-m", "oxtail_mcp", "guard", "install", check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"oxtail-mcp guard: error: not inside a git repository: {plain}"
    ]
    bad_mode = run(
        plain, sys.executable, "-m", "oxtail_mcp", "guard", "install", "--mode", "loud", check=False
    )
    assert bad_mode.returncode == 2 and "invalid choice: 'loud'" in bad_mode.stderr


def test_no_state_directory_means_no_reservations_and_none_is_created(repo: Repo) -> None:
    repo.guard("install")
    assert repo.commit("src/a.py").returncode == 0
    assert not repo.home.exists()


def test_name_status_keeps_both_names_of_a_rename_and_every_byte_of_a_path() -> None:
    raw = b"M\0a b.py\0R100\0old\nname\0new\0D\0gone\0"
    assert name_status(raw) == ["a b.py", "old\nname", "new", "gone"]


def test_the_committer_is_found_through_the_process_tree_when_no_env_says(tmp_path: Path) -> None:
    """A real agent process with two children: its oxtail server and the shell that commits."""
    agent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess,sys;a=subprocess.Popen(['sleep','60']);"
            "b=subprocess.Popen(['sleep','60']);print(a.pid,b.pid,flush=True);sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert agent.stdout is not None
        server, shell = map(int, agent.stdout.readline().split())
        entries = [
            RegistryEntry(
                server_pid=server, started_at=1, client=ClientInfo(type="claude-code", session_id=A)
            ),
        ]
        assert committer({}, shell, entries) == A
        assert committer({"CLAUDE_CODE_SESSION_ID": B}, shell, entries) == B
        assert committer({}, os.getpid(), entries) is None  # not under that agent
        twins = [
            *entries,
            RegistryEntry(server_pid=shell, started_at=1, client=ClientInfo(type="codex", session_id=B)),
        ]
        assert committer({}, shell, twins) is None  # one agent, two sessions: unknown
    finally:
        assert agent.stdin is not None
        agent.stdin.close()
        for pid in (server, shell):
            os.kill(pid, signal.SIGKILL)
        agent.wait(10)
