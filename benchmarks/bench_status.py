"""``oxtail-mcp status --json`` with 20 agents, wall time of the whole command (issue 10: ≤ 150 ms).

Run: ``.venv/bin/python benchmarks/bench_status.py [--agents 20] [--runs 15]``. Builds a throwaway
state dir holding ``--agents`` claimed agents, each a real process working in the project (status
scopes by the process's working directory), with a Claude Code transcript, a busy or idle marker,
two waiting messages and an open ask every third agent; then times the console script as a script
would run it (piped, so no pane is read), beside ``python -c pass`` and ``oxtail-mcp --version``
(the interpreter and the CLI's own start) in the same run, with bytecode written and reused as an
installed tool runs (``PYTHONDONTWRITEBYTECODE`` dropped). Prints medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from oxtail_core.model import ActivityMarker, ClientInfo, Envelope, PendingAsk, RegistryEntry
from oxtail_core.routing import session_inbox
from oxtail_fs.host import proctree
from oxtail_fs.store.fs_store import FsStore
from oxtail_mcp.transcripts.files import claude_transcript_path

CLI = str(Path(sys.executable).with_name("oxtail-mcp"))


def build(tmp: Path, agents: int) -> tuple[Path, dict[str, str], list[subprocess.Popen[bytes]]]:
    home, project = tmp / "state", tmp / "project"
    project.mkdir()
    env = dict(os.environ, OXTAIL_HOME=str(home), HOME=str(tmp))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as an installed tool runs: from its compiled bytecode
    store = FsStore(home)
    procs = []
    now_ms = int(time.time() * 1000)
    for n in range(agents):
        sid = f"{n:08x}-0000-4000-8000-{n:012x}"
        proc = subprocess.Popen(["sleep", "600"], cwd=project)
        procs.append(proc)
        client = ClientInfo(type="claude-code", session_id=sid, cwd=str(project))
        store.registry_put(
            RegistryEntry(
                server_pid=proc.pid,
                started_at=now_ms // 1000,
                client=client,
                process_start=proctree.process_start(proc.pid),
            )
        )
        store.activity_put(sid, ActivityMarker(status="busy" if n % 2 else "idle", at_ms=now_ms))
        store.append(session_inbox(sid), [Envelope(id=f"{n:08x}0000000{k}", body="hi") for k in (1, 2)])
        if n % 3 == 0:
            store.pending_put(PendingAsk(requester=sid, request_id=f"r{n}", at_ms=now_ms, peer=None))
        path = Path(claude_transcript_path(tmp, str(project), sid, env))
        path.parent.mkdir(parents=True, exist_ok=True)
        call = {"type": "tool_use", "id": "t", "name": "Bash"}
        line = {"type": "assistant", "message": {"content": [call]}}
        path.write_text(json.dumps(line) + "\n")
    return project, env, procs


def timed(argv: list[str], env: dict[str, str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oxtail-status-") as tmp:
        project, env, procs = build(Path(tmp), args.agents)
        try:
            out = subprocess.run(
                [CLI, "status", str(project), "--json"], env=env, capture_output=True, text=True, check=True
            )
            assert len(json.loads(out.stdout)["agents"]) == args.agents
            print(f"load average        {os.getloadavg()[0]:.1f}")
            print(f"python -c pass      {timed([sys.executable, '-c', 'pass'], env, args.runs):.1f} ms")
            print(f"oxtail-mcp --version {timed([CLI, '--version'], env, args.runs):.1f} ms")
            json_ms = timed([CLI, "status", str(project), "--json"], env, args.runs)
            print(f"status --json, {args.agents} agents: {json_ms:.1f} ms (target <= 150 ms)")
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
