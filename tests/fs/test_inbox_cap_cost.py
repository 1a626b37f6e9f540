"""Issue 15 item 12 on the file store: a read costs what it takes, not what waits, in time and memory.

The cap itself is in the store contract (both stores); these are the file store's own promises:
a windowed take parses only its window and leaves the rest of the file alone (a few bytes of
``<inbox>.head`` move instead), garbage is set aside in bounded memory, and a kill at any point of
a prefix take loses and duplicates nothing.
"""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import pytest

from oxtail_core.convert import envelope_to_line
from oxtail_core.errors import InboxFull
from oxtail_core.model import Envelope
from oxtail_core.testing.contract import ALIVE, ME, ids, mint, take_all
from oxtail_fs.store import inbox as inbox_module
from oxtail_fs.store.fs_store import FsStore
from oxtail_fs.store.inbox import head_path


class Window:
    """A read-like selector: the first ``take`` messages, looking at no more than ``window``."""

    def __init__(self, take: int, window: int) -> None:
        self.take, self.window = take, window

    def __call__(self, messages: Sequence[Envelope]) -> range:
        return range(min(self.take, len(messages)))


class Crash(BaseException):
    pass


def fill(store: FsStore, count: int) -> None:
    for start in range(0, count, 1000):
        store.append(ME, [mint(i, "b" * 900) for i in range(start, min(count, start + 1000))])


def test_a_prefix_take_from_ten_thousand_waiting_parses_its_window_and_does_not_rewrite_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(FsStore(tmp_path / "home"), 10_000)
    store = FsStore(tmp_path / "home")  # a fresh process: nothing parsed yet
    path = store._layout.inbox(ME)
    before = os.stat(path)
    parsed: list[int] = []
    real = inbox_module.envelope_from_line

    def counting(line: str | bytes) -> Envelope:
        parsed.append(1)
        return real(line)

    monkeypatch.setattr(inbox_module, "envelope_from_line", counting)
    batch = store.take(ME, Window(50, 100), ALIVE)
    assert batch is not None and ids(batch.envelopes) == [mint(i).id for i in range(50)]
    assert len(parsed) <= 100
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    assert head_path(path).exists()
    monkeypatch.setattr(inbox_module, "envelope_from_line", real)
    assert store.depth(ME) == 9_950
    assert store.peek(ME, mint(10).id) is True  # in flight
    assert store.peek(ME, mint(60).id) is True  # waiting
    store.settle(batch)
    assert store.peek(ME, mint(10).id) is False  # taken and settled: not waiting although its bytes remain


def test_draining_everything_leaves_an_empty_inbox_and_no_head(tmp_path: Path) -> None:
    store = FsStore(tmp_path / "home")
    fill(store, 300)
    while (batch := store.take(ME, Window(50, 60), ALIVE)) is not None:
        store.settle(batch)
    path = store._layout.inbox(ME)
    assert path.read_bytes() == b"" and not head_path(path).exists()


def test_taken_prefixes_are_cut_off_once_they_outweigh_what_waits(tmp_path: Path) -> None:
    store = FsStore(tmp_path / "home")
    fill(store, 3000)  # ~3 MB
    path = store._layout.inbox(ME)
    sizes = []
    for _ in range(40):
        batch = store.take(ME, Window(50, 60), ALIVE)
        assert batch is not None
        store.settle(batch)
        sizes.append(os.stat(path).st_size)
    assert min(sizes) < sizes[0]  # a rewrite happened on the way
    assert store.depth(ME) == 1000
    assert ids(take_all(store).envelopes) == [mint(i).id for i in range(2000, 3000)]


def test_a_garbage_inbox_is_set_aside_in_bounded_memory_and_only_once(tmp_path: Path) -> None:
    store = FsStore(tmp_path / "home")
    path = store._layout.inbox(ME)
    path.parent.mkdir(parents=True, exist_ok=True)
    garbage = 40 << 20
    with open(path, "wb") as fh:
        fh.write(os.urandom(1 << 20).replace(b"\n", b"x") * (garbage >> 20))  # one 40 MiB "line"
    os.chmod(path, 0o600)
    tracemalloc.start()
    try:
        assert store.take(ME, Window(50, 60), ALIVE) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak
    quarantine = path.with_name(path.name + ".quarantine")
    assert os.stat(quarantine).st_size == garbage + 1  # byte for byte, plus the newline it lacked
    assert path.read_bytes() == b""
    store.append(ME, [mint(1)])
    assert ids(take_all(store).envelopes) == [mint(1).id]
    assert os.stat(quarantine).st_size == garbage + 1


def test_an_overlong_line_among_messages_is_quarantined_and_its_neighbours_served(tmp_path: Path) -> None:
    store = FsStore(tmp_path / "home")
    store.append(ME, [mint(1)])
    path = store._layout.inbox(ME)
    with open(path, "ab") as fh:
        fh.write(b"z" * (300 << 10) + b"\n")
    store.append(ME, [mint(2)])
    assert ids(take_all(store).envelopes) == [mint(1).id, mint(2).id]
    assert path.with_name(path.name + ".quarantine").read_bytes() == b"z" * (300 << 10) + b"\n"


@pytest.mark.parametrize(
    "point", ["take:after-batch-write", "take:before-inbox-rewrite", "take:after-inbox-rewrite"]
)
def test_a_kill_anywhere_in_a_prefix_take_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, point: str
) -> None:
    home = tmp_path / "home"
    fill(FsStore(home), 20)

    def hook(name: str) -> None:
        if name == point:
            raise Crash(name)

    with pytest.raises(Crash):
        FsStore(home, crash_hook=hook).take(ME, Window(5, 10), ALIVE)
    store = FsStore(home)
    store.recover(ME, lambda holder: False)  # the taker died
    assert ids(take_all(store).envelopes) == [mint(i).id for i in range(20)]


def test_a_head_left_by_a_crash_never_applies_to_a_new_inbox_file(tmp_path: Path) -> None:
    store = FsStore(tmp_path / "home")
    fill(store, 20)
    batch = store.take(ME, Window(5, 10), ALIVE)
    assert batch is not None
    store.settle(batch)
    path = store._layout.inbox(ME)
    assert head_path(path).exists()
    path.unlink()  # the inbox goes (a sweep, an operator); its head stays behind
    store.append(ME, [mint(100)])  # a new file, which might even get the old inode number
    assert not head_path(path).exists()
    assert ids(take_all(store).envelopes) == [mint(100).id]


def test_a_line_is_counted_by_the_cap_as_stored(tmp_path: Path) -> None:
    store = FsStore(tmp_path / "home", inbox_max_bytes=3 * len(envelope_to_line(mint(1)).encode()))
    store.append(ME, [mint(1), mint(2), mint(3)])
    with pytest.raises(InboxFull):
        store.admit(ME, [mint(4)])
    batch = store.take(ME, Window(1, 1), ALIVE)  # a prefix take frees its bytes (the head moved)
    assert batch is not None
    store.admit(ME, [mint(4)])
    store.append(ME, [mint(4)])
