"""End-to-end wall time of the Claude Code PreToolUse hook, as Claude Code runs it.

Each sample is one ``oxtail-mcp hook pretooluse`` subprocess fed a realistic
payload on stdin, timed from spawn to exit: with an empty inbox (the hot path,
taken before every tool call) and with 10 queued messages (a delivery, which
includes writing the 10 delivery receipts, accounting.md §2.1). The bare
interpreter start (``python -c pass``) is the floor nothing can beat.

When ``redis-server`` is on PATH, the empty-inbox case also runs on a Redis store (a
private server on a free loopback port, no persistence, stopped at the end), chosen by a
``store.json`` as a user's hooks see it; its samples alternate with the filesystem ones, so
both see the same load. That path is one pipelined round trip of the standard-library
RESP client (docs/redis.md, "Choosing the store").

The reference's bash hook is measured beside ours in the same run when
``OXTAIL_REF_HOOK`` names its ``assets/pretooluse.sh`` (build the reference from its
public repository in a temp folder, never into this tree): its registry file and
mailbox are laid out as the 0.15.0 spec describes, so both hooks do the same work.

Run: ``[OXTAIL_REF_HOOK=…/pretooluse.sh] .venv/bin/python benchmarks/bench_hooks.py [runs]``;
the numbers in docs/benchmarks.md come from this script.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from oxtail_core import Envelope
from oxtail_core.ids import new_id
from oxtail_core.routing import session_inbox
from oxtail_fs.store.fs_store import FsStore
from oxtail_mcp import storage
from oxtail_redis.keys import Keys
from oxtail_redis.resp import Client

SESSION = "5b0c2f1e-6a7d-4c1e-9f00-0123456789ab"
SENDER = "aaaaaaaa-0000-4000-8000-000000000001"
HOOK = Path(sys.executable).with_name("oxtail-mcp")
PAYLOAD = (
    '{"session_id":"' + SESSION + '","transcript_path":"/tmp/t.jsonl","cwd":"/tmp",'
    '"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls -la"}}'
).encode()


def timed(cmd: list[str], env: dict[str, str], stdin: bytes) -> tuple[float, bytes]:
    start = time.perf_counter()
    done = subprocess.run(cmd, input=stdin, env=env, capture_output=True, check=True)
    return (time.perf_counter() - start) * 1000, done.stdout


def queue(store: FsStore, n: int) -> None:
    envelopes = [
        Envelope(id=new_id(), body=f"status update {i}: tests pass, 3 files changed", from_session_id=SENDER)
        for i in range(n)
    ]
    store.append(session_inbox(SESSION), envelopes)


def reference_world(home: Path, queued: int) -> None:
    """A 0.15.0 state dir: one registry file naming SESSION, its mailbox holding ``queued`` lines."""
    sessions, mailboxes = home / ".oxtail" / "sessions", home / ".oxtail" / "mailboxes"
    sessions.mkdir(parents=True, exist_ok=True)
    mailboxes.mkdir(parents=True, exist_ok=True)
    pid = 4242
    (sessions / f"{pid}.json").write_text(f'{{\n  "pid": {pid},\n  "session_id": "{SESSION}"\n}}\n')
    lines = []
    for i in range(queued):
        body = f"status update {i}: tests pass, 3 files changed"
        lines.append(
            f'{{"schema_version":1,"id":"{os.urandom(8).hex()}","body":"{body}",'
            f'"enqueued_at":1764000000,"body_bytes":{len(body)},"origin":"peer",'
            f'"from_session_id":"{SENDER}"}}\n'
        )
    (mailboxes / f"{pid}.jsonl").write_text("".join(lines))


def reference_samples(hook: str, runs: int) -> tuple[list[float], list[float]]:
    """The reference bash hook, empty mailbox and 10 queued, timed exactly like ours."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = dict(os.environ, HOME=tmp)
        reference_world(home, 0)
        empty = [timed(["bash", hook], env, PAYLOAD)[0] for _ in range(runs)]
        loaded = []
        for _ in range(runs):
            reference_world(home, 10)
            ms, out = timed(["bash", hook], env, PAYLOAD)
            assert b"status update 9" in out, out[:200]
            loaded.append(ms)
    return empty, loaded


@contextlib.contextmanager
def redis_home(tmp: Path) -> Iterator[dict[str, str] | None]:
    """An environment whose ``store.json`` names a private redis-server (None without redis-server)."""
    exe = shutil.which("redis-server")
    if exe is None:
        yield None
        return
    tmp.mkdir(exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    args = [exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([*args, "--dir", str(tmp)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            time.sleep(0.02)
        home = tmp / "state"
        home.mkdir(mode=0o700)
        (home / "store.json").write_text(json.dumps({"url": f"redis://127.0.0.1:{port}/0", "team": "bench"}))
        (home / "store.json").chmod(0o600)
        yield dict(os.environ, OXTAIL_HOME=str(home))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(runs: int = 40) -> None:
    with tempfile.TemporaryDirectory() as home, redis_home(Path(home) / "redis") as on_redis:
        env = dict(os.environ, OXTAIL_HOME=home)
        store = FsStore(Path(home))
        baseline = [timed([sys.executable, "-c", "pass"], env, b"")[0] for _ in range(runs)]
        empty, empty_redis = [], []
        for _ in range(runs):  # alternating, so both cases see the same load
            empty.append(timed([str(HOOK), "hook", "pretooluse"], env, PAYLOAD)[0])
            if on_redis is not None:
                ms, out = timed([str(HOOK), "hook", "pretooluse"], on_redis, PAYLOAD)
                assert out == b"", out[:200]
                empty_redis.append(ms)
        loaded = []
        for _ in range(runs):
            queue(store, 10)
            ms, out = timed([str(HOOK), "hook", "pretooluse"], env, PAYLOAD)
            assert b"10 new peer message(s)" in out, out[:200]
            loaded.append(ms)
        assert len(os.listdir(Path(home) / "receipts")) == 10 * runs  # the receipts were really written
        if on_redis is not None:  # the Redis hook really stamped its marker there
            choice = storage.choose(on_redis)
            assert choice.target is not None and choice.team is not None
            with Client(choice.target) as client:
                assert client.call("EXISTS", Keys(choice.team).activity(SESSION)) == 1
    rows = [
        ("python -c pass", baseline),
        ("hook pretooluse, empty inbox", empty),
        *([("hook pretooluse, empty, Redis", empty_redis)] if empty_redis else []),
        ("hook pretooluse, 10 queued", loaded),
    ]
    reference = os.environ.get("OXTAIL_REF_HOOK", "").strip()
    if reference:
        ref_empty, ref_loaded = reference_samples(reference, runs)
        rows += [("reference bash, empty", ref_empty), ("reference bash, 10 queued", ref_loaded)]
    for name, samples in rows:
        print(
            f"{name:32s} median {statistics.median(samples):6.1f} ms"
            f"  min {min(samples):6.1f}  max {max(samples):6.1f}  (n={len(samples)})"
        )
    if reference:
        print(f"ratio empty     {statistics.median(empty) / statistics.median(ref_empty):.2f}x")
        print(f"ratio 10 queued {statistics.median(loaded) / statistics.median(ref_loaded):.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
