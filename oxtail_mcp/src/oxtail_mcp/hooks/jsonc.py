"""A small JSONC reader and editor that keeps every byte it does not change.

``settings.json`` and Codex's ``hooks.json`` are written by hand, with comments
and the author's layout; rewriting them with ``json.dumps`` would throw both
away. :func:`parse_jsonc` reads JSON with ``//`` and ``/* */`` comments and
trailing commas into :class:`Node` trees that remember where each value sits,
and the editors splice new text into the original at those spans, matching
the surrounding indentation. Values are written as strict JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import attrs


class JsoncError(ValueError):
    """Text that is not JSON (with comments and trailing commas); says where."""


# A small JSONC reader that remembers where every value sits in the text ------------------
@attrs.define
class Node:
    """A parsed value and its span ``text[start:end]``; containers keep their children in order."""

    kind: str  # "object", "array" or "scalar"
    start: int
    end: int
    value: Any = None
    members: list[tuple[str, int, Node]] = attrs.field(factory=list)  # (key, key start, value)
    items: list[Node] = attrs.field(factory=list)

    def get(self, key: str) -> Node | None:
        """The value of the first member named ``key`` (objects only)."""
        return next((node for name, _, node in self.members if name == key), None)

    def plain(self) -> Any:
        """The Python value (dicts keep the first of duplicate keys, like :meth:`get`)."""
        if self.kind == "object":
            out: dict[str, Any] = {}
            for name, _, node in self.members:
                out.setdefault(name, node.plain())
            return out
        if self.kind == "array":
            return [item.plain() for item in self.items]
        return self.value


_SCALAR = re.compile(r'"(?:[^"\\\x00-\x1f]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null')


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> JsoncError:
        line = self.text.count("\n", 0, self.pos) + 1
        column = self.pos - (self.text.rfind("\n", 0, self.pos) + 1) + 1
        return JsoncError(f"{what} at line {line}, column {column}")

    def skip(self) -> None:
        """Skip whitespace and comments."""
        text = self.text
        while self.pos < len(text):
            if text[self.pos] in " \t\r\n\ufeff":
                self.pos += 1
            elif text.startswith("//", self.pos):
                newline = text.find("\n", self.pos)
                self.pos = len(text) if newline < 0 else newline + 1
            elif text.startswith("/*", self.pos):
                close = text.find("*/", self.pos + 2)
                if close < 0:
                    raise self.fail("unterminated comment")
                self.pos = close + 2
            else:
                return

    def value(self) -> Node:
        self.skip()
        start = self.pos
        char = self.text[start : start + 1]
        if char == "{":
            return self.container(start, "object", "}")
        if char == "[":
            return self.container(start, "array", "]")
        match = _SCALAR.match(self.text, start)
        if not match:
            raise self.fail("expected a JSON value")
        self.pos = match.end()
        try:
            value = json.loads(match.group())
        except ValueError as exc:
            raise self.fail(f"bad value ({exc})") from exc
        return Node("scalar", start, self.pos, value)

    def container(self, start: int, kind: str, close: str) -> Node:
        node = Node(kind, start, start)
        self.pos += 1
        while True:
            self.skip()
            if self.text.startswith(close, self.pos):
                self.pos += 1
                node.end = self.pos
                return node
            if kind == "object":
                key_start = self.pos
                key = self.value()
                if not isinstance(key.value, str) or key.kind != "scalar":
                    self.pos = key_start
                    raise self.fail("expected a string key")
                self.skip()
                if not self.text.startswith(":", self.pos):
                    raise self.fail("expected ':'")
                self.pos += 1
                node.members.append((key.value, key_start, self.value()))
            else:
                node.items.append(self.value())
            self.skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1
            elif not self.text.startswith(close, self.pos):
                raise self.fail(f"expected ',' or '{close}'")


def parse_jsonc(text: str) -> Node:
    """Parse JSON with comments and trailing commas; whitespace-only text is ``{}``."""
    if not text.strip(" \t\r\n\ufeff"):
        return Node("object", 0, 0)
    reader = _Reader(text)
    root = reader.value()
    reader.skip()
    if reader.pos != len(text):
        raise reader.fail("unexpected text after the settings object")
    return root


# Splicing edits --------------------------------------
def _line_indent(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    prefix = text[start:pos]
    return prefix if not prefix.strip() else prefix[: len(prefix) - len(prefix.lstrip())]


def _format(value: Any, indent: str) -> str:
    """``value`` as 2-space-indented JSON whose continuation lines start at ``indent``."""
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + indent)


def _insert(text: str, container: Node, entry: str) -> str:
    """Add ``entry`` (a member ``"k": v`` or an element) at the end of ``container``."""
    children = [n for _, _, n in container.members] if container.kind == "object" else container.items
    if not children:
        if container.end == container.start:  # an empty file
            return "{\n  " + entry + "\n}\n"
        indent = _line_indent(text, container.start)
        return f"{text[: container.start + 1]}\n{indent}  {entry}\n{indent}{text[container.start + 1 :]}"
    last = children[-1]
    first_start = container.members[-1][1] if container.kind == "object" else last.start
    line_start = text.rfind("\n", 0, first_start) + 1
    if text[line_start:first_start].strip():
        return f"{text[: last.end]}, {entry}{text[last.end :]}"
    return f"{text[: last.end]},\n{text[line_start:first_start]}{entry}{text[last.end :]}"


def _entry_indent(text: str, container: Node) -> str:
    """The indentation a new child of ``container`` gets (matching its siblings when it has some)."""
    children = [start for _, start, _ in container.members] if container.kind == "object" else []
    children += [n.start for n in container.items]
    if children:
        return _line_indent(text, children[-1])
    return _line_indent(text, container.start) + "  "


def add_member(text: str, obj: Node, key: str, value: Any) -> str:
    entry = json.dumps(key, ensure_ascii=False) + ": " + _format(value, _entry_indent(text, obj))
    return _insert(text, obj, entry)


def append_item(text: str, array: Node, value: Any) -> str:
    return _insert(text, array, _format(value, _entry_indent(text, array)))


def replace_node(text: str, node: Node, value: Any) -> str:
    """Put ``value`` where ``node`` was, on one line if the old value was written on one line."""
    if "\n" in text[node.start : node.end]:
        new = _format(value, _line_indent(text, node.start))
    else:
        new = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text[: node.start] + new + text[node.end :]


def _remove(text: str, spans: Sequence[tuple[int, int]], index: int, open_at: int, close_at: int) -> str:
    """Delete child ``index`` (spans are the children's ``(start, end)``) with one adjoining comma."""
    start, end = spans[index]
    if len(spans) == 1:  # keep any comments inside; an emptied container becomes [] or {}
        after = text[end : close_at - 1].lstrip(" \t")
        inner = text[open_at + 1 : start] + (after[1:] if after.startswith(",") else after)
        return text[: open_at + 1] + (inner if inner.strip() else "") + text[close_at - 1 :]
    if index + 1 < len(spans):
        return text[:start] + text[spans[index + 1][0] :]
    return text[: spans[index - 1][1]] + text[end:]


def remove_item(text: str, array: Node, index: int) -> str:
    spans = [(n.start, n.end) for n in array.items]
    return _remove(text, spans, index, array.start, array.end)


def remove_member(text: str, obj: Node, key: str) -> str:
    spans = [(start, node.end) for _, start, node in obj.members]
    index = next(i for i, (name, _, _) in enumerate(obj.members) if name == key)
    return _remove(text, spans, index, obj.start, obj.end)
