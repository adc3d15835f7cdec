"""``radedge`` command line: ``run`` images through the models that apply, ``models`` lists them,
``inspect`` a bundle, ``keygen`` and ``sign`` to seal bundles, ``doctor``, ``bench`` their latency."""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path

from . import __version__
from ._files import writable_folder
from .bench import DEFAULT_ROUNDS, QUICK_ROUNDS
from ._terminal import print_json as _print_json
from ._terminal import shown as _shown
from ._terminal import terminal_print as _print
from .errors import MissingDependencyError, RadedgeError
from .spec.precision import PRECISIONS

_COMPRESSED_SYNTAXES = (
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


def _inputs(paths: Sequence[str]) -> Iterator[tuple[Path, str]]:
    """Yield (file, wanted output name) for every file named or found under a named folder.
    Names can repeat (the same stem in two folders named on the command line); ``_ResultNames``
    makes them distinct."""
    from .io import image_files

    for given in paths:
        root = Path(given)
        if root.is_dir():
            for path in image_files(root):
                yield path, "__".join(path.relative_to(root).with_suffix("").parts)
        else:
            yield root, root.stem


class _ResultNames:
    """One output name per input, never one an earlier input of the run holds: a taken name
    gets ``-2``, ``-3``... Names are compared as a case-insensitive, normalising file system
    (macOS, Windows) compares them, so ``X`` and ``x`` do not land in one file there."""

    def __init__(self) -> None:
        self._holders: dict[str, str] = {}

    def claim(self, wanted: str) -> tuple[str, str | None]:
        """The name for an input that would be named ``wanted``, and the earlier input's name
        that made it differ (None when ``wanted`` was free)."""
        name, number = wanted, 2
        while self._key(name) in self._holders:
            name, number = f"{wanted}-{number}", number + 1
        self._holders[self._key(name)] = name
        return name, (self._holders[self._key(wanted)] if name != wanted else None)

    @staticmethod
    def _key(name: str) -> str:
        # Folding more than a file system does only costs a needless suffix; folding less
        # would let two inputs share a file.
        return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def _digest_label(data: bytes) -> str:
    """An opaque name for an input: the first 16 hex digits of the SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()[:16]


class _NotSaved(Exception):
    """An image's outputs were not all written; the reason is printed already."""


class _UsageError(Exception):
    """A mistake in the command line, found before any image is read: one line, exit status 2."""


def _output_folder(given: str, option: str = "--out") -> Path:
    """The ``option`` folder, created if missing and proven writable, or a ``_UsageError`` saying why not."""
    try:
        return writable_folder(given)
    except OSError as exc:
        why = exc.strerror or str(exc)
    folder = Path(given)
    if folder.is_dir():
        raise _UsageError(f"{option} {given} is a folder radedge cannot write in ({why}); "
                          f"make it writable for this user or name another folder")
    if folder.exists():
        raise _UsageError(f"{option} {given} is a file, not a folder; name a folder for the results "
                          f"(radedge creates it when missing)")
    raise _UsageError(f"{option} {given} does not exist and cannot be created ({why}); "
                      f"create it first or name a folder radedge can create")


def _run(args: argparse.Namespace) -> int:
    from .io import IsolatedReader
    from .io.limits import TIME_BUDGET_S

    budget = TIME_BUDGET_S if args.time_budget is None else args.time_budget
    try:
        out = None if args.out is None else _output_folder(args.out)
        dicom_out = None if args.dicom_out is None else _output_folder(args.dicom_out, "--dicom-out")
        if not budget >= 0:
            raise _UsageError(f"--time-budget {args.time_budget:g} is negative; give seconds per file, "
                              f"or 0 to read in this process without a budget")
    except _UsageError as exc:
        _print(f"radedge: {exc}", file=sys.stderr)
        return 2
    if budget == 0:
        return _run_with(args, out, dicom_out, reader=None)
    with IsolatedReader(time_budget_s=budget) as reader:
        reader.start()  # the worker loads while the models do
        return _run_with(args, out, dicom_out, reader=reader)


def _run_with(args: argparse.Namespace, out: Path | None, dicom_out: Path | None, reader) -> int:
    from .io import read_image
    from .pipeline import load_models, read_ahead

    try:
        models = load_models(args.model, threads=args.threads, precision=args.precision, trusted_keys=args.trust)
    except RadedgeError as exc:
        _print(f"radedge: cannot load the model: {exc}", file=sys.stderr)
        return 2
    read = read_image if reader is None else reader.read
    for model in models:
        _print(
            f"model {model.manifest.model_id} {model.manifest.model_version} "
            f"(bundle {model.bundle.digest[:12]}, {model.precision}, {model.bundle.signature.describe()}) "
            f"on {model.backend.name}/{model.backend.device}"
        )
    names = _ResultNames()
    latencies, failed, flagged, not_analysed, not_saved, dicom_written = [], 0, 0, 0, 0, 0

    def load(entry: tuple[int, tuple[Path, str]]):
        """Read one input (in the read-ahead thread): its label, output name, image or why not."""
        _, (path, stem) = entry
        if args.label_by == "hash":
            source = path.read_bytes()
            label = wanted = _digest_label(source)
        else:
            source, label, wanted = path, str(path), stem
        try:
            return label, wanted, read(source), None
        except (RadedgeError, OSError) as exc:
            return label, wanted, None, exc

    # The next file is read (decoded) while the current one is analysed.
    for outcome in read_ahead(enumerate(_inputs(args.paths), start=1), load):
        number = outcome.item[0]
        if outcome.error is not None:
            if not isinstance(outcome.error, OSError):
                raise outcome.error
            failed += 1
            # Not the exception's own text: it quotes the file name that --label-by hash keeps out.
            _print(f"input {number}  ERROR {type(outcome.error).__name__}: cannot read the file "
                   f"({outcome.error.strerror})", file=sys.stderr)
            continue
        label, wanted, image, error = outcome.value
        try:
            if error is not None:
                raise error
            analysis = models.predict(image, label=label, check_scope=not args.no_scope_check,
                                      read_ms=outcome.read_ms)
        except (RadedgeError, OSError) as exc:
            failed += 1
            _print(f"{label}  ERROR {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        latencies.append(analysis.timings_ms["total"])
        flagged += analysis.flagged
        not_analysed += not analysis.analysed
        line = f"{label}  {_summary(analysis, len(models))}  {analysis.timings_ms['total']:.1f} ms"
        if out is None and dicom_out is None:
            _print(line)
            continue
        name, holder = names.claim(wanted)
        if holder is not None:
            line += f"  (results named {name}: an earlier input of this run has {holder})"
        _print(line)
        target = None
        try:
            if out is not None:
                target = out / f"{name}.json"
                analysis.save_json(target)
                if not args.no_overlay and analysis.drawable:
                    target = out / f"{name}.overlay.png"
                    analysis.save_overlay(target)
            if dicom_out is not None:
                target = dicom_out / f"{name}.*.dcm"
                dicom_written += _save_dicom(analysis, dicom_out, name, label)
        except _NotSaved:
            not_saved += 1
        except OSError as exc:
            not_saved += 1
            _print(f"{label}  ERROR cannot write {target} ({exc.strerror or exc}); the analysis above is not "
                   f"saved: free space or fix the folder's permissions, then run this image again",
                   file=sys.stderr)
    total = len(latencies) + failed
    summary = f"{total} image(s): {flagged} flagged, {not_analysed} not analysed, {failed} failed"
    if not_saved:
        summary += f", {not_saved} not saved"
    if latencies:
        summary += f"; end-to-end latency median {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms"
    if out is not None:
        summary += f"; results in {out}/"
    if dicom_out is not None:
        summary += f"; {dicom_written} DICOM object(s) in {dicom_out}/"
    _print(summary)
    if total == 0:
        _print("radedge: no input files found", file=sys.stderr)
        return 2
    return 1 if failed or not_saved else 0


def _save_dicom(analysis, folder: Path, name: str, label: str) -> int:
    """Write ``analysis``'s DICOM objects as ``<name>.<kind>.dcm``; how many were written.
    An input that is not DICOM has none, and its line says so."""
    from .errors import DicomOutputError, NotDicomSourceError

    try:
        objects = analysis.to_dicom()
    except NotDicomSourceError:
        _print(f"{label}  no DICOM objects: the input is not DICOM, so they would have no patient, study or "
               f"image to belong to (see the JSON result)")
        return 0
    except DicomOutputError as exc:
        _print(f"{label}  ERROR DicomOutputError: {exc}; the JSON result is unaffected", file=sys.stderr)
        raise _NotSaved from None
    return len(objects.save(folder, name))


def _summary(analysis, model_count: int) -> str:
    """The flags of one image (code, where it lies when the model locates it, score and, with
    several models, the model) and each model's verdict (its display head's top label), or
    why it was not analysed."""
    if not analysis.analysed:
        return f"not analysed: {analysis.reason}"
    flags = ", ".join(
        f"{flag.code}" + (f" at {flag.where}" if flag.where else "") + f" ({flag.score:.2f})"
        + (f" [{flag.model}]" if model_count > 1 else "")
        for flag in analysis.flags
    )
    verdicts = [
        f"{prediction.display_head}: {prediction.verdict}"
        for prediction in analysis.predictions.values()
        if prediction.verdict is not None
    ]
    return "; ".join([flags or "no flags", *verdicts])


def _inspect(args: argparse.Namespace) -> int:
    from .bundle import load_bundle

    try:
        bundle = load_bundle(args.bundle, trusted_keys=args.trust)
    except RadedgeError as exc:
        _print(f"radedge: {exc}", file=sys.stderr)
        return 2
    manifest = bundle.manifest
    _print(f"{manifest.model_id} {manifest.model_version}: {manifest.description}")
    _print(f"  bundle     {bundle.location} (sha256 {bundle.digest}), checksums verified")
    _print(f"  signature  {_signature_line(bundle)}")
    _print(f"  input      {manifest.input_name} {list(manifest.input_shape)} {manifest.preprocess.dtype}")
    pre = manifest.preprocess
    _print(f"  preprocess {pre.resize}, mean {list(pre.mean)}, std {list(pre.std)}, VOI {manifest.intensity.voi}")
    for line in _describe(manifest):
        _print(f"  {line}")
    for line in _precision_lines(manifest):
        _print(f"  {line}")
    if args.json:
        _print_json(manifest.provenance)
    return 0


def _signature_line(bundle) -> str:
    """Who sealed the bundle, worded so an unsigned or unchecked one stands out."""
    signature = bundle.signature
    if signature.state == "unsigned":
        return (f"UNSIGNED: nothing proves who sealed this bundle; sign it with "
                f"radedge sign {bundle.location} --key KEY")
    if signature.state == "not checked":
        return f"{signature.describe()} (pass --trust KEY.pub to check it)"
    return signature.describe()


def _precision_lines(manifest) -> list[str]:
    """One line per precision the bundle carries: its file and the gate figures it passed."""
    lines = ["precisions"]
    for name, precision in manifest.precisions.items():
        gate = _gate_summary(precision.gate)
        lines.append(f"  {name:<8} {precision.file}" + (f"  {gate}" if gate else ""))
    return lines


def _gate_summary(gate: dict) -> str:
    """``passed`` and each head's figures, compactly; the figures are printed as the gate recorded them."""
    parts = []
    if "passed" in gate:
        verdict = "gate passed" if gate["passed"] is True else "gate NOT passed"
        if "reference" in gate and "images" in gate:
            verdict += f" against {gate['reference']} on {gate['images']} images"
        if isinstance(gate.get("flag_changes"), (int, float)):
            verdict += f", flags changed on {gate['flag_changes']:.1%}"
        parts.append(verdict)
    heads = gate.get("heads", {})
    for head, figures in (heads.items() if isinstance(heads, dict) else ()):
        if isinstance(figures, dict):
            parts.append(f"{head}: " + ", ".join(f"{metric} {_figure(value)}" for metric, value in figures.items()))
        else:
            parts.append(f"{head}: {_figure(figures)}")
    return "; ".join(parts)


def _figure(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} {_figure(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_figure(item) for item in value) + "]"
    return str(value)


def _keygen(args: argparse.Namespace) -> int:
    from .bundle import generate_key

    try:
        key_id = generate_key(args.out)
    except (RadedgeError, OSError) as exc:
        _print(f"radedge: {exc}", file=sys.stderr)
        return 2
    _print(f"key {key_id}")
    _print(f"  private key  {args.out} (mode 0600: keep it where bundles are signed, never on a console)")
    _print(f"  public key   {args.out}.pub (for consoles: radedge run --trust {args.out}.pub)")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from .bundle import sign_bundle

    try:
        key_id = sign_bundle(args.bundle, args.key)
    except (RadedgeError, OSError) as exc:
        _print(f"radedge: {exc}", file=sys.stderr)
        return 2
    _print(f"signed {args.bundle} with key {key_id}")
    return 0


def _describe(manifest) -> list[str]:
    """What a model reads, its heads and flags and where it applies, one line each."""
    lines = []
    if manifest.input_region is not None:
        region = manifest.input_region
        lines.append(f"region     what head {region.head!r} of {region.model} finds, grown by {region.margin:g} of its size")
    for head in manifest.heads:
        shown = " (shown first)" if head.name == manifest.display_head else ""
        lines.append(f"head       {head.name}: {head.kind}, {head.activation} over {list(head.labels)}{shown}")
        for rule in head.flags:
            also = "".join(f" and {c.head}/{c.label} >= {c.threshold}" for c in rule.requires)
            lines.append(f"  flag     {rule.code} when {_condition(head.kind, rule.label, rule.threshold)}{also}: {rule.title}")
    scope = manifest.scope
    lines.append(
        f"scope      modalities {list(scope.modalities) or 'any'}, intent {list(scope.presentation_intents) or 'any'}, "
        f"body parts {list(scope.body_parts) or 'any'}, SOP classes {list(scope.sop_classes) or 'any'}"
    )
    return lines


def _models(args: argparse.Namespace) -> int:
    """List the bundled models (or the bundles named), verified, with heads, scope and flags."""
    from .bundle import bundled_bundle_paths, load_bundle
    from .bundle.signing import load_trusted_keys

    try:
        trusted = None if args.trust is None else list(load_trusted_keys(args.trust).values())
    except RadedgeError as exc:
        _print(f"radedge: {exc}", file=sys.stderr)
        return 2
    paths = args.model or bundled_bundle_paths()
    listed, broken = [], 0
    for path in paths:
        try:
            listed.append(load_bundle(path, trusted_keys=trusted))
        except RadedgeError as exc:
            broken += 1
            _print(f"radedge: {path}: {exc}", file=sys.stderr)
    if args.json:
        _print_json([_model_record(bundle) for bundle in listed])
    else:
        for bundle in listed:
            manifest = bundle.manifest
            _print(f"{manifest.model_id} {manifest.model_version}  {bundle.location} (sha256 {bundle.digest[:12]})")
            _print(f"  {manifest.description}")
            _print(f"  signature  {_signature_line(bundle)}")
            for line in _describe(manifest):
                _print(f"  {line}")
    if not paths:
        _print("radedge: no bundled models found", file=sys.stderr)
        return 2
    return 1 if broken else 0


def _model_record(bundle) -> dict:
    manifest = bundle.manifest
    scope = manifest.scope
    region = manifest.input_region
    return {
        "id": manifest.model_id,
        "version": manifest.model_version,
        "description": manifest.description,
        "bundle": str(bundle.location),
        "sha256": bundle.digest,
        "signature": bundle.signature.to_document(),
        "precisions": {name: precision.file for name, precision in manifest.precisions.items()},
        "input_region": None if region is None else {"model": region.model, "head": region.head,
                                                      "label": region.label, "margin": region.margin},
        "heads": [
            {"name": head.name, "kind": head.kind, "labels": list(head.labels),
             "flags": [{"code": rule.code, "title": rule.title, "label": rule.label, "threshold": rule.threshold}
                       for rule in head.flags]}
            for head in manifest.heads
        ],
        "display_head": manifest.display_head,
        "scope": {"modalities": list(scope.modalities), "presentation_intents": list(scope.presentation_intents),
                  "body_parts": list(scope.body_parts), "sop_classes": list(scope.sop_classes)},
    }


def _condition(kind: str, label: str, threshold: float) -> str:
    return {
        "classification": f"p({label}) >= {threshold}",
        "detection": f"a {label} box scores >= {threshold}",
        "heatmap": f"a {label} peak scores >= {threshold}",
        "segmentation": f"the {label} region covers >= {threshold} mm²",
    }.get(kind, f"{label} >= {threshold}")


def _require_export_stage(command: str) -> None:
    """Raise ``MissingDependencyError`` unless ``radedge.export`` is installed. The runtime wheel
    leaves it out; the distribution radedge-export of the same release puts it in (a
    development install from the source tree has it already)."""
    import importlib.util

    if importlib.util.find_spec(f"{__package__}.export") is None:
        raise MissingDependencyError(f"radedge-export=={__version__}", f"{command} (the export stage)")


def _export(args: argparse.Namespace) -> int:
    try:
        _require_export_stage("radedge export")
        from .export.command import run_export
    except MissingDependencyError as exc:
        _print(f"radedge: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        _print(f"radedge export needs the export stage and PyTorch: pip install 'radedge[export]' ({exc})",
              file=sys.stderr)
        return 2
    return run_export(args)


def _triton(args: argparse.Namespace) -> int:
    import shlex

    try:
        _require_export_stage("radedge triton")
    except MissingDependencyError as exc:
        _print(f"radedge: {exc}", file=sys.stderr)
        return 2
    from .export.triton import write_triton_repository

    try:
        directory = write_triton_repository(
            args.bundle, args.dir, precision=args.precision, name=args.name, replace=args.force
        ).resolve()
    except (RadedgeError, OSError) as exc:
        _print(f"radedge: {exc}", file=sys.stderr)
        return 2
    _print(f"wrote a Triton model repository to {directory}:")
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if "bundle" in relative.parts[:-1]:
            continue
        if path.name == "bundle":
            _print(f"  {relative}/  (a copy of the bundle, verified when the model loads)")
        elif path.is_file() or not any(path.iterdir()):
            _print(f"  {relative}{'/' if path.is_dir() else ''}")
    _print("serve it with:")
    _print(f"  tritonserver --model-repository {shlex.quote(str(directory))}")
    return 0


def _doctor(_: argparse.Namespace) -> int:
    from ._native import kernels

    native = kernels()
    info = native.build_info()
    count, why = native.cuda_device_count()
    _print(f"radedge {__version__}")
    _print(f"  native module   built with CUDA: {info['cuda']} {info['cuda_architectures']}".rstrip())
    _print(f"  CPU threads     {info['hardware_threads']}")
    _print(f"  CUDA devices    {count}" + (f" ({why})" if count == 0 else ""))
    try:
        import onnxruntime

        _print(f"  onnxruntime     {onnxruntime.__version__} {onnxruntime.get_available_providers()}")
    except ImportError:
        _print("  onnxruntime     not installed (pip install onnxruntime)")
    from pydicom.uid import UID

    from .io.codecs import get_decoder, preferred_plugin
    from .io.j2k_plugin import PLUGIN_LABEL, decode_threads

    for uid in _COMPRESSED_SYNTAXES:
        decoder = get_decoder(uid)
        if decoder.is_available:
            state = "yes, with " + ", ".join(decoder.available_plugins)
            chosen = preferred_plugin(uid)
            if chosen == PLUGIN_LABEL:
                state += f" (radedge uses {chosen}, {decode_threads()} threads)"
            elif chosen:
                state += f" (radedge uses {chosen})"
        else:
            state = "NO: plugins need " + "; ".join(decoder.missing_dependencies)
        _print(f"  decodes         {UID(uid).name}: {state}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import shlex

    from .bench.command import BenchUsageError, input_paths, options_from, run_bench

    try:
        # Everything that can refuse the command line comes before the output folder is made.
        options = options_from(args)
        paths = input_paths(args.inputs)
        out = _output_folder(args.out)
    except (BenchUsageError, _UsageError) as exc:
        _print(f"radedge: {exc}", file=sys.stderr)
        return 2
    return run_bench(options, paths, out, shlex.join(["radedge", *args.argv]))


def _serve(args: argparse.Namespace) -> int:
    from .serve import ServeConfigError, Service, check, load_config, log_to_stderr

    try:
        config = load_config(args.config)
    except ServeConfigError as exc:
        _print(f"radedge: {exc}", file=sys.stderr)
        return 2
    if args.check:
        problems, notes = check(config, args.state)
        for line in config.describe():
            _print(f"  {line}")
        for note in notes:
            _print(f"  note: {note}")
        for problem in problems:
            _print(f"  PROBLEM: {problem}")
        _print(f"{args.config}: " + ("cannot serve, see above" if problems else "OK"))
        return 2 if problems else 0
    log_to_stderr(verbose=args.verbose)
    try:
        return Service(config, args.state).run()
    except (RadedgeError, OSError, RuntimeError) as exc:
        _print(f"radedge: cannot serve: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="radedge", description="Run X-ray imaging AI models at the console.")
    parser.add_argument("--version", action="version", version=f"radedge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="flag images: DICOM, PNG, JPEG or TIFF files, or folders of them")
    run.add_argument("paths", nargs="+", metavar="PATH")
    run.add_argument(
        "--model", action="append", default=None, metavar="BUNDLE",
        help="bundle directory or .radedge file; repeat for several models (default: every bundled model)",
    )
    run.add_argument(
        "--out", default=None, metavar="DIR",
        help="write <name>.json and <name>.overlay.png per image here (created if missing; checked before the first "
        "image). An input whose name an earlier input of the run has gets <name>-2, -3...",
    )
    run.add_argument(
        "--dicom-out", default=None, metavar="DIR",
        help="write DICOM objects per DICOM image here: <name>.seg.dcm (segmentations), <name>.sr.dcm (TID 1500 "
        "measurement report), <name>.gsps.dcm (presentation state drawing the findings), <name>.kos.dcm (key object "
        "selection, flagged images only); an image no model analysed gets the SR saying why",
    )
    run.add_argument(
        "--label-by", choices=("path", "hash"), default="path",
        help="name each input in the output, the JSON 'source' and the result files by its path (default) or by "
        "the first 16 hex digits of the SHA-256 of its bytes, for file names that may carry patient data",
    )
    run.add_argument("--threads", type=int, default=0, help="CPU threads for preprocessing and inference (0: all cores)")
    run.add_argument(
        "--time-budget", type=float, default=None, metavar="SECONDS",
        help="each file is read and decoded in a worker process and stopped after this long, so one damaged or "
        "hostile file cannot stall the run (default 30; 0: read in this process, without a budget)",
    )
    run.add_argument("--no-overlay", action="store_true", help="write JSON only")
    run.add_argument("--no-scope-check", action="store_true", help="run every model on every image, whatever its scope")
    run.add_argument("--precision", choices=PRECISIONS, default=None,
                     help="which of the bundle's models to run (default fp32)")
    _trust_option(run)
    run.set_defaults(func=_run)

    inspect = commands.add_parser("inspect", help="verify a bundle and describe it")
    inspect.add_argument("bundle", nargs="?", default=None)
    inspect.add_argument("--json", action="store_true", help="also print the provenance record")
    _trust_option(inspect)
    inspect.set_defaults(func=_inspect)

    models = commands.add_parser("models", help="list the bundled models: heads, flags and the images each applies to")
    models.add_argument("--model", action="append", default=None, metavar="BUNDLE",
                        help="list these bundles instead (repeatable)")
    models.add_argument("--json", action="store_true", help="one JSON list instead of text")
    _trust_option(models)
    models.set_defaults(func=_models)

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
    export.set_defaults(func=_export)

    keygen = commands.add_parser("keygen", help="make an Ed25519 key pair for signing bundles")
    keygen.add_argument("--out", required=True, metavar="KEY", help="private key file; the public key goes to KEY.pub")
    keygen.set_defaults(func=_keygen)

    sign = commands.add_parser("sign", help="verify a bundle and sign its manifest")
    sign.add_argument("bundle", metavar="BUNDLE", help="bundle directory or .radedge file")
    sign.add_argument("--key", required=True, metavar="KEY", help="private key file written by radedge keygen")
    sign.set_defaults(func=_sign)

    doctor = commands.add_parser("doctor", help="what this installation can do: native build, GPUs, decoders")
    doctor.set_defaults(func=_doctor)

    triton = commands.add_parser(
        "triton", help="write a bundle as a Triton Inference Server model repository: DICOM in, JSON out"
    )
    triton.add_argument("bundle", metavar="BUNDLE", help="bundle directory or .radedge file")
    triton.add_argument("dir", metavar="DIR", help="the repository folder to write (must not exist or be empty)")
    triton.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32",
                        help="which of the bundle's ONNX files Triton runs (default fp32)")
    triton.add_argument("--name", default=None, help="Triton model name of the ensemble (default: the model id)")
    triton.add_argument("--force", action="store_true", help="replace DIR when it holds something already")
    triton.set_defaults(func=_triton)

    serve = commands.add_parser(
        "serve", help="the console service: receive images (C-STORE, a folder), flag them live, forward results")
    serve.add_argument("--config", required=True, metavar="SERVE.toml", help="the configuration (see examples/serve.toml)")
    serve.add_argument("--state", default="radedge-state", metavar="DIR",
                       help="where the journal, the received images, the results and the audit log live "
                            "(default: ./radedge-state)")
    serve.add_argument("--check", action="store_true",
                       help="check the configuration, the models, the state folder and the ports, then exit")
    serve.add_argument("-v", "--verbose", action="store_true", help="log each step (still never a patient's data)")
    serve.set_defaults(func=_serve)

    bench = commands.add_parser(
        "bench", help="latency on this machine: cold start, each stage from DICOM bytes to flags and outputs, "
                      "concurrency, against the pydicom + OpenCV + ONNX Runtime pipeline",
        description="Measure the models on this machine and write DIR/bench.json (every figure, raw samples "
                    "included) and DIR/bench.html (tables and charts, self-contained); print a summary.",
    )
    bench.add_argument("--model", action="append", default=None, metavar="BUNDLE",
                       help="bundle directory or .radedge file; repeat for several (default: every bundled model)")
    bench.add_argument("--inputs", nargs="+", action="extend", default=None, metavar="PATH",
                       help="DICOM files or folders of them (default: examples/ of a source checkout, the images "
                            "make demo runs)")
    bench.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                       help="where the models run (default cpu); cuda exits 2 saying why where it cannot run")
    bench.add_argument("--precision", choices=PRECISIONS, default=None,
                       help="which of each bundle's models to run (default: the bundle's default, fp32)")
    bench.add_argument("--rounds", type=int, default=None, metavar="N",
                       help=f"warm rounds per input after one warm-up round (default {DEFAULT_ROUNDS}; "
                            f"{QUICK_ROUNDS} with --quick); p90 needs 10, p99 100, p99.9 1000")
    bench.add_argument("--concurrency", type=int, default=1, metavar="K",
                       help="also run 2, 4... up to K threads calling predict at once (default 1)")
    bench.add_argument("--threads", type=int, default=0, help="CPU threads per model (0: all cores)")
    bench.add_argument("--baseline", action="store_true",
                       help="time the research pipeline (pydicom, numpy, OpenCV, ONNX Runtime on the same ONNX files) "
                            "in the same rounds and print the ratios")
    bench.add_argument("--out", default="radedge-bench", metavar="DIR",
                       help="where bench.json and bench.html go (default ./radedge-bench; created if missing)")
    bench.add_argument("--quick", action="store_true", help=f"{QUICK_ROUNDS} rounds: check that it runs (tests, CI)")
    bench.set_defaults(func=_bench)
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse's parser, its error messages (which quote the arguments given) escaped like every other line."""

    def error(self, message: str):
        super().error(_shown(message))


def _trust_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--trust", action="append", default=None, metavar="KEY.pub",
        help="load only bundles signed by this public key (repeatable: any of them)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
