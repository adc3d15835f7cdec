"""End-to-end CPU latency of every bundled model on the bundled examples, per stage.

    python examples/model_latency.py [--rounds 20] [--threads 0] [examples]

Every example image goes through ``radedge.load_models()`` (each model whose scope fits,
second stages on their first stage's region) ``--rounds`` times after one warm-up, from
the file's bytes in memory. Prints, per image, the medians of reading (decode) and of each
model's stages, and the end-to-end median and p95 (bytes -> every model's flags), with the
machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

import numpy as np
import radedge
from radedge.bench.machine import cpu_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default=str(Path(__file__).parent), help="default: examples/")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    args = parser.parse_args(argv)

    import onnxruntime

    models = radedge.load_models(threads=args.threads)
    print(f"radedge {radedge.__version__}, onnxruntime {onnxruntime.__version__}, Python {platform.python_version()}")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores; threads={args.threads or 'all'}; "
          f"{args.rounds} rounds after one warm-up, medians in ms")
    print(f"models: {', '.join(model.model_id for model in models)}")
    files = sorted(p for p in Path(args.folder).rglob("*.dcm"))
    if not files:
        print(f"no .dcm files under {args.folder}", file=sys.stderr)
        return 2
    for path in files:
        data = path.read_bytes()
        models.predict(data)
        runs = [models.predict(data) for _ in range(args.rounds)]
        totals = [run.timings_ms["total"] for run in runs]
        read = statistics.median(run.timings_ms["read"] for run in runs)
        line = (f"{path.relative_to(args.folder)}: total {statistics.median(totals):.1f} "
                f"(p95 {np.percentile(totals, 95):.1f}), read {read:.1f}")
        print(line)
        for model_id in runs[0].predictions:
            stages = {stage: statistics.median(run.predictions[model_id].timings_ms[stage] for run in runs)
                      for stage in runs[0].predictions[model_id].timings_ms}
            flags = ", ".join(flag.code for flag in runs[0].predictions[model_id].flags) or "no flags"
            shown = "  ".join(f"{stage} {ms:.1f}" for stage, ms in stages.items() if stage != "total")
            print(f"    {model_id:14s} {stages['total']:6.1f}  ({shown})  {flags}")
        if not runs[0].analysed:
            print(f"    not analysed: {runs[0].reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
