"""The naming rules the hook shares with the stores (oxtail_core/naming.py), checked against their
definitions: SHA-256 over the UTF-8 that JavaScript would produce, and the UUID shape as a pattern."""

from __future__ import annotations

import hashlib
import re

from hypothesis import given
from hypothesis import strategies as st

from oxtail_core.naming import canonical_session_id, hash32, is_uuid_shaped
from oxtail_core.wire import utf8

UUID = re.compile(r"^[0-9a-fA-F-]{36}\Z")
ids = st.one_of(
    st.text(),
    st.text(alphabet="0123456789abcdefABCDEF-xz\n", min_size=35, max_size=37),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
)


@given(st.text())  # any code points, lone surrogates included
def test_hash32_is_the_first_32_hex_of_sha256_over_javascript_utf8(text: str) -> None:
    assert hash32(text) == hashlib.sha256(utf8(text)).hexdigest()[:32]


@given(ids)
def test_uuid_shaped_ids_are_lowercased_and_nothing_else_changes(session_id: str) -> None:
    shaped = bool(UUID.match(session_id))
    assert is_uuid_shaped(session_id) is shaped
    assert canonical_session_id(session_id) == (session_id.lower() if shaped else session_id)


def test_a_lone_surrogate_counts_as_its_replacement_character_as_javascript_encodes_it() -> None:
    assert hash32("agent-\ud800") == hash32("agent-\ufffd")
