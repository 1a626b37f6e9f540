"""Issue 14 item 6: a lock sidecar unlinked by its holder never lets two processes hold the lock at once.

Real processes do read-increment-write on a counter under the lock, and every
holder unlinks the sidecar before releasing: with a lost exclusion the
counter would come out short.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from oxtail_fs.store.locks import hold

ROUNDS = 150
WORKERS = 4


def _worker(directory: str) -> None:
    counter = Path(directory) / "counter"
    lock = Path(directory) / "counter.lock"
    for _ in range(ROUNDS):
        with hold(lock, timeout_s=60, check_interval_s=0.0005) as held:
            value = int(counter.read_text() or "0")
            counter.write_text(str(value + 1))
            held.unlink_if_linked()


def test_holders_that_unlink_the_sidecar_still_exclude_each_other(tmp_path: Path) -> None:
    (tmp_path / "counter").write_text("0")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path),)) for _ in range(WORKERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    assert int((tmp_path / "counter").read_text()) == ROUNDS * WORKERS
    assert not (tmp_path / "counter.lock").exists()
