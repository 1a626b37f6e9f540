"""File reservations (issue 12): ``reserve_paths`` over real stdio, and what the git guard adds to a commit.

Run from the repository root: ``.venv/bin/python benchmarks/bench_reservations.py [--quick]
[--baseline DIR]``; ``DIR``: another checkout (``git archive <commit> | tar -x -C DIR``) whose
servers run, in the same run, next to this one's (its ``oxtail_*/src`` on their ``PYTHONPATH``).
Targets (docs/reservations.md): ``reserve_paths`` with 100 live reservations <= 5 ms over MCP; the
guard adds <= 50 ms to a commit with 100 reservations.

Every comparison is made in one run with its variants interleaved round by round, so a machine
that gets busier half-way slows all of them alike; medians are reported, with the ratios.

Measured:

* ``reserve_paths`` of one path, by a second session, against 100 live reservations of the first
  (a renewing call, so the store rewrites 101 records each time), through the official MCP client;
  next to it ``get_my_session``, the same round trip doing almost nothing (the MCP floor), and with
  ``--baseline`` the same two calls to the baseline's servers (another project, same state dir);
* ``git commit`` of one file in a real repository with 100 reservations of another live session
  in place (none covering the file): no hook; the hook as installed (the stdlib check in
  ``python -S -E``); and a hook running the full check (``python -m oxtail_mcp guard check``, what
  the hooks ran before the stdlib check). Bytecode is written (``PYTHONDONTWRITEBYTECODE`` is
  dropped for the commits), as in an installed copy, and each variant is warmed up first.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.e2e import sid, world

Sample = tuple[float, float]
"""``(wall seconds, CPU seconds)`` of one call: CPU time barely moves with the machine's load."""


def stats(samples: list[Sample]) -> str:
    walls = sorted(w for w, _ in samples)
    p95 = walls[min(len(walls) - 1, int(len(walls) * 0.95))]
    cpu = statistics.median(c for _, c in samples)
    return (
        f"median {statistics.median(walls) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms, "
        f"CPU median {cpu * 1000:.2f} ms (n={len(walls)})"
    )


def median_of(samples: list[Sample], which: int) -> float:
    return statistics.median(s[which] for s in samples)


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, timeout=60)


