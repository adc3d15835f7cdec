"""``radedge run``: images through every model whose scope fits, one line (or one JSON object
with ``--jsonl``) per input, in input order."""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path

from .._terminal import ExitStatus
from ..errors import RadedgeError
from ..spec.precision import PRECISIONS
from ._common import (
    Console,
    OutputError,
    UsageError,
    add_common_options,
    add_trust_option,
    advice,
    check_threads,
    error_record,
    log,
    output_folder,
)


def add_parser(commands) -> None:
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
        "--jsonl", action="store_true",
        help="print one JSON object per input on stdout, in input order (the result's JSON, the input's number, "
        "the files written, and for a refused input its error), and every line of text on stderr",
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
    add_trust_option(run)
    add_common_options(run)
    run.set_defaults(func=run_command)


def _inputs(paths: Sequence[str]) -> Iterator[tuple[Path, str]]:
    """Yield (file, wanted output name) for every file named or found under a named folder.
    Names can repeat (the same stem in two folders named on the command line); ``_ResultNames``
    makes them distinct."""
    from ..io import image_files

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
    """An image's outputs were not all written; ``error`` says why, and it is printed already."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


def run_command(args: argparse.Namespace) -> int:
    from ..io import IsolatedReader
    from ..io.limits import TIME_BUDGET_S

    console = Console(args, results_to_stderr=args.jsonl)
    budget = TIME_BUDGET_S if args.time_budget is None else args.time_budget
    try:
        check_threads(args.threads)
        if not budget >= 0:
            raise UsageError(f"--time-budget {args.time_budget:g} is negative; give seconds per file, "
                             f"or 0 to read in this process without a budget")
        out = None if args.out is None else output_folder(args.out)
        dicom_out = None if args.dicom_out is None else output_folder(args.dicom_out, "--dicom-out")
    except UsageError as exc:
        console.error(f"radedge: {exc}")
        return ExitStatus.USAGE
    except OutputError as exc:
        console.error(f"radedge: {exc}")
        return ExitStatus.OUTPUT
    if budget == 0:
        return _run_with(args, console, out, dicom_out, reader=None)
    with IsolatedReader(time_budget_s=budget) as reader:
        reader.start()  # the worker loads while the models do
        return _run_with(args, console, out, dicom_out, reader=reader)


class _Tally:
    """What the summary line and the exit status count."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.failed = self.flagged = self.not_analysed = self.not_saved = self.dicom_written = 0

    @property
    def total(self) -> int:
        return len(self.latencies) + self.failed

    def status(self) -> ExitStatus:
        if self.not_saved:
            return ExitStatus.OUTPUT
        return ExitStatus.REFUSED if self.failed else ExitStatus.OK


