"""File reservations (issue 12): ``reserve_paths`` over real stdio, and what the git guard adds to a commit.

Run from the repository root: ``.venv/bin/python benchmarks/bench_reservations.py [--quick]``.
Targets (docs/reservations.md): ``reserve_paths`` with 100 live reservations <= 5 ms over MCP; the
guard adds <= 50 ms to a commit with 100 reservations.

Every comparison is made in one run with its variants interleaved round by round, so a machine
that gets busier half-way slows all of them alike; medians are reported, with the ratios.

Measured:

* ``reserve_paths`` of one path, by a second session, against 100 live reservations of the first
  (a renewing call, so the store rewrites 101 records each time), through the official MCP client;
  next to it ``get_my_session``, the same round trip doing almost nothing (the MCP floor);
* ``git commit`` of one file in a real repository with 100 reservations of another live session
  in place (none covering the file): no hook; the hook as installed (the stdlib check in
  ``python -S -E``); and a hook running the full check (``python -m oxtail_mcp guard check``, what
  the hooks ran before the stdlib check). Bytecode is written (``PYTHONDONTWRITEBYTECODE`` is
  dropped for the commits), as in an installed copy, and each variant is warmed up first.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.e2e import sid, world


def stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms (n={len(ordered)})"


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, timeout=60)


def interleaved(variants: dict[str, Callable[[], None]], rounds: int) -> dict[str, list[float]]:
    """Each variant once per round, in turn; one warm-up round first."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for index in range(rounds + 1):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            if index:
                samples[name].append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    n = 20 if parser.parse_args().quick else 200
    print(f"load average at start: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    with tempfile.TemporaryDirectory() as tmp, world(Path(tmp)) as w:
        proj = w.project("proj", git=False)
        git(proj, "init", "-q", "-b", "main")
        git(proj, "config", "user.email", "b@x.invalid")
        git(proj, "config", "user.name", "b")
        a, b = w.directs([("a", proj, None), ("b", proj, None)])
        a.claim(sid(1))
        b.claim(sid(2))
        held = [f"src/mod{i}/*.py" for i in range(100)]
        assert a.ok("reserve_paths", {"paths": held})["granted"] == held
        calls = interleaved(
            {
                "reserve_paths vs 100 live reservations": lambda: b.ok(
                    "reserve_paths", {"paths": ["docs/guide.md"]}
                ),
                "get_my_session (the MCP floor)": lambda: b.ok("get_my_session"),
            },
            n,
        )
        for name, samples in calls.items():
            print(f"{name}: {stats(samples)}")
        floor = statistics.median(calls["get_my_session (the MCP floor)"])
        reserve = statistics.median(calls["reserve_paths vs 100 live reservations"])
        print(f"reserve_paths above the floor: {(reserve - floor) * 1000:.2f} ms")

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

        def commit(text: str | None) -> Callable[[], None]:
            def run() -> None:
                i = next(count)
                if text is None:
                    hook.unlink(missing_ok=True)
                else:
                    hook.write_text(text)
                    hook.chmod(0o755)  # a new file is not executable: git would skip it
                (proj / "notes.txt").write_text(f"{i}\n")
                git(proj, "add", "notes.txt")
                start = time.perf_counter()
                git(proj, "commit", "-q", "-m", f"c{i}", env=env)
                timings.append(time.perf_counter() - start)

            return run

        timings: list[float] = []
        variants = {
            "no hook": commit(None),
            "guard as installed": commit(installed),
            "full check": commit(full),
        }
        rounds = max(n // 4, 5)
        runs: dict[str, list[float]] = {name: [] for name in variants}
        for index in range(rounds + 1):
            for name, run in variants.items():
                timings.clear()
                run()
                if index:
                    runs[name] += timings
        for name, samples in runs.items():
            print(f"git commit, {name}: {stats(samples)}")
        bare = statistics.median(runs["no hook"])
        fast = statistics.median(runs["guard as installed"]) - bare
        slow = statistics.median(runs["full check"]) - bare
        print(f"the guard adds {fast * 1000:.1f} ms (median) with 100 reservations")
        print(f"the full check would add {slow * 1000:.1f} ms: {slow / fast:.1f}x the installed guard")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
