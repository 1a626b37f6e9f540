"""Environment parsing follows the reference's rules (PosNum, Floor, kill switch, strategy)."""

from __future__ import annotations

import math

import pytest

from oxtail_core.settings import Settings, js_number


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e3", 1000.0), (".5", 0.5), ("5.", 5.0), ("+7", 7.0), (" 42 ", 42.0), ("0x10", 16.0), ("", 0.0)],
)
def test_js_number(text: str, value: float) -> None:
    assert js_number(text) == value


@pytest.mark.parametrize("text", ["10ms", "1_000", "abc", "--1"])
def test_js_number_nan(text: str) -> None:
    assert math.isnan(js_number(text))


def test_defaults_and_overrides() -> None:
    assert Settings.from_env({}) == Settings()
    s = Settings.from_env(
        {
            "OXTAIL_ASK_PEER_TIMEOUT_MS": "1500.5",
            "OXTAIL_ASK_PEER_MAX_TIMEOUT_MS": "-3",
            "OXTAIL_RECEIVED_MAX": "10.9",
            "OXTAIL_AUTOWAKE": "  OFF ",
            "OXTAIL_ASK_PEER_WAKE_STRATEGY": " Legacy",
            "OXTAIL_READ_MAX_MESSAGES": "nope",
        }
    )
    assert s.ask_timeout_ms == 1500.5
    assert s.ask_max_timeout_ms == 100_000
    assert s.received_max == 10
    assert s.autowake_off is True
    assert s.wake_strategy == "legacy"
    assert s.read_max_messages == 50
    assert Settings.from_env({"OXTAIL_RECEIVED_MAX": "0.5"}).received_max == 0
    assert Settings.from_env({"OXTAIL_ASK_PEER_WAKE_STRATEGY": "bogus"}).wake_strategy == "auto"
    assert Settings.from_env({"OXTAIL_AUTOWAKE": "auto"}).autowake_off is False
