"""``radedge doctor``: what this installation can do (native build, GPUs, ONNX Runtime, DICOM
decoders) and whether what the user means to use is usable: a device, model bundles, the
decoders of given transfer syntaxes."""

from __future__ import annotations

import argparse

from .. import __version__
from .._terminal import ExitStatus
from .._terminal import print_json
from ..errors import RadedgeError
from ._common import (
    Console,
    UsageError,
    add_common_options,
    add_trust_option,
    advice,
    error_record,
    exit_status,
    log,
)

COMPRESSED_SYNTAXES = (
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (12-bit)
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203",  # HTJ2K
)


def add_parser(commands) -> None:
    doctor = commands.add_parser(
        "doctor", help="what this installation can do: native build, GPUs, decoders; whether what you name is usable",
        description="Describe the native build, the GPUs seen, ONNX Runtime and the DICOM decoders. With --device, "
                    "--model or --decode, also check that each is usable here and exit non-zero when one is not "
                    "(exit statuses: radedge --help).",
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    doctor.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="check that models can run on this device here (cuda: a CUDA build of the native "
                             "module, a CUDA device, an inference backend that runs on CUDA)")
    doctor.add_argument("--model", action="append", default=None, metavar="BUNDLE",
                        help="check that this bundle verifies (checksums, and the signature with --trust); repeatable")
    doctor.add_argument("--decode", action="append", default=None, metavar="SYNTAX",
                        help="check that a decoder for this transfer syntax is installed: its UID or pydicom keyword "
                             "(JPEG2000Lossless, HTJ2KLossless, JPEGLSLossless, RLELossless...); repeatable")
    add_trust_option(doctor)
    add_common_options(doctor)
    doctor.set_defaults(func=doctor_command)


def _syntax_uid(given: str) -> str:
    """The transfer syntax UID ``given`` names, by UID or pydicom keyword (any case)."""
    from pydicom.uid import UID

    for uid in COMPRESSED_SYNTAXES:
        if given == uid or given.casefold() == UID(uid).keyword.casefold():
            return uid
    names = ", ".join(UID(uid).keyword for uid in COMPRESSED_SYNTAXES)
    raise UsageError(f"--decode {given}: not a compressed transfer syntax radedge reads; give its UID or one of "
                     f"{names}")


def doctor_command(args: argparse.Namespace) -> int:
    console = Console(args)
    try:
        asked_syntaxes = [_syntax_uid(given) for given in args.decode or ()]
    except UsageError as exc:
        console.error(f"radedge: {exc}")
        return ExitStatus.USAGE
    report = _report(asked_syntaxes)
    problems = report["problems"]
    if args.device is not None:
        log.debug("checking that models can run on %s", args.device)
        problems.extend(_device_problems(args.device, report))
    if args.model:
        report["models"], model_problems = _check_models(args.model, args.trust)
        problems.extend(model_problems)
    status = max((problem["exit_status"] for problem in problems), default=ExitStatus.OK)
    report["exit_status"] = int(status)
    if args.json:
        print_json(report)
    else:
        for line in _text(report):
            console.result(line)
        for problem in problems:
            console.error(f"radedge: {problem['message']}" + (f"; {problem['advice']}" if problem["advice"] else ""))
    return status


