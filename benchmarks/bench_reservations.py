"""File reservations (issue 12): ``reserve_paths`` over real stdio, and what the git guard adds to a commit.

Run from the repository root: ``.venv/bin/python benchmarks/bench_reservations.py [--quick]``.
Targets (docs/reservations.md): ``reserve_paths`` with 100 live reservations <= 5 ms over MCP; the
guard adds <= 50 ms to a commit with 100 reservations. Run it on an idle machine: under load the
numbers mean nothing.

Measured:

* ``reserve_paths`` of one path, by a second session, against 100 live reservations of the first
  (a renewing call, so the store keeps 101 records), through the official MCP client;
* ``git commit`` of one file in a real repository, with and without the guard installed, 100
  reservations of another live session in place (none covering the file).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.e2e import sid, world


def stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms (n={len(ordered)})"


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    n = 20 if parser.parse_args().quick else 200
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
        b.ok("reserve_paths", {"paths": ["docs/guide.md"]})  # warm up
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            b.ok("reserve_paths", {"paths": ["docs/guide.md"]})
            samples.append(time.perf_counter() - start)
        print(f"reserve_paths vs 100 live reservations: {stats(samples)}")

        env = w.env({"CLAUDE_CODE_SESSION_ID": sid(2)})

        def commits(count: int) -> list[float]:
            out = []
            for i in range(count):
                (proj / "notes.txt").write_text(f"{time.time()} {i}\n")
                git(proj, "add", "notes.txt")
                start = time.perf_counter()
                git(proj, "commit", "-q", "-m", f"c{i}", env=env)
                out.append(time.perf_counter() - start)
            return out

        bare = commits(max(n // 10, 5))
        install = [sys.executable, "-m", "oxtail_mcp", "guard", "install"]
        subprocess.run(install, cwd=proj, env=env, check=True, timeout=60)
        guarded = commits(max(n // 10, 5))
        print(f"git commit without the guard: {stats(bare)}")
        print(f"git commit with the guard:    {stats(guarded)}")
        extra = statistics.median(guarded) - statistics.median(bare)
        print(f"the guard adds {extra * 1000:.1f} ms (median) with 100 reservations")


if __name__ == "__main__":
    main()
