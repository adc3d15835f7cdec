"""Measure a reference model's bundle on held-out phantoms, end to end through the SDK.

    python -m radedge.export.evaluate bone-tumor                      # the bundled model
    python -m radedge.export.evaluate vcf --bundle DIR --count 60 --report out/vcf.json

Each phantom (seeds from 1 000 000, far from training and validation) is written as DICOM
bytes and given to the SDK as a console would receive it, so the figures include decoding,
windowing, the native preprocess op, ONNX Runtime, the decode ops and the flags.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from radedge._files import write_atomically

from .recipes import RECIPES, recipe
from .recipes.base import HELD_OUT_SEED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m radedge.export.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=sorted(RECIPES), help="model id")
    parser.add_argument("--bundle", default=None, help="bundle directory (default: the bundled model)")
    parser.add_argument("--count", type=int, default=150, help="held-out phantoms (default 150)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--report", default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    result = recipe(args.model).evaluate(args.bundle, args.count, args.seed, args.threads)
    text = json.dumps(result, indent=2)
    print(text)
    if args.report:
        write_atomically(Path(args.report), (text + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
