"""``radedge export`` (checkpoint -> gated bundle, needs torch) and ``radedge triton`` (a bundle
as a Triton Inference Server model repository)."""

from __future__ import annotations

import argparse
import shlex

from .. import __version__
from .._terminal import ExitStatus
from ..errors import MissingDependencyError, RadedgeError
from ._common import Console, UsageError, add_common_options, check_threads


def add_parsers(commands) -> None:
    export = commands.add_parser(
        "export", help="checkpoint -> FP32 / FP16 / INT8 bundle, each precision gated head by head (needs torch)",
        description="Export a PyTorch checkpoint (state_dict with --recipe or --factory, TorchScript, or a "
        "torch.export .pt2) to ONNX in each precision, judge every precision against FP32 on the validation "
        "images head by head, and write the ones that pass, with gate.json, into a bundle.",
    )
    export.add_argument("checkpoint", metavar="CHECKPOINT")
    builder = export.add_mutually_exclusive_group()
    builder.add_argument("--recipe", metavar="NAME", help="a reference model id: its architecture, manifest and phantoms")
    builder.add_argument("--factory", metavar="MODULE:FUNCTION",
                         help="importable function returning the nn.Module a state_dict loads into")
    export.add_argument("--manifest", metavar="FILE",
                        help="manifest.json (or a bundle folder) describing input, heads and flags (without --recipe)")
    export.add_argument("--outputs", metavar="NAMES",
                        help="the module's outputs in order, comma-separated (default: the tensors the heads read)")
    export.add_argument("--precision", nargs="+", choices=("fp32", "fp16", "int8"), default=["fp32", "fp16", "int8"])
    export.add_argument("--calibration", metavar="DIR", help="DICOM files INT8 is calibrated on")
    export.add_argument("--validation", metavar="DIR",
                        help="DICOM files every precision is judged on (labels.json beside them: class truth)")
    export.add_argument("--validation-count", type=int, default=None, metavar="N",
                        help="with --recipe and no --validation: validation phantoms (default: the recipe's)")
    export.add_argument("--calibration-count", type=int, default=None, metavar="N",
                        help="with --recipe and no --calibration: calibration phantoms (default 128)")
    export.add_argument("--sign", metavar="KEY", help="sign the bundle with this Ed25519 private key (radedge keygen)")
    export.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    export.add_argument("--out", required=True, metavar="BUNDLE", help="bundle folder to write (replaced whole)")
    add_common_options(export)
    export.set_defaults(func=export_command)

    triton = commands.add_parser(
        "triton", help="write a bundle as a Triton Inference Server model repository: DICOM in, JSON out"
    )
    triton.add_argument("bundle", metavar="BUNDLE", help="bundle directory or .radedge file")
    triton.add_argument("dir", metavar="DIR", help="the repository folder to write (must not exist or be empty)")
    triton.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32",
                        help="which of the bundle's ONNX files Triton runs (default fp32)")
    triton.add_argument("--name", default=None, help="Triton model name of the ensemble (default: the model id)")
    triton.add_argument("--force", action="store_true", help="replace DIR when it holds something already")
    add_common_options(triton)
    triton.set_defaults(func=triton_command)


def _require_export_stage(command: str) -> None:
    """Raise ``MissingDependencyError`` unless ``radedge.export`` is installed. The runtime wheel
    leaves it out; the distribution radedge-export of the same release puts it in (a
    development install from the source tree has it already)."""
    import importlib.util

    if importlib.util.find_spec("radedge.export") is None:
        raise MissingDependencyError(f"radedge-export=={__version__}", f"{command} (the export stage)")


def export_command(args: argparse.Namespace) -> int:
    console = Console(args)
    try:
        check_threads(args.threads)
    except UsageError as exc:
        console.error(f"radedge: {exc}")
        return ExitStatus.USAGE
    try:
        _require_export_stage("radedge export")
    except MissingDependencyError as exc:
        return console.fail(exc)
    try:
        from ..export.command import run_export
        from ..export.loaders import ExportError
    except ImportError as exc:
        console.error(f"radedge: radedge export needs the export stage and PyTorch: pip install 'radedge[export]' "
                      f"({exc})")
        return ExitStatus.DEPENDENCY
    try:
        complete = run_export(args)
    except ExportError as exc:
        console.fail(exc, "export: ")
        return ExitStatus.EXPORT
    except RadedgeError as exc:
        return console.fail(exc, "export: ")
    except OSError as exc:
        console.fail(exc, "export: ")
        return ExitStatus.EXPORT
    return ExitStatus.OK if complete else ExitStatus.REFUSED


def triton_command(args: argparse.Namespace) -> int:
    console = Console(args)
    try:
        _require_export_stage("radedge triton")
    except MissingDependencyError as exc:
        return console.fail(exc)
    from ..export.loaders import ExportError
    from ..export.triton import write_triton_repository

    try:
        directory = write_triton_repository(
            args.bundle, args.dir, precision=args.precision, name=args.name, replace=args.force
        ).resolve()
    except ExportError as exc:
        console.fail(exc)
        return ExitStatus.EXPORT
    except RadedgeError as exc:
        return console.fail(exc)
    except OSError as exc:
        console.fail(exc)
        return ExitStatus.OUTPUT
    console.result(f"wrote a Triton model repository to {directory}:")
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if "bundle" in relative.parts[:-1]:
            continue
        if path.name == "bundle":
            console.info(f"  {relative}/  (a copy of the bundle, verified when the model loads)")
        elif path.is_file() or not any(path.iterdir()):
            console.info(f"  {relative}{'/' if path.is_dir() else ''}")
    console.info("serve it with:")
    console.info(f"  tritonserver --model-repository {shlex.quote(str(directory))}")
    return ExitStatus.OK
