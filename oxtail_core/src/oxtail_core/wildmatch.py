"""Reservation patterns: gitignore (wildmatch) syntax, matching a path, and whether two patterns overlap.

Why our own matcher and not ``pathspec``: the core is I/O-free and depends on
attrs alone, and the question a reservation asks -- *can some path match both
patterns?* -- is not one ``pathspec`` answers (it matches one path at a time).
Each pattern compiles to a small finite automaton over characters; matching
runs it on a path, and the overlap test searches the product of two automata
for a common accepted path, so the answer is exact (and comes with a witness
path, which the tests check against ``pathspec``). One construction serves
both, so the guard refuses exactly the paths that the conflict test covers.

The syntax is gitignore's (``man gitignore``), read with two deliberate
differences (the rows marked *ours*):

=====================  =========================================================
pattern                matches (paths relative to the project root)
=====================  =========================================================
``README.md``, ``src`` *ours*: anchored at the root, with or without a ``/`` in
                       it (gitignore would match a slash-less name at any
                       depth); write ``**/README.md`` for any depth
``*`` ``?`` ``[a-z]``  within one path segment (never a ``/``); ``[!x]`` negates
``**/x``, ``a/**/b``   any number of directories (zero included)
``src/**``, ``src/``   everything beneath ``src``
``src``, ``docs/api``  the file, or the directory and everything beneath it
``src/*``              every entry of ``src`` and everything beneath them
``*.py``, ``src/*.md`` *ours*: files by name only -- a last segment mixing
                       wildcards and other characters does not also cover what
                       lies beneath a directory of that name
=====================  =========================================================

Both keep reservations of unrelated files apart: with gitignore's reading
``setup.py`` and ``README.md`` would collide (a directory ``setup.py`` could
hold a ``README.md``), and so would ``*.md`` and ``*.py``.

The module uses the standard library only (plain slotted classes, not attrs): the
git guard's check (:mod:`oxtail_mcp.commands.guardcheck`) imports it on every
commit, and attrs alone would cost that start-up tens of milliseconds.

Refused with :class:`PatternError` (a clear message naming the fault): empty,
leading or trailing blanks, control characters, ``!`` negation, ``#`` comments,
empty, ``.`` or ``..`` segments, an unclosed ``[``, POSIX classes
(``[[:alpha:]]``), a trailing backslash.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the guard's check pays for every import
if TYPE_CHECKING:
    from collections.abc import Callable, Hashable
    from typing import TypeVar

    K = TypeVar("K", bound=Hashable)
    V = TypeVar("V")

SLASH = ord("/")
MAX_PATTERN_CHARS = 512


class PatternError(ValueError):
    """A pattern that is not valid reservation syntax; ``str()`` says why, for the caller to fix."""


class CharSet:
    """A set of code points: ``ranges`` (inclusive), or everything but them when ``negated``."""

    __slots__ = ("negated", "ranges")

    def __init__(self, negated: bool, ranges: tuple[tuple[int, int], ...]) -> None:
        self.negated = negated
        self.ranges = ranges

    def has(self, point: int) -> bool:
        inside = any(lo <= point <= hi for lo, hi in self.ranges)
        return inside != self.negated


NON_SLASH = CharSet(True, ((SLASH, SLASH),))


def _lit(ch: str) -> CharSet:
    return CharSet(False, ((ord(ch), ord(ch)),))


def common_char(a: CharSet, b: CharSet) -> str | None:
    """A character in both sets (a readable one when there is a choice), or None.

    Both sets are unions of intervals (or their complements), so their
    intersection, if not empty, contains 0 or the start ``lo`` or the end
    ``hi + 1`` of one of the intervals: checking those points is exact.
    """
    points = [ord("x"), ord("a"), ord("0"), ord("_")]
    for lo, hi in (*a.ranges, *b.ranges):
        points += [lo, hi + 1]
    points.append(0)
    for point in points:
        if 0 <= point <= 0x10FFFF and a.has(point) and b.has(point):
            return chr(point)
    return None


class Automaton:
    """A nondeterministic automaton: state 0 starts; ``edges[s]`` are ``(charset, next)``, ``eps[s]``
    the moves that read nothing; ``accept`` the states where a whole path may end."""

    __slots__ = ("accept", "edges", "eps")

    def __init__(
        self,
        edges: tuple[tuple[tuple[CharSet, int], ...], ...],
        eps: tuple[tuple[int, ...], ...],
        accept: frozenset[int],
    ) -> None:
        self.edges = edges
        self.eps = eps
        self.accept = accept


class _Builder:
    def __init__(self) -> None:
        self.edges: list[list[tuple[CharSet, int]]] = []
        self.eps: list[list[int]] = []

    def state(self) -> int:
        self.edges.append([])
        self.eps.append([])
        return len(self.edges) - 1

    def edge(self, a: int, chars: CharSet, b: int) -> None:
        self.edges[a].append((chars, b))

    def skip(self, a: int, b: int) -> None:
        self.eps[a].append(b)

    def segments_from(self, cur: int, *, leading_slash: bool) -> int:
        """``(/seg)+`` with a leading ``/``, else ``seg(/seg)*``: one or more non-empty segments."""
        first = self.state()
        if leading_slash:
            self.edge(cur, _lit("/"), first)
        else:
            self.skip(cur, first)
        inside = self.state()
        self.edge(first, NON_SLASH, inside)
        self.edge(inside, NON_SLASH, inside)
        self.edge(inside, _lit("/"), first)
        end = self.state()
        self.skip(inside, end)
        return end

    def freeze(self, accept: set[int]) -> Automaton:
        return Automaton(
            edges=tuple(tuple(e) for e in self.edges),
            eps=tuple(tuple(e) for e in self.eps),
            accept=frozenset(accept),
        )


_WILDCARDS = frozenset("*?[")


def _check_text(text: str) -> None:
    if not isinstance(text, str) or not text:
        raise PatternError("a pattern must be a non-empty string")
    if len(text) > MAX_PATTERN_CHARS:
        raise PatternError(f"a pattern is at most {MAX_PATTERN_CHARS} characters")
    if text != text.strip():
        raise PatternError(f"{text!r}: no leading or trailing blanks")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise PatternError(f"{text!r}: control characters are not allowed")
    if text.startswith("!"):
        raise PatternError(f"{text!r}: negated patterns cannot be reserved")
    if "\\/" in text:
        raise PatternError(f"{text!r}: a backslash cannot escape /")
    if text.startswith("#"):
        raise PatternError(f"{text!r}: a leading # makes a gitignore comment; write \\# for a literal #")


def _segment_tokens(b: _Builder, cur: int, seg: str, whole: str) -> int:
    """The states for one segment without ``/``; returns the state after it."""
    if seg.replace("*", "") == "":  # "*", "***": one or more characters of one segment
        nxt = b.state()
        b.edge(cur, NON_SLASH, nxt)
        b.edge(nxt, NON_SLASH, nxt)
        return nxt
    i = 0
    while i < len(seg):
        ch = seg[i]
        nxt = b.state()
        if ch == "*":
            while i + 1 < len(seg) and seg[i + 1] == "*":
                i += 1
            loop = b.state()
            b.skip(cur, loop)
            b.edge(loop, NON_SLASH, loop)
            b.skip(loop, nxt)
        elif ch == "?":
            b.edge(cur, NON_SLASH, nxt)
        elif ch == "[":
            chars, i = _char_class(seg, i, whole)
            b.edge(cur, chars, nxt)
        elif ch == "\\":
            if i + 1 >= len(seg):
                raise PatternError(f"{whole!r}: a trailing backslash escapes nothing")
            i += 1
            b.edge(cur, _lit(seg[i]), nxt)
        else:
            b.edge(cur, _lit(ch), nxt)
        cur = nxt
        i += 1
    return cur


def _char_class(seg: str, start: int, whole: str) -> tuple[CharSet, int]:
    """Parse ``[...]`` at ``seg[start]``; returns the set (never containing ``/``) and the index of ``]``."""
    i = start + 1
    negated = i < len(seg) and seg[i] in "!^"
    if negated:
        i += 1
    ranges: list[tuple[int, int]] = []
    first = True
    while True:
        if i >= len(seg):
            raise PatternError(f"{whole!r}: unclosed [ (write \\[ for a literal [)")
        ch = seg[i]
        if ch == "]" and not first:
            break
        if ch == "[" and i + 1 < len(seg) and seg[i + 1] == ":":
            raise PatternError(f"{whole!r}: POSIX classes such as [[:alpha:]] are not supported")
        if ch == "\\":
            if i + 1 >= len(seg):
                raise PatternError(f"{whole!r}: a trailing backslash escapes nothing")
            i += 1
            ch = seg[i]
        lo = ord(ch)
        if i + 2 < len(seg) and seg[i + 1] == "-" and seg[i + 2] != "]":
            i += 2
            hi_ch = seg[i]
            if hi_ch == "\\" and i + 1 < len(seg):
                i += 1
                hi_ch = seg[i]
            hi = ord(hi_ch)
            if hi >= lo:
                ranges.append((lo, hi))
        else:
            ranges.append((lo, lo))
        first = False
        i += 1
    if negated:
        return CharSet(True, (*ranges, (SLASH, SLASH))), i
    return CharSet(False, tuple(r for r in ranges if not r[0] <= SLASH <= r[1])), i


def _has_wildcard(seg: str) -> bool:
    i = 0
    while i < len(seg):
        if seg[i] == "\\":
            i += 2
            continue
        if seg[i] in _WILDCARDS:
            return True
        i += 1
    return False


def _split(text: str) -> list[str]:
    """Segments split on unescaped ``/`` (a backslash keeps the next character in its segment)."""
    out, cur, i = [], "", 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur += text[i : i + 2]
            i += 2
            continue
        if ch == "/":
            out.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    out.append(cur)
    return out


_COMPILED: dict[str, Automaton] = {}
_OVERLAPS: dict[tuple[str, str], str | None] = {}


def _memo(cache: dict[K, V], limit: int, key: K, make: Callable[[], V]) -> V:
    """``make()``, remembered under ``key``; a full cache starts over (no LRU bookkeeping: the
    patterns of one project repeat, and ``functools`` costs the guard's start-up its import)."""
    try:
        return cache[key]
    except KeyError:
        pass
    value = make()  # an exception (a PatternError) is not remembered
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value


def compile_pattern(text: str) -> Automaton:
    """The automaton of one pattern; raises PatternError for anything the module docstring refuses."""
    return _memo(_COMPILED, 4096, text, lambda: _compile(text))


def _compile(text: str) -> Automaton:
    _check_text(text)
    body = text
    if body.startswith("/"):  # gitignore's explicit anchor: every pattern is anchored anyway
        body = body[1:]
    directory = body.endswith("/")
    if directory:
        body = body[:-1]
    segments = _split(body)
    if any(s == "" for s in segments):
        raise PatternError(f"{text!r}: empty path segment (a doubled or lone /)")
    if any(s in (".", "..") for s in segments):
        raise PatternError(f"{text!r}: . and .. segments are not allowed (stay inside the project)")
    b = _Builder()
    cur = b.state()
    last = len(segments) - 1
    accept: set[int] = set()
    for index, seg in enumerate(segments):
        if seg == "**" and index == last:
            cur = b.segments_from(cur, leading_slash=False)
            accept.add(cur)
            return b.freeze(accept)
        if seg == "**":
            cur = _dirs(b, cur)
            continue
        cur = _segment_tokens(b, cur, seg, text)
        if index < last:
            nxt = b.state()
            b.edge(cur, _lit("/"), nxt)
            cur = nxt
    final = segments[last]
    names_files_only = not directory and _has_wildcard(final) and final.strip("*?") != ""
    if not directory:
        accept.add(cur)
    if not names_files_only:
        accept.add(b.segments_from(cur, leading_slash=True))
    return b.freeze(accept)


def _dirs(b: _Builder, cur: int) -> int:
    """``(seg/)*``: zero or more whole directories (what ``**/`` stands for)."""
    loop = b.state()
    b.skip(cur, loop)
    inside = b.state()
    b.edge(loop, NON_SLASH, inside)
    b.edge(inside, NON_SLASH, inside)
    b.edge(inside, _lit("/"), loop)
    return loop


def _closure(auto: Automaton, states: set[int]) -> set[int]:
    todo = list(states)
    seen = set(states)
    while todo:
        for nxt in auto.eps[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def matches(pattern: str, path: str) -> bool:
    """Whether ``path`` (relative to the project root, ``/``-separated) is covered by ``pattern``.

    A path that does not start with the pattern's literal head is answered without compiling the
    pattern (the guard checks every staged path against every reservation in a fresh process).
    """
    if not path.startswith(literal_head(pattern)):
        return False
    auto = compile_pattern(pattern)
    current = _closure(auto, {0})
    for ch in path:
        point = ord(ch)
        step = {nxt for s in current for chars, nxt in auto.edges[s] if chars.has(point)}
        if not step:
            return False
        current = _closure(auto, step)
    return bool(current & auto.accept)


def overlap_witness(a: str, b: str) -> str | None:
    """A path both patterns cover (the shortest), or None when no path can match both.

    A breadth-first search over pairs of states of the two automata: exact,
    and at most ``len(a states) * len(b states)`` pairs.
    """
    return _memo(_OVERLAPS, 16384, (a, b), lambda: _witness(a, b))


def _witness(a: str, b: str) -> str | None:
    from collections import deque  # here: the guard's check only matches

    left, right = compile_pattern(a), compile_pattern(b)
    head_a, head_b = literal_head(a), literal_head(b)
    if not (head_a.startswith(head_b) or head_b.startswith(head_a)):
        return None  # every path of a starts with head_a, every path of b with head_b
    start = (0, 0)
    parent: dict[tuple[int, int], tuple[tuple[int, int], str] | None] = {start: None}
    queue = deque([start])
    while queue:
        pair = queue.popleft()
        p, q = pair
        if p in left.accept and q in right.accept:
            return _trace(parent, pair)
        moves: list[tuple[tuple[int, int], str]] = [((n, q), "") for n in left.eps[p]]
        moves += [((p, n), "") for n in right.eps[q]]
        for chars_l, n_l in left.edges[p]:
            for chars_r, n_r in right.edges[q]:
                ch = common_char(chars_l, chars_r)
                if ch is not None:
                    moves.append(((n_l, n_r), ch))
        for nxt, ch in moves:
            if nxt not in parent:
                parent[nxt] = (pair, ch)
                queue.append(nxt)
    return None


def literal_head(pattern: str) -> str:
    """The text every path the (anchored) pattern covers starts with: its characters up to the
    first wildcard or escape (a cheap, exact way to tell most unrelated patterns apart)."""
    body = pattern[1:] if pattern.startswith("/") else pattern
    for index, ch in enumerate(body):
        if ch in "*?[\\":
            return body[:index]
    return body


def _trace(parent: dict[tuple[int, int], tuple[tuple[int, int], str] | None], pair: tuple[int, int]) -> str:
    out: list[str] = []
    step = parent[pair]
    while step is not None:
        pair, ch = step
        out.append(ch)
        step = parent[pair]
    return "".join(reversed(out))


def overlaps(a: str, b: str) -> bool:
    """Whether some path can match both patterns (see :func:`overlap_witness`)."""
    if a == b:
        compile_pattern(a)
        return True
    return overlap_witness(a, b) is not None