def _report(asked_syntaxes: list[str]) -> dict:
    """The installation as a JSON document; ``problems`` lists the decoders asked for that are missing."""
    from pydicom.uid import UID

    from .._native import kernels
    from ..io.codecs import get_decoder, preferred_plugin
    from ..io.j2k_plugin import PLUGIN_LABEL, decode_threads

    log.debug("loading the native module")
    native = kernels()
    info = native.build_info()
    count, why = native.cuda_device_count()
    from ..backends import installed_onnxruntime

    install = installed_onnxruntime()
    runtime = {"installed": install.version is not None, "version": install.version,
               "providers": list(install.providers), "flavour": install.flavour,
               "packages": [{"name": name, "version": version} for name, version in install.distributions],
               "describe": install.describe()}
    decoders, problems = [], []
    log.debug("looking for a decoder of each compressed transfer syntax")
    for uid in COMPRESSED_SYNTAXES:
        decoder = get_decoder(uid)
        chosen = preferred_plugin(uid) if decoder.is_available else ""
        decoders.append({
            "uid": uid, "name": UID(uid).name, "keyword": UID(uid).keyword, "available": decoder.is_available,
            "plugins": list(decoder.available_plugins) if decoder.is_available else [],
            "uses": chosen or None, "threads": decode_threads() if chosen == PLUGIN_LABEL else None,
            "missing": [] if decoder.is_available else list(decoder.missing_dependencies),
        })
        if uid in asked_syntaxes and not decoder.is_available:
            problems.append({
                "what": f"decode {UID(uid).keyword}", "exit_status": int(ExitStatus.DEPENDENCY), "class": None,
                "message": f"no decoder for {UID(uid).name} is installed (plugins need "
                           f"{'; '.join(decoder.missing_dependencies)})",
                "advice": "install one of the packages named, e.g. pip install pylibjpeg-openjpeg",
            })
    return {
        "radedge": __version__,
        "native": {key: value for key, value in info.items() if isinstance(value, (bool, int, float, str, list))},
        "cuda_devices": {"count": count, "why_none": why if count == 0 else None},
        "onnxruntime": runtime,
        "decoders": decoders,
        "problems": problems,
    }


def _device_problems(device: str, report: dict) -> list[dict]:
    report["device"] = {"asked": device, "usable": True, "why_not": None}
    if device == "cpu":
        return []
    from ..bench.command import cuda_refusal

    why = cuda_refusal()
    if why is None:
        return []
    report["device"].update(usable=False, why_not=why)
    return [{"what": "device cuda", "exit_status": int(ExitStatus.DEPENDENCY), "class": None,
             "message": f"--device cuda cannot run here: {why}",
             "advice": "run on the CPU (--device cpu), or install radedge built with CUDA on a machine with an "
                       "NVIDIA GPU"}]


def _check_models(paths: list[str], trust: list[str] | None) -> tuple[list[dict], list[dict]]:
    """Each bundle named, verified as ``radedge run`` would load it: its record, and the problems."""
    from ..bundle import load_bundle

    records, problems = [], []
    for path in paths:
        log.debug("verifying %s", path)
        try:
            bundle = load_bundle(path, trusted_keys=trust)
        except RadedgeError as exc:
            records.append({"bundle": path, "verified": False, "error": error_record(exc)})
            problems.append({"what": f"model {path}", "exit_status": int(exit_status(exc)),
                             "class": type(exc).__name__, "message": f"{path}: {exc}", "advice": advice(exc)})
            continue
        records.append({"bundle": path, "verified": True, "id": bundle.manifest.model_id,
                        "version": bundle.manifest.model_version, "sha256": bundle.digest,
                        "signature": bundle.signature.to_document()})
    return records, problems


def _text(report: dict) -> list[str]:
    """The report as doctor has always printed it, then a line per thing asked about."""
    native, cuda, runtime = report["native"], report["cuda_devices"], report["onnxruntime"]
    lines = [
        f"radedge {report['radedge']}",
        f"  native module   built with CUDA: {native['cuda']} {native['cuda_architectures']}".rstrip(),
        f"  CPU threads     {native['hardware_threads']}",
        f"  CUDA devices    {cuda['count']}" + (f" ({cuda['why_none']})" if cuda["count"] == 0 else ""),
        f"  onnxruntime     {runtime['describe']}",
    ]
    for decoder in report["decoders"]:
        if decoder["available"]:
            state = "yes, with " + ", ".join(decoder["plugins"])
            if decoder["threads"] is not None:
                state += f" (radedge uses {decoder['uses']}, {decoder['threads']} threads)"
            elif decoder["uses"]:
                state += f" (radedge uses {decoder['uses']})"
        else:
            state = "NO: plugins need " + "; ".join(decoder["missing"])
        lines.append(f"  decodes         {decoder['name']}: {state}")
    if "device" in report:
        device = report["device"]
        lines.append(f"  device {device['asked']:<8} " + ("usable" if device["usable"] else f"NO: {device['why_not']}"))
    for record in report.get("models", ()):
        state = (f"{record['id']} {record['version']}, verified (sha256 {record['sha256'][:12]})" if record["verified"]
                 else f"NO: {record['error']['class']}")
        lines.append(f"  model           {record['bundle']}: {state}")
    return lines
