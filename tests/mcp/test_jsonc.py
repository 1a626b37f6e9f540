"""The JSONC editor: what it reads is what ``json`` reads, and an edit changes only what it edits.

Property tests (review finding 6): for any JSON document written in any
layout, with comments and trailing commas sprinkled in, :func:`parse_jsonc`
reads the same value as :func:`json.loads` of the strict text; every editor
produces strict JSON when its input was strict, with exactly the intended
change, and keeps the bytes before the edited span.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oxtail_mcp.hooks.jsonc import (
    JsoncError,
    add_member,
    append_item,
    parse_jsonc,
    remove_item,
    remove_member,
    replace_node,
)

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=12)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
_OBJECTS = st.dictionaries(st.text(max_size=6), _VALUES, max_size=5)
_LAYOUT = st.sampled_from([None, 0, 2, 4, "\t"])


def _dump(value: Any, indent: Any, ascii_only: bool) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ascii_only)


def _with_comments(text: str, comments: list[str]) -> str:
    """Comments after each separator, and a trailing comma before each closing bracket of a
    non-empty container (outside strings)."""
    out: list[str] = []
    in_string = escaped = False
    last = ""  # the last character outside strings and comments that was not whitespace
    pick = iter(comments * (len(text) + 1))
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            out.append(char)
            continue
        if char == '"':
            in_string = True
        if char in "}]" and last not in ("[", "{"):
            out.append(",")
        out.append(char)
        if char in ",:[{":
            out.append(next(pick))
        if not char.isspace():
            last = char
    return "".join(out)


@given(_OBJECTS, _LAYOUT, st.booleans())
def test_strict_json_reads_as_json_does(value: dict[str, Any], indent: Any, ascii_only: bool) -> None:
    text = _dump(value, indent, ascii_only)
    assert parse_jsonc(text).plain() == json.loads(text)


@given(_OBJECTS, _LAYOUT, st.lists(st.sampled_from([" /* c */ ", "// line\n", "\n  ", " "]), min_size=1))
def test_comments_and_trailing_commas_do_not_change_the_value(
    value: dict[str, Any], indent: Any, comments: list[str]
) -> None:
    strict = _dump(value, indent, True)
    assert parse_jsonc(_with_comments(strict, comments)).plain() == json.loads(strict)


@given(_OBJECTS, _LAYOUT, st.text(max_size=6), _VALUES)
def test_add_member_adds_exactly_one_member(value: dict[str, Any], indent: Any, key: str, new: Any) -> None:
    text = _dump(value, indent, False)
    root = parse_jsonc(text)
    edited = add_member(text, root, key, new)
    if key in value:  # a duplicate: json takes the last, our reader (like get) the first
        assert json.loads(edited)[key] == new and parse_jsonc(edited).plain() == value
    else:
        assert json.loads(edited) == {**value, key: new}
    last = root.members[-1][2].end if root.members else root.start + 1
    assert edited[:last] == text[:last]


@given(_OBJECTS.filter(bool), _LAYOUT, st.data())
def test_replace_and_remove_member_touch_only_that_member(
    value: dict[str, Any], indent: Any, data: st.DataObject
) -> None:
    text = _dump(value, indent, False)
    root = parse_jsonc(text)
    key = data.draw(st.sampled_from(sorted(value)))
    new = data.draw(_VALUES)
    node = root.get(key)
    assert node is not None
    replaced = replace_node(text, node, new)
    assert json.loads(replaced) == {**value, key: new}
    assert replaced[: node.start] == text[: node.start]
    removed = remove_member(text, root, key)
    assert json.loads(removed) == {k: v for k, v in value.items() if k != key}


@given(st.lists(_VALUES, max_size=5), _LAYOUT, _VALUES, st.data())
def test_array_edits_keep_order_and_the_other_items(
    items: list[Any], indent: Any, new: Any, data: st.DataObject
) -> None:
    text = _dump({"a": items}, indent, False)
    array = parse_jsonc(text).get("a")
    assert array is not None
    assert json.loads(append_item(text, array, new)) == {"a": [*items, new]}
    if items:
        index = data.draw(st.integers(0, len(items) - 1))
        assert json.loads(remove_item(text, array, index)) == {"a": items[:index] + items[index + 1 :]}


def test_comments_inside_an_emptied_container_are_kept() -> None:
    text = '{"a": [\n  // keep me\n  1\n]}'
    array = parse_jsonc(text).get("a")
    assert array is not None
    edited = remove_item(text, array, 0)
    assert "// keep me" in edited and parse_jsonc(edited).plain() == {"a": []}


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"a": 1 /* open', "line 1"),
        ('{"a": }', "line 1, column 7"),
        ('{"a": 1}\nx', "line 2"),
        ('{\n"a" 1}', "line 2"),
    ],
)
def test_bad_text_is_refused_with_its_place(text: str, where: str) -> None:
    with pytest.raises(JsoncError, match=where):
        parse_jsonc(text)
