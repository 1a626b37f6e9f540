"""A live demo of oxtail: three agents in one process coordinate through the embedded store.

alice messages bob, asks bob a question that bob answers while she waits,
then asks carol something carol is too slow for: alice's ask times out, the
question stays durable as a pending ask, and carol's late answer pulls alice
back (wake_reason ``late_reply_to_pending``) and lands in her inbox.

Run: ``.venv/bin/python examples/core_demo.py`` (``bash scripts/demo.sh`` runs the MCP demo).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from oxtail_core import Context, MemoryHost, Peer, RecordingWaker, Settings, Store, SystemClock
from oxtail_core.wire import dumps
from oxtail_mcp.server.responses import render

T0 = time.monotonic()
ALICE = "aaaaaaaa-1111-4111-8111-000000000001"
BOB = "bbbbbbbb-2222-4222-8222-000000000002"
CAROL = "cccccccc-3333-4333-8333-000000000003"


def say(who: str, text: str) -> None:
    print(f"[{time.monotonic() - T0:6.3f}s] {who:<5} {text}", flush=True)


def make_store(home: Path) -> tuple[Store, str]:
    try:
        from oxtail_fs.store.fs_store import FsStore
    except ImportError:
        from oxtail_core import MemoryStore

        return MemoryStore(), "in-memory store (oxtail-fs not installed)"
    return FsStore(home), f"filesystem store at {home}"


def answer_when_asked(peer: Peer, name: str, delay_s: float, stop: threading.Event) -> None:
    """A peer that watches its inbox and answers every question after ``delay_s``."""
    while not stop.is_set():
        got = peer.read_messages()
        for message in got.messages:
            say(name, f"got {message.body!r} (message_id={message.id})")
            if message.request_id:
                time.sleep(delay_s)
                reply = peer.reply(message.id, f"{name} says: 42")
                say(name, f"replied -> {dumps(render(reply))}")
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="state directory (default: a fresh temporary one)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="oxtail-demo-"))
    store, label = make_store(home)
    settings = Settings(ask_grace_ms=100)
    ctx = Context(store, RecordingWaker(), SystemClock(), MemoryHost(), settings=settings)
    say("demo", f"three agents on the {label}")

    alice = Peer.join(ctx, 40001, session_id=ALICE, client_type="claude-code", cwd="/demo")
    bob = Peer.join(ctx, 40002, session_id=BOB, client_type="codex", cwd="/demo")
    carol = Peer.join(ctx, 40003, session_id=CAROL, client_type="claude-code", cwd="/demo")
    alice.set_state("writing the parser")
    bob.set_state("reviewing tests")
    cards = [f"{p.session_id} ({p.state.purpose if p.state else '-'})" for p in alice.peers()]
    say("alice", "peers: " + ", ".join(cards))

    sent = alice.send(BOB, "heads-up: I'm touching parser.py")
    say("alice", f"send_message -> {dumps(render(sent))}")
    inbox = bob.read_messages()
    say("bob", f"read_my_messages -> {dumps(render(inbox))}")

    stop = threading.Event()
    helpers = [
        threading.Thread(target=answer_when_asked, args=(bob, "bob", 0.05, stop), daemon=True),
        threading.Thread(target=answer_when_asked, args=(carol, "carol", 1.2, stop), daemon=True),
    ]
    for thread in helpers:
        thread.start()

    say("alice", "ask_peer(bob, 'what is 6*7?') ...")
    asked = alice.ask(BOB, "what is 6*7?", timeout_ms=3000)
    say("alice", f"ask_peer -> {dumps(render(asked))}")

    say("alice", "ask_peer(carol, 'and you?', timeout_ms=600) ...")
    asked = alice.ask(CAROL, "and you?", timeout_ms=600)
    say("alice", f"ask_peer -> {dumps(render(asked))}")
    say("alice", "timed out; the question stays durable as a pending ask. Waiting for carol ...")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        late = alice.read_messages()
        if late.messages:
            say("alice", f"read_my_messages -> {dumps(render(late))}")
            break
        time.sleep(0.02)
    stop.set()
    for thread in helpers:
        thread.join(timeout=2)
    for peer in (alice, bob, carol):
        peer.leave()
    say("demo", f"done; state left in {home}")


if __name__ == "__main__":
    main()
