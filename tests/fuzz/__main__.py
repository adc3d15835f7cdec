"""``python -m tests.fuzz``: hostile inputs through radedge, counted by outcome.

    python -m tests.fuzz --cases 100000            # make fuzz
    python -m tests.fuzz --minutes 4                # the bounded slice CI runs (make fuzz-slice)
    python -m tests.fuzz --replay out/fuzz/*.bin    # saved failures again

Exit status 0 when no case failed (untyped error, crash, hang, memory over the cap, bad
result), 1 otherwise; failures are saved with their bytes under --save.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

from .runner import FAILURES, Limits, Tally, describe, replay, run_cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="how many cases (default 100000)")
    parser.add_argument("--first", type=int, default=0, help="number of the first case (default 0)")
    parser.add_argument("--minutes", type=float, default=None, help="stop starting cases after this long")
    parser.add_argument("--seed", type=int, default=0, help="master seed: the same seed gives the same cases")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds one case may take (default 10)")
    parser.add_argument("--memory-cap", type=float, default=1.5, metavar="GIB",
                        help="memory one case may allocate beyond a worker at rest (default 1.5 GiB)")
    parser.add_argument("--save", type=Path, default=Path("out/fuzz"), help="where failures and summary.json go")
    parser.add_argument("--replay", nargs="+", type=Path, default=None, metavar="FILE",
                        help="run these files instead of generated cases")
    args = parser.parse_args(argv)
    limits = Limits(time_limit_s=args.timeout, memory_limit_bytes=int(args.memory_cap * 2**30))

    if args.replay:
        reports = replay(args.replay, limits)
        for report in reports:
            print(f"{report.seed}: {report.outcome} ({report.detail})")
        return 1 if any(report.outcome in FAILURES for report in reports) else 0

    from .mutators import generate
    from .seeds import load_seeds

    seeds = load_seeds()
    print(f"radedge fuzz: cases {args.first}..{args.first + args.cases - 1}, master seed {args.seed}, "
          f"{len(seeds)} seeds, {args.workers} worker(s), {platform.processor() or platform.machine()}", flush=True)
    start = time.monotonic()
    deadline = None if args.minutes is None else start + args.minutes * 60
    last = [start]

    def progress(tally: Tally) -> None:
        now = time.monotonic()
        if now - last[0] >= 15:
            last[0] = now
            print(f"  {tally.total} cases, {tally.failed} failed, {tally.total / (now - start):.0f}/s", flush=True)

    tally = run_cases(
        range(args.first, args.first + args.cases), master_seed=args.seed, workers=args.workers, limits=limits,
        regenerate=lambda case: generate(seeds, args.seed, case), save=args.save, deadline=deadline,
        progress=progress,
    )
    elapsed = time.monotonic() - start
    print(describe(tally, elapsed_s=elapsed, workers=args.workers, limits=limits))
    args.save.mkdir(parents=True, exist_ok=True)
    summary = {
        "cases": tally.total, "first": args.first, "master_seed": args.seed, "workers": args.workers,
        "elapsed_s": round(elapsed, 1), "time_limit_s": limits.time_limit_s,
        "memory_limit_bytes": limits.memory_limit_bytes, "outcomes": dict(tally.outcomes),
        "details": {outcome: dict(counts) for outcome, counts in tally.details.items()},
        "slowest": asdict(tally.slowest) if tally.slowest else None,
        "largest_added_rss_bytes": tally.largest.peak_rss_bytes if tally.largest else 0,
        "baseline_rss_bytes": tally.baseline_rss_bytes,
        "machine": {"processor": platform.processor(), "cores": os.cpu_count(), "python": platform.python_version()},
    }
    (args.save / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