def server_cpu(pid: int) -> float:
    """CPU seconds all threads of ``pid`` have run (``/proc/<pid>/task/*/schedstat``, in ns)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a worker thread that just ended
    return total / 1e9


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def interleaved(variants: dict[str, Callable[[], Sample]], rounds: int) -> dict[str, list[Sample]]:
    """Each variant once per round, in turn; one warm-up round first."""
    samples: dict[str, list[Sample]] = {name: [] for name in variants}
    for index in range(rounds + 1):
        for name, run in variants.items():
            sample = run()
            if index:
                samples[name].append(sample)
    return samples


def mcp_call(agent: Any, pid: int, tool: str, args: dict[str, Any] | None = None) -> Callable[[], Sample]:
    def run() -> Sample:
        cpu = server_cpu(pid)
        start = time.perf_counter()
        agent.ok(tool, args)
        wall = time.perf_counter() - start
        return wall, server_cpu(pid) - cpu

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--baseline", type=Path, default=None, help="a checkout to compare with")
    args = parser.parse_args()
    n = 20 if args.quick else 200
    print(f"load average at start: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    with tempfile.TemporaryDirectory() as tmp, world(Path(tmp)) as w:
        proj = w.project("proj", git=False)
        git(proj, "init", "-q", "-b", "main")
        git(proj, "config", "user.email", "b@x.invalid")
        git(proj, "config", "user.name", "b")
        specs: list[tuple[str, Path, dict[str, str] | None]] = [("a", proj, None), ("b", proj, None)]
        tags = [""]
        if args.baseline is not None:
            old = w.project("old", git=False)
            srcs = [
                str(args.baseline.resolve() / d / "src") for d in ("oxtail_core", "oxtail_fs", "oxtail_mcp")
            ]
            path = {"PYTHONPATH": os.pathsep.join(srcs)}
            specs += [("a-old", old, path), ("b-old", old, path)]
            tags.append(" (baseline)")
        agents = w.directs(specs)
        held = [f"src/mod{i}/*.py" for i in range(100)]
        reserve, floor = "reserve_paths vs 100 live reservations", "get_my_session, the MCP floor"
        variants: dict[str, Callable[[], Sample]] = {}
        for index, tag in enumerate(tags):
            a, b = agents[2 * index], agents[2 * index + 1]
            a.claim(sid(2 * index + 1))
            b.claim(sid(2 * index + 2))
            assert a.ok("reserve_paths", {"paths": held})["granted"] == held
            (pid,) = {
                e.server_pid for e in w.store().registry_entries() if e.session_id == sid(2 * index + 2)
            }
            variants[reserve + tag] = mcp_call(b, pid, "reserve_paths", {"paths": ["docs/guide.md"]})
            variants[floor + tag] = mcp_call(b, pid, "get_my_session")
        calls = interleaved(variants, n)
        for name, samples in calls.items():
            print(f"{name}: {stats(samples)}")
        for tag in tags:
            wall = median_of(calls[reserve + tag], 0) - median_of(calls[floor + tag], 0)
            cpu = median_of(calls[reserve + tag], 1) - median_of(calls[floor + tag], 1)
            above = f"{wall * 1000:.2f} ms wall, {cpu * 1000:.2f} ms server CPU"
            print(f"reserve_paths above the floor{tag}: {above}")
        if args.baseline is not None:
            for which, label in ((0, "wall"), (1, "server CPU")):
                ratio = median_of(calls[reserve + tags[1]], which) / median_of(calls[reserve], which)
                print(f"baseline / this checkout, reserve_paths {label}: {ratio:.2f}x")

        env = {
            k: v
            for k, v in w.env({"CLAUDE_CODE_SESSION_ID": sid(2)}).items()
            if k != "PYTHONDONTWRITEBYTECODE"
        }
        install = [sys.executable, "-m", "oxtail_mcp", "guard", "install"]
        subprocess.run(install, cwd=proj, env=env, check=True, timeout=60, capture_output=True)
        hook = proj / ".git" / "hooks" / "pre-commit"
        installed = hook.read_text()
        full_argv = [sys.executable, "-m", "oxtail_mcp", "guard", "check", "pre-commit", "--mode", "block"]
        full = f"#!/bin/sh\nexec {shlex.join(full_argv)}\n"
        count = iter(range(10**9))

        def commit(text: str | None) -> Callable[[], Sample]:
            def run() -> Sample:
                i = next(count)
                if text is None:
                    hook.unlink(missing_ok=True)
                else:
                    hook.write_text(text)
                    hook.chmod(0o755)  # a new file is not executable: git would skip it
                (proj / "notes.txt").write_text(f"{i}\n")
                git(proj, "add", "notes.txt")
                cpu = children_cpu()
                start = time.perf_counter()
                git(proj, "commit", "-q", "-m", f"c{i}", env=env)
                return time.perf_counter() - start, children_cpu() - cpu

            return run

        commits = interleaved(
            {"no hook": commit(None), "guard as installed": commit(installed), "full check": commit(full)},
            max(n // 4, 5),
        )
        for name, samples in commits.items():
            print(f"git commit, {name}: {stats(samples)}")
        for which, label in ((0, "wall"), (1, "CPU")):
            bare = median_of(commits["no hook"], which)
            fast = median_of(commits["guard as installed"], which) - bare
            slow = median_of(commits["full check"], which) - bare
            print(
                f"the guard adds {fast * 1000:.1f} ms {label} (median) with 100 reservations; "
                f"the full check would add {slow * 1000:.1f} ms ({slow / fast:.1f}x)"
            )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
