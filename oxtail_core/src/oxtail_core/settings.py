"""Tunables, parsed once from an environment mapping with the reference's rules.

Parsing takes a mapping instead of reading ``os.environ`` so the core stays
free of hidden inputs; adapters pass ``os.environ``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Literal

import attrs

WakeStrategy = Literal["auto", "legacy", "off"]

_DECIMAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")
_PREFIXED = re.compile(r"^(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+)\Z")


def js_number(text: str) -> float:
    """JavaScript ``Number(text)``: whitespace-trimmed numeric literal, ``''`` is 0, anything else NaN."""
    text = text.strip()
    if not text:
        return 0.0
    if _DECIMAL.match(text):
        return float(text)
    if _PREFIXED.match(text):
        return float(int(text, 0))
    return math.nan


def positive_number(env: Mapping[str, str], name: str, default: float) -> float:
    """The PosNum rule: a finite value > 0 is used as is (fractions kept), anything else is the default."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = js_number(raw)
    return value if math.isfinite(value) and value > 0 else default


def floored_number(env: Mapping[str, str], name: str, default: int) -> int:
    """The Floor rule (``OXTAIL_RECEIVED_MAX``): like PosNum, then floored."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = js_number(raw)
    return math.floor(value) if math.isfinite(value) and value > 0 else default


def kill_switch_off(env: Mapping[str, str]) -> bool:
    """``OXTAIL_AUTOWAKE`` is off iff it reads ``off`` after trimming, in any case."""
    return env.get("OXTAIL_AUTOWAKE", "").strip().lower() == "off"


def heals_off(env: Mapping[str, str]) -> bool:
    """Both watchdogs stop when ``OXTAIL_SELF_WAKE`` or ``OXTAIL_AUTOWAKE`` is off (the kill-switch
    rule); re-read at every tick, so a driver passes the live environment."""
    return env.get("OXTAIL_SELF_WAKE", "").strip().lower() == "off" or kill_switch_off(env)


def wake_strategy(env: Mapping[str, str]) -> WakeStrategy:
    """``OXTAIL_ASK_PEER_WAKE_STRATEGY``; we trim it too (the reference read ``" off"`` as ``auto``)."""
    value = env.get("OXTAIL_ASK_PEER_WAKE_STRATEGY", "auto").strip().lower()
    if value == "legacy":
        return "legacy"
    if value == "off":
        return "off"
    return "auto"


@attrs.frozen
class Settings:
    """Every knob of the messaging core, with the reference's defaults (milliseconds unless named)."""

    ask_timeout_ms: float = 60_000
    ask_max_timeout_ms: float = 100_000
    ask_grace_ms: float = 500
    ask_poll_ms: float = 200
    codex_submit_gap_ms: float = 500
    wake_strategy: WakeStrategy = "auto"
    busy_ttl_ms: float = 600_000
    autowake_off: bool = False
    fresh_idle_ms: float = 300_000
    min_interval_ms: float = 4_000
    dedupe_ttl_ms: float = 3_600_000
    pending_ttl_ms: float = 3_600_000
    debounce_ms: float = 1_000
    received_max: int = 1_000
    read_max_messages: float = 50
    read_max_body_bytes: float = 65_536
    self_wake_interval_ms: float = 30_000
    self_wake_grace_ms: float = 15_000
    self_wake_throttle_ms: float = 60_000
    self_wake_cap: float = 3
    pending_wake_ttl_ms: float = 3_600_000
    waiter_heal_interval_ms: float = 60_000
    waiter_heal_grace_ms: float = 240_000
    waiter_heal_throttle_ms: float = 90_000
    waiter_heal_cap: float = 3
    relay_outcome_ms: float = 1_500
    """A remote wake's first wait for the relay's report (plus the Codex gap), then it withdraws."""
    relay_silent_ms: float = 2_000
    """How much longer a sender waits for a relay that claimed the wake (then ``fired_unconfirmed``)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse every variable of the messaging spec from ``env`` (typically ``os.environ``)."""
        return cls(
            ask_timeout_ms=positive_number(env, "OXTAIL_ASK_PEER_TIMEOUT_MS", 60_000),
            ask_max_timeout_ms=positive_number(env, "OXTAIL_ASK_PEER_MAX_TIMEOUT_MS", 100_000),
            wake_strategy=wake_strategy(env),
            busy_ttl_ms=positive_number(env, "OXTAIL_ACTIVITY_BUSY_TTL_MS", 600_000),
            autowake_off=kill_switch_off(env),
            fresh_idle_ms=positive_number(env, "OXTAIL_AUTOWAKE_FRESH_IDLE_MS", 300_000),
            min_interval_ms=positive_number(env, "OXTAIL_AUTOWAKE_MIN_INTERVAL_MS", 4_000),
            dedupe_ttl_ms=positive_number(env, "OXTAIL_AUTOWAKE_DEDUPE_TTL_MS", 3_600_000),
            pending_ttl_ms=positive_number(env, "OXTAIL_PENDING_ASK_TTL_MS", 3_600_000),
            debounce_ms=positive_number(env, "OXTAIL_WAKE_DEBOUNCE_MS", 1_000),
            received_max=floored_number(env, "OXTAIL_RECEIVED_MAX", 1_000),
            read_max_messages=positive_number(env, "OXTAIL_READ_MAX_MESSAGES", 50),
            read_max_body_bytes=positive_number(env, "OXTAIL_READ_MAX_BODY_BYTES", 65_536),
            self_wake_interval_ms=positive_number(env, "OXTAIL_SELF_WAKE_INTERVAL_MS", 30_000),
            self_wake_grace_ms=positive_number(env, "OXTAIL_SELF_WAKE_GRACE_MS", 15_000),
            self_wake_throttle_ms=positive_number(env, "OXTAIL_SELF_WAKE_THROTTLE_MS", 60_000),
            self_wake_cap=positive_number(env, "OXTAIL_SELF_WAKE_CAP", 3),
            pending_wake_ttl_ms=positive_number(env, "OXTAIL_PENDING_WAKE_TTL_MS", 3_600_000),
            waiter_heal_interval_ms=positive_number(env, "OXTAIL_WAITER_HEAL_INTERVAL_MS", 60_000),
            waiter_heal_grace_ms=positive_number(env, "OXTAIL_WAITER_HEAL_GRACE_MS", 240_000),
            waiter_heal_throttle_ms=positive_number(env, "OXTAIL_WAITER_HEAL_THROTTLE_MS", 90_000),
            waiter_heal_cap=positive_number(env, "OXTAIL_WAITER_HEAL_CAP", 3),
        )
