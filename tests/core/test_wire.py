"""The JSON dialect and derived keys, against the reference's test vectors."""

from __future__ import annotations

import pytest

from oxtail_core.ids import hash32, is_pane_id, is_uuid_shaped, new_id, pair_key, same_session_id
from oxtail_core.wire import WireError, dumps, loads, utf8len


def test_dumps_is_compact_raw_unicode_and_js_escapes() -> None:
    assert dumps({"a": 1, "b": "é🦊"}) == '{"a":1,"b":"é🦊"}'
    assert dumps("\x00\x1f\x7f\u2028/") == '"\\u0000\\u001f\x7f\u2028/"'
    assert dumps('a"b\\c\n\t\b\f\r') == '"a\\"b\\\\c\\n\\t\\b\\f\\r"'


def test_dumps_escapes_lone_surrogates_lowercase() -> None:
    assert dumps("x\ud83ey") == '"x\\ud83ey"'
    assert dumps("\udc00") == '"\\udc00"'


def test_integral_floats_print_as_integers() -> None:
    assert dumps({"timeout_ms": 60000.0, "f": 1.5}) == '{"timeout_ms":60000,"f":1.5}'


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", "-Infinity", "{", ""])
def test_loads_is_strict(text: str) -> None:
    with pytest.raises(WireError):
        loads(text)


def test_loads_replaces_invalid_utf8() -> None:
    assert loads(b'"a\xffb"') == "a\ufffdb"


def test_utf8len_counts_lone_surrogate_as_three() -> None:
    assert utf8len("abc") == 3
    assert utf8len("🦊") == 4
    assert utf8len("\ud800") == 3


def test_reference_hash_vectors() -> None:
    assert hash32("dddddddd-0000-0000-0000-000000000004") == "82821dccea87eb640dd64cd8cf569bca"
    assert pair_key("aaaaaaaa-0000-0000-0000-000000000001", "5bf1c2f189625250") == (
        "c2acc5f69e62cd8ef71fbea8ae93c621"
    )
    assert pair_key("11111111-2222-3333-4444-555555555555", "req-a") == "c6a80f0bd13898f7de1e0fa0bf2b6b04"
    assert hash32("11111111-2222-3333-4444-555555555555") == "666ff6ccaa5b3c07feaa3a95d3a4bd2c"


def test_ids_and_shapes() -> None:
    ident = new_id()
    assert len(ident) == 16 and int(ident, 16) >= 0 and ident == ident.lower()
    assert new_id() != ident
    assert is_uuid_shaped("AAAAAAAA-0000-0000-0000-000000000001")
    assert not is_uuid_shaped("alpha")
    assert same_session_id("AAAAAAAA-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000001")
    assert not same_session_id("Alpha", "alpha")
    assert not same_session_id(None, None)
    for good in ("%0", "%42"):
        assert is_pane_id(good)
    for bad in ("1", "%", "%1.2", "%1; rm -rf /", "victim-session", "", None, "%1\n"):
        assert not is_pane_id(bad)
