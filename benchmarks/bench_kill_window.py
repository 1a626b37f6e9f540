"""The duplicate window under SIGKILL (issue 13 item 7): 200 kills of a reading ``oxtail-mcp``.

Run: ``.venv/bin/python benchmarks/bench_kill_window.py [--kills 200] [--senders 6] [--seed 7]``.
Real servers over stdio with the official MCP client (tests/support/kill_window.py): six peers send
all along while the receiver's server is SIGKILLed at random moments during its reads and
restarted. Prints acknowledged sends, lost (must be 0), duplicated copies and duplicated per kill;
docs/benchmarks.md ("The duplicate window") quotes them. Takes a few seconds per kill.

``--gaps READS`` measures the window itself instead, without kills: the receiver's server traces
each settle (``read_settled``: nanoseconds from the issue of the write of the response's newline
to the issue of the settle), and this prints the distribution over ``READS`` reads.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.kill_window import measure_settle_gaps, run_kills


def _gaps(reads: int, senders: int, seed: int) -> None:
    """The window in place: each settled read's gap from the write of its newline to the settle."""
    with tempfile.TemporaryDirectory(prefix="oxtail-gaps-") as tmp:
        run = measure_settle_gaps(Path(tmp), reads=reads, senders=senders, seed=seed)
    print(f"load average {os.getloadavg()[0]:.2f} (1 min, at the end)")
    print(f"reads {run.reads}, settles traced {len(run.gaps_ns)}, {run.seconds:.0f} s")
    marks = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0))
    print(
        "newline write issued -> settle issued, us: "
        + "  ".join(f"{n} {run.quantile_us(q):.1f}" for n, q in marks)
    )
    for bound_us in (20, 200, 1000):
        share = sum(1 for g in run.gaps_ns if g > bound_us * 1000) / max(1, len(run.gaps_ns))
        print(f"share over {bound_us} us: {share:.3f}")
    print(f"mean us: {sum(run.gaps_ns) / max(1, len(run.gaps_ns)) / 1000:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--senders", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--gaps", type=int, metavar="READS", help="measure the window over READS reads, no kills"
    )
    args = parser.parse_args()
    if args.gaps:
        _gaps(args.gaps, args.senders, args.seed)
        return
    with tempfile.TemporaryDirectory(prefix="oxtail-killwin-") as tmp:
        run = run_kills(Path(tmp), kills=args.kills, senders=args.senders, seed=args.seed)
    print(f"kills                {run.kills}")
    print(f"acknowledged sends   {run.sent}")
    print(f"received (distinct)  {run.received}")
    print(f"lost                 {run.lost}")
    print(f"duplicated copies    {run.duplicated}")
    per_kill = run.duplicated_per_kill
    print(f"duplicated per kill  {per_kill:.4f}  (per 1,000 kills: {per_kill * 1000:.1f})")
    print(f"largest read         {run.largest_read}")
    print(f"refused while down   {run.refused}")
    print(f"wall time            {run.seconds:.0f} s")
    if run.lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
