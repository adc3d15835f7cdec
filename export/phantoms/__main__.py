"""Command line: ``python -m radedge.export.phantoms {set,examples,transfer-syntaxes}``."""

from __future__ import annotations

import argparse
import sys
import time

from radedge.errors import RadedgeError

from .dicom import TRANSFER_SYNTAXES
from .phantom import LABELS
from .sets import KINDS, write_examples, write_set, write_transfer_syntax_set


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m radedge.export.phantoms",
        description="Write synthetic radiograph phantoms as DICOM, with their ground truth as JSON.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    one_set = commands.add_parser("set", help="a set of phantoms (seeds SEED .. SEED+COUNT-1) and ground_truth.json")
    one_set.add_argument("--out", required=True, help="output directory (created if missing)")
    one_set.add_argument("--count", type=int, required=True, help="number of phantoms")
    one_set.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    one_set.add_argument("--kind", choices=KINDS, default="long_bone", help="default long_bone")
    one_set.add_argument(
        "--labels",
        default=None,
        help=f"comma-separated labels cycled over the set, from {','.join(LABELS)} (long_bone; default: drawn)",
    )
    one_set.add_argument(
        "--transfer-syntax",
        action="append",
        default=None,
        metavar="UID",
        help="transfer syntax UID, repeat to cycle several (default Explicit VR Little Endian); one of: "
        + ", ".join(f"{uid} ({ts.short_name})" for uid, ts in TRANSFER_SYNTAXES.items()),
    )

    examples = commands.add_parser("examples", help="the bundled demo radiographs and their ground truth")
    examples.add_argument(
        "--out", default="examples/radiographs", help="long-bone examples (default examples/radiographs)"
    )
    examples.add_argument(
        "--spine-out", default=None, help="also write the lumbar-spine examples here (e.g. examples/spine)"
    )
    examples.add_argument(
        "--ct-out", default=None, help="also write the CT vertebra examples here (e.g. examples/ct)"
    )

    fixtures = commands.add_parser(
        "transfer-syntaxes", help="one small phantom in every transfer syntax, plus index.json"
    )
    fixtures.add_argument("--out", default="tests/data/transfer_syntaxes", help="default tests/data/transfer_syntaxes")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    try:
        if args.command == "set":
            labels = args.labels.split(",") if args.labels else None
            paths = write_set(
                args.out,
                args.count,
                seed=args.seed,
                kind=args.kind,
                labels=labels,
                transfer_syntaxes=args.transfer_syntax,
            )
        elif args.command == "examples":
            paths = write_examples(args.out, spine_dir=args.spine_out, ct_dir=args.ct_out)
        else:
            paths = write_transfer_syntax_set(args.out)
    except (ValueError, RuntimeError, RadedgeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    size = sum(path.stat().st_size for path in paths)
    print(f"wrote {len(paths)} DICOM files ({size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s")
    for path in paths:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
