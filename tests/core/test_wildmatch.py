"""Reservation patterns: matching agrees with ``pathspec`` (gitignore's own semantics) except for
the two documented differences (anchored at the root; a wildcard-and-text last segment names
files), and the overlap test is exact: its witness matches both, and any path that matches both
proves an overlap."""

from __future__ import annotations

import re

import pathspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxtail_core.wildmatch import PatternError, compile_pattern, matches, overlap_witness, overlaps

LITERALS = ["a", "b", "src", "x.py", "a.md", "ab"]
WILDS = ["*", "*.py", "?", "[ab]", "[!a]*", "a*", "*.md"]
PATH_SEGMENTS = ["a", "b", "src", "x.py", "a.md", "ab", "c.py", ".py", "bb"]


@st.composite
def patterns(draw: st.DrawFn) -> str:
    segments = draw(st.lists(st.sampled_from(LITERALS + WILDS + ["**"]), min_size=1, max_size=3))
    text = "/".join(segments)
    if draw(st.booleans()) and segments[-1] != "**":
        text += "/"
    if draw(st.booleans()) and len(segments) == 1 and segments[0] != "**":
        text = "/" + text
    return text


paths = st.lists(st.sampled_from(PATH_SEGMENTS), min_size=1, max_size=4).map("/".join)


def _files_only(pattern: str) -> bool:
    last = pattern.rstrip("/").split("/")[-1]
    return not pattern.endswith("/") and any(c in last for c in "*?[") and last.strip("*?") != ""


def gitignore(pattern: str, path: str) -> bool:
    """What our matcher promises, from pathspec: gitignore's answer (the path, or one of its
    directories, written ``dir/``, matches), except that a files-only pattern covers a path only
    by matching the path itself."""
    anchored = pattern if pattern.startswith("/") else "/" + pattern  # ours: always at the root
    regex = pathspec.PathSpec.from_lines("gitignore", [anchored]).patterns[0].regex
    assert isinstance(regex, re.Pattern)
    if _files_only(pattern):
        return regex.fullmatch(path) is not None
    parts = path.split("/")
    directories = ["/".join(parts[:n]) + "/" for n in range(1, len(parts))]
    return any(regex.search(p) is not None for p in [path, *directories])


@settings(max_examples=400, deadline=None)
@given(patterns(), paths)
def test_a_pattern_matches_the_paths_gitignore_says_it_does(pattern: str, path: str) -> None:
    assert matches(pattern, path) == gitignore(pattern, path)


@settings(max_examples=400, deadline=None)
@given(patterns(), patterns(), paths)
def test_the_overlap_test_is_exact_with_a_witness_both_patterns_match(a: str, b: str, path: str) -> None:
    witness = overlap_witness(a, b)
    if witness is not None:
        assert matches(a, witness) and matches(b, witness)
        assert gitignore(a, witness) and gitignore(b, witness)
        assert "//" not in witness and not witness.startswith("/")
    if matches(a, path) and matches(b, path):
        assert witness is not None
    assert overlaps(a, b) == overlaps(b, a) == (witness is not None)


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/sub/a.py", False),
        ("src/", "src/sub/a.py", True),
        ("src", "src/sub/a.py", True),
        ("src/*", "src/sub/a.py", True),
        ("*.py", "docs/*.md", False),
        ("*.md", "*.py", False),
        ("setup.py", "README.md", False),
        ("*.py", "src/a.py", False),
        ("**/*.py", "src/a.py", True),
        ("**/test_*.py", "tests/unit/test_a.py", True),
        ("a/**/b", "a/b", True),
        ("a/**", "a", True),
        ("src/**", "/src.py", False),
        ("src/[ab].py", "src/c.py", False),
        ("src/[!a].py", "src/b.py", True),
        ("README.md", "docs/README.md", False),
        ("**/README.md", "docs/README.md", True),
        ("/README.md", "README.md", True),
    ],
)
def test_overlap_decisions_people_rely_on(a: str, b: str, overlap: bool) -> None:
    assert overlaps(a, b) is overlap


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("", "non-empty"),
        ("!src/a.py", "negated"),
        ("#notes", "comment"),
        ("src//a.py", "empty path segment"),
        ("../outside", ". and .."),
        ("src/./a", ". and .."),
        ("src/[ab", "unclosed ["),
        ("[[:alpha:]]", "POSIX"),
        ("a\\", "trailing backslash"),
        (" a.py", "blanks"),
        ("a\nb", "control"),
        ("a\\/b", "cannot escape /"),
        ("x" * 513, "at most 512"),
    ],
)
def test_a_malformed_pattern_is_refused_with_a_message_naming_the_fault(bad: str, says: str) -> None:
    with pytest.raises(PatternError, match=re.escape(says)):
        compile_pattern(bad)
