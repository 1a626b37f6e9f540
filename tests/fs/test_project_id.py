"""project_id names a project wherever it is checked out, with real git repositories: clones of
one history agree, unrelated repositories never do, and anything that is not a repository (or a
machine without git) has no id, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from oxtail_fs.host.project import normalized_origin, project_id

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout


def repo(path: Path, content: str) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "README").write_text(content)
    git(path, "add", "README")
    git(path, "commit", "-q", "-m", f"first: {content}")
    return path


def test_two_clones_of_one_repository_in_different_paths_are_one_project(tmp_path: Path) -> None:
    origin = repo(tmp_path / "origin", "one")
    laptop, devbox = tmp_path / "laptop" / "work", tmp_path / "devbox" / "src" / "other-name"
    laptop.parent.mkdir()
    devbox.parent.mkdir(parents=True)
    git(tmp_path, "clone", "-q", str(origin), str(laptop))
    git(tmp_path, "clone", "-q", str(origin), str(devbox))
    (devbox / "more").write_text("later work on one clone only")
    git(devbox, "add", "more")
    git(devbox, "commit", "-q", "-m", "second")
    (devbox / "sub").mkdir()
    ids = {project_id(str(p)) for p in (origin, laptop, devbox, devbox / "sub")}
    assert len(ids) == 1 and None not in ids
    assert len(next(iter(ids)) or "") == 32


def test_two_unrelated_repositories_are_different_projects(tmp_path: Path) -> None:
    first, second = repo(tmp_path / "a", "same text"), repo(tmp_path / "b", "other text")
    assert project_id(str(first)) is not None
    assert project_id(str(first)) != project_id(str(second))


def test_a_repository_without_commits_is_named_by_its_origin(tmp_path: Path) -> None:
    empty_a, empty_b = tmp_path / "a", tmp_path / "b"
    for path, url in ((empty_a, "git@GitHub.com:team/app.git"), (empty_b, "https://github.com/team/app/")):
        path.mkdir()
        git(path, "init", "-q")
        git(path, "remote", "add", "origin", url)
    assert project_id(str(empty_a)) is not None
    assert project_id(str(empty_a)) == project_id(str(empty_b))
    bare = tmp_path / "bare"
    bare.mkdir()
    git(bare, "init", "-q")
    assert project_id(str(bare)) is None


def test_origin_urls_normalize_to_host_and_path() -> None:
    same = {
        "git@github.com:team/app.git",
        "https://github.com/team/app",
        "https://user:secret@GitHub.com:443/team/app.git/",
        "ssh://git@github.com/team/app.git",
    }
    assert {normalized_origin(url) for url in same} == {"github.com/team/app"}
    assert normalized_origin("/srv/git/app.git") == "/srv/git/app"
    assert normalized_origin("  ") == ""


def test_a_directory_outside_any_repository_has_no_project_id(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert project_id(str(plain)) is None


@pytest.mark.parametrize("where", ["missing", "file", "empty", "nul"])
def test_a_path_that_is_no_directory_has_no_project_id(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("x")
    path = {
        "missing": str(tmp_path / "not-there"),
        "file": str(tmp_path / "file"),
        "empty": "",
        "nul": str(tmp_path) + "\0x",
    }[where]
    assert project_id(path) is None


def test_without_git_on_the_path_there_is_no_project_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = repo(tmp_path / "r", "x")
    assert project_id(str(checkout)) is not None
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin-here"))
    assert project_id(str(checkout)) is None


def test_a_git_that_hangs_or_fails_gives_no_project_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = repo(tmp_path / "r", "x")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert project_id(str(checkout)) is None
    fake.write_text("#!/bin/sh\nexec /bin/sleep 30\n")
    monkeypatch.setattr("oxtail_fs.host.project.GIT_TIMEOUT_S", 0.2)
    assert project_id(str(checkout)) is None


def test_a_git_directory_override_in_the_environment_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, theirs = repo(tmp_path / "mine", "m"), repo(tmp_path / "theirs", "t")
    expected = project_id(str(mine))
    monkeypatch.setenv("GIT_DIR", str(theirs / ".git"))
    assert project_id(str(mine)) == expected != project_id(str(theirs))