def _run_with(args: argparse.Namespace, console: Console, out: Path | None, dicom_out: Path | None, reader) -> int:
    from ..io import read_image
    from ..pipeline import load_models, read_ahead

    started = time.perf_counter()
    log.debug("loading the models")
    try:
        models = load_models(args.model, threads=args.threads, precision=args.precision, trusted_keys=args.trust)
    except RadedgeError as exc:
        return console.fail(exc, "cannot load the model: ")
    log.debug("models loaded in %.0f ms", (time.perf_counter() - started) * 1000)
    read = read_image if reader is None else reader.read
    for model in models:
        console.info(
            f"model {model.manifest.model_id} {model.manifest.model_version} "
            f"(bundle {model.bundle.digest[:12]}, {model.precision}, {model.bundle.signature.describe()}) "
            f"on {model.backend.name}/{model.backend.device}"
        )
    names = _ResultNames()
    tally = _Tally()

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
            tally.failed += 1
            # Not the exception's own text: it quotes the file name that --label-by hash keeps out.
            why = f"cannot read the file ({outcome.error.strerror})"
            console.error(f"input {number}  ERROR {type(outcome.error).__name__}: {why}")
            _emit(args, {"input": number, "source": None, "status": "refused", "outputs": [],
                         "error": {**error_record(outcome.error), "message": why}})
            continue
        label, wanted, image, error = outcome.value
        if error is None:
            log.debug("input %d: %s read in %.1f ms", number, label, outcome.read_ms)
        try:
            if error is not None:
                raise error
            analysis = models.predict(image, label=label, check_scope=not args.no_scope_check,
                                      read_ms=outcome.read_ms)
        except (RadedgeError, OSError) as exc:
            tally.failed += 1
            hint = advice(exc)
            console.error(f"{label}  ERROR {type(exc).__name__}: {exc}" + (f" ({hint})" if hint else ""))
            _emit(args, {"input": number, "source": label, "status": "refused", "outputs": [],
                         "error": error_record(exc)})
            continue
        log.debug("input %d: analysed by %s in %.1f ms", number, ", ".join(analysis.predictions) or "no model",
                  analysis.timings_ms["total"])
        tally.latencies.append(analysis.timings_ms["total"])
        tally.flagged += analysis.flagged
        tally.not_analysed += not analysis.analysed
        line = f"{label}  {_summary(analysis, len(models))}  {analysis.timings_ms['total']:.1f} ms"
        written: list[str] = []
        failure = None
        if out is not None or dicom_out is not None:
            name, holder = names.claim(wanted)
            if holder is not None:
                line += f"  (results named {name}: an earlier input of this run has {holder})"
            if not args.jsonl:
                console.result(line)
            try:
                _save(args, console, analysis, out, dicom_out, name, label, written, tally)
            except _NotSaved as exc:
                tally.not_saved += 1
                failure = exc.error
        elif not args.jsonl:
            console.result(line)
        _emit(args, {"input": number, **analysis.to_dict(),
                     "status": "analysed" if analysis.analysed else "not_analysed", "outputs": written,
                     "error": None if failure is None else error_record(failure)})
    summary = (f"{tally.total} image(s): {tally.flagged} flagged, {tally.not_analysed} not analysed, "
               f"{tally.failed} failed")
    if tally.not_saved:
        summary += f", {tally.not_saved} not saved"
    if tally.latencies:
        summary += (f"; end-to-end latency median {statistics.median(tally.latencies):.1f} ms, "
                    f"max {max(tally.latencies):.1f} ms")
    if out is not None:
        summary += f"; results in {out}/"
    if dicom_out is not None:
        summary += f"; {tally.dicom_written} DICOM object(s) in {dicom_out}/"
    console.info(summary)
    if tally.total == 0:
        console.error("radedge: no input files found; name image files or folders that hold them")
        return ExitStatus.USAGE
    return tally.status()


def _emit(args: argparse.Namespace, record: dict) -> None:
    """One input's JSON line on stdout (``--jsonl``), written at once so a reader sees whole lines."""
    if args.jsonl:
        sys.stdout.write(json.dumps(record, allow_nan=False) + "\n")
        sys.stdout.flush()


def _save(args, console: Console, analysis, out: Path | None, dicom_out: Path | None, name: str, label: str,
          written: list[str], tally: _Tally) -> None:
    """Write the outputs asked for, appending each path to ``written``; ``_NotSaved`` when one fails."""
    target = None
    try:
        if out is not None:
            target = out / f"{name}.json"
            written.append(str(analysis.save_json(target)))
            if not args.no_overlay and analysis.drawable:
                target = out / f"{name}.overlay.png"
                written.append(str(analysis.save_overlay(target)))
        if dicom_out is not None:
            target = dicom_out / f"{name}.*.dcm"
            saved = _save_dicom(console, analysis, dicom_out, name, label)
            written.extend(saved)
            tally.dicom_written += len(saved)
    except OSError as exc:
        console.error(f"{label}  ERROR cannot write {target} ({exc.strerror or exc}); the analysis above is not "
                      f"saved: free space or fix the folder's permissions, then run this image again")
        raise _NotSaved(exc) from None
    for path in written:
        log.debug("wrote %s", path)


def _save_dicom(console: Console, analysis, folder: Path, name: str, label: str) -> list[str]:
    """Write ``analysis``'s DICOM objects as ``<name>.<kind>.dcm``; the paths written.
    An input that is not DICOM has none, and its line says so."""
    from ..errors import DicomOutputError, NotDicomSourceError

    try:
        objects = analysis.to_dicom()
    except NotDicomSourceError:
        console.info(f"{label}  no DICOM objects: the input is not DICOM, so they would have no patient, study or "
                     f"image to belong to (see the JSON result)")
        return []
    except DicomOutputError as exc:
        console.error(f"{label}  ERROR DicomOutputError: {exc}; the JSON result is unaffected")
        raise _NotSaved(exc) from None
    return [str(path) for path in objects.save(folder, name)]


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

