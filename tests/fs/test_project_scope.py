"""Project roots, discovery scope (discovery §4) and messaging's same-project rule (messaging §3.3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oxtail_core.protocols import Host
from oxtail_fs.host.proctree import process_start
from oxtail_fs.host.project import (
    LocalHost,
    find_project_root,
    in_scope,
    is_within,
    realpath_or_self,
    same_project,
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/
    repo/.git/  repo/src/deep/  repo/nested/.git  repo/nested/lib/
    worktree/.git (a file)  adhoc/a/x  adhoc/b
    repo-link -> repo/src  repo-root-link -> repo  adhoc-link -> adhoc/a
    """
    base = Path(realpath_or_self(str(tmp_path)))
    for d in [
        "repo/.git",
        "repo/src/deep",
        "repo/nested/.git",
        "repo/nested/lib",
        "worktree",
        "adhoc/a/x",
        "adhoc/b",
    ]:
        (base / d).mkdir(parents=True)
    (base / "worktree/.git").write_text("gitdir: /elsewhere\n")
    (base / "repo-link").symlink_to(base / "repo/src")
    (base / "repo-root-link").symlink_to(base / "repo")
    (base / "adhoc-link").symlink_to(base / "adhoc/a")
    assert find_project_root(str(base)) == (str(base), False), "tmp_path must not lie inside a git repo"
    return base


# find_project_root / realpath_or_self --------------------------------------------
def test_find_project_root(tree: Path) -> None:
    assert find_project_root(str(tree / "repo/src/deep")) == (str(tree / "repo"), True)
    assert find_project_root(str(tree / "repo")) == (str(tree / "repo"), True)
    assert find_project_root(str(tree / "repo/nested/lib")) == (str(tree / "repo/nested"), True)
    assert find_project_root(str(tree / "worktree")) == (str(tree / "worktree"), True)  # .git file
    assert find_project_root(str(tree / "adhoc/a")) == (str(tree / "adhoc/a"), False)
    # The walk is over the string: a link into a repo's subdirectory finds no .git above it.
    assert find_project_root(str(tree / "repo-link")) == (str(tree / "repo-link"), False)
    assert find_project_root(str(tree / "repo-root-link")) == (str(tree / "repo-root-link"), True)
    assert find_project_root("") == ("", False)


def test_realpath_or_self(tree: Path) -> None:
    assert realpath_or_self(str(tree / "repo-link")) == str(tree / "repo/src")
    assert realpath_or_self(str(tree / "repo/src/")) == str(tree / "repo/src")
    assert realpath_or_self(str(tree / "repo/src/../nested")) == str(tree / "repo/nested")
    assert realpath_or_self(str(tree / "missing/")) == str(tree / "missing/")  # unresolvable: unchanged
    assert realpath_or_self("") == ""


def test_is_within_is_a_component_test() -> None:
    assert is_within("/r/proj", "/r/proj")
    assert is_within("/r/proj/a", "/r/proj")
    assert is_within("/r/proj/a", "/r/proj/")
    assert not is_within("/r/proj2", "/r/proj")
    assert is_within("/anything", "/")


# in_scope (discovery §4.3) ------------------------------------------------------
def test_in_scope_of_a_repo(tree: Path) -> None:
    root = str(tree / "repo")
    assert in_scope(root, root)
    assert in_scope(str(tree / "repo/src/deep"), root)
    assert not in_scope(str(tree / "repo/nested"), root)  # nested repository: its own project
    assert not in_scope(str(tree / "repo/nested/lib"), root)
    assert not in_scope(str(tree / "adhoc/a"), root)
    assert in_scope(str(tree / "repo-link"), root)  # canonicalized before the test


def test_in_scope_of_a_subdirectory_of_a_repo_is_empty(tree: Path) -> None:
    root = str(tree / "repo/src")
    assert not in_scope(root, root)
    assert not in_scope(str(tree / "repo/src/deep"), root)


def test_in_scope_of_a_non_git_root(tree: Path) -> None:
    root = str(tree)
    assert in_scope(str(tree / "adhoc/a/x"), root)
    assert in_scope(str(tree / "adhoc-link"), root)
    assert not in_scope(str(tree / "repo/src"), root)  # belongs to repo
    assert not in_scope(str(tree / "worktree"), root)
    assert not in_scope(str(tree) + "-sibling", root)


def test_in_scope_of_a_missing_path_uses_the_string(tree: Path) -> None:
    assert in_scope(str(tree / "adhoc/gone"), str(tree / "adhoc"))
    assert not in_scope("/nowhere/at/all", str(tree / "adhoc"))


# same_project (messaging §3.3) ----------------------------------------------------
def test_same_repo_matches_from_any_depth(tree: Path) -> None:
    assert same_project(str(tree / "repo"), str(tree / "repo/src/deep"))
    assert same_project(str(tree / "repo/src/deep"), str(tree / "repo"))


def test_nested_repo_is_a_separate_project(tree: Path) -> None:
    assert not same_project(str(tree / "repo"), str(tree / "repo/nested/lib"))
    assert not same_project(str(tree / "repo/nested"), str(tree / "repo/src"))


def test_git_and_non_git_never_match(tree: Path) -> None:
    assert not same_project(str(tree / "repo"), str(tree / "adhoc/a"))
    assert not same_project(str(tree / "adhoc/a"), str(tree / "repo"))
    assert not same_project(str(tree), str(tree / "repo"))  # even a non-git dir containing the repo


def test_non_git_dirs_match_by_containment(tree: Path) -> None:
    assert same_project(str(tree / "adhoc"), str(tree / "adhoc/a/x"))
    assert same_project(str(tree / "adhoc/a/x"), str(tree / "adhoc"))
    assert same_project(str(tree / "adhoc/a"), str(tree / "adhoc/a"))
    assert not same_project(str(tree / "adhoc/a"), str(tree / "adhoc/b"))


def test_symlinks_are_canonicalized(tree: Path) -> None:
    assert same_project(str(tree / "repo-root-link"), str(tree / "repo/src/deep"))
    assert same_project(str(tree / "repo/src"), str(tree / "repo-root-link/nested/../src"))
    assert same_project(str(tree / "adhoc-link"), str(tree / "adhoc/a/x"))
    assert same_project(str(tree / "adhoc"), str(tree / "adhoc-link"))


def test_a_link_into_a_repo_subdirectory_is_walked_as_written(tree: Path) -> None:
    """messaging §3.3 walks the raw cwd string: such a link reads as a non-git directory."""
    assert not same_project(str(tree / "repo-link"), str(tree / "repo/src/deep"))
    assert same_project(str(tree / "repo-link"), str(tree / "repo-link"))


def test_an_unreported_cwd_matches_nothing(tree: Path) -> None:
    assert not same_project("", str(tree / "adhoc"))
    assert not same_project(str(tree / "adhoc"), "")


# LocalHost ------------------------------------------------------------------------
def test_local_host_implements_host(tree: Path) -> None:
    host: Host = LocalHost()
    start = process_start(os.getpid())
    assert host.is_alive(os.getpid(), start)
    assert host.is_alive(os.getpid(), None)
    assert start is not None
    assert not host.is_alive(os.getpid(), start + 3.0)
    assert host.same_project(str(tree / "repo"), str(tree / "repo/src"))
    assert not host.same_project(str(tree / "repo"), str(tree / "repo/nested"))
