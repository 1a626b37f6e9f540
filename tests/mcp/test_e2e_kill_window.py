"""The duplicate window under SIGKILL of a reading server (issue 13 item 7), end to end: real
``oxtail-mcp`` processes over stdio with the official client, peers sending all along. Nothing
acknowledged is lost; duplicates (same id, delivered again after a kill between the response write
and the settle) are reported. benchmarks/bench_kill_window.py runs the same with 200 kills."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.kill_window import run_kills


@pytest.mark.slow
def test_a_reader_sigkilled_at_random_moments_loses_nothing_acknowledged(tmp_path: Path) -> None:
    run = run_kills(tmp_path, kills=8, senders=3, seed=13)
    print(f"kill window: {run}")  # the measurement is the point (pytest -s shows it)
    assert run.sent > 0 and run.lost == 0
    assert set(run.refused) <= {"target-not-found"}
    # Only the batch whose response was written and not yet settled can come back: one per kill.
    assert run.duplicated <= run.kills * run.largest_read, run
