"""Run fuzz cases through radedge in worker processes, each case under a time limit and a
memory cap, and sort every case into one outcome.

A case is what ``radedge run`` does with one file: read it (``read_image``), run every
bundled model that applies (``ModelSet.predict``), write the JSON strictly and, for some
cases, the overlay. Outcomes:

- ``analysed``: a result with flags or none, its JSON strict (no NaN or Infinity), every
  score a probability, no patient name or ID from the header in it; for one case in eight,
  its DICOM objects (SEG, SR, GSPS, KOS) made and encoded too;
- ``not analysed``: a result that says why no model analysed the image;
- ``refused``: a typed ``RadedgeError`` (counted by type);
- failures: ``untyped`` (any other exception), ``crash`` (the worker process died),
  ``hang`` (over the time limit), ``memory`` (over the memory cap), ``bad result`` (an
  analysed result breaking one of the rules above).

Each worker process loads the seeds and the models once; a case is generated inside it
from (master seed, case number), so the parent can regenerate any case's bytes to save
a failure without keeping them.
"""

from __future__ import annotations

import ctypes
import json
import os
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from radedge._isolation import IsolatedWorker, current_rss, peak_rss, reset_peak_rss
from radedge.errors import MemoryBudgetExceededError, RadedgeError, TimeBudgetExceededError, WorkerCrashedError

FAILURES = ("untyped", "crash", "hang", "memory", "bad result")
OUTCOMES = ("analysed", "not analysed", "refused", *FAILURES)

#: Every how many cases all models run whatever their scope says, and the overlay is drawn:
#: mutated headers mostly fail scope checks, and this sends those images through the heads too.
EVERY_MODEL_EVERY = 8



@dataclass(frozen=True)
class CaseReport:
    case: int
    outcome: str
    detail: str  # error type, not-analysed reason, or what went wrong
    seed: str = ""
    mutations: tuple[str, ...] = ()
    size: int = 0
    seconds: float = 0.0  # radedge's time on the case, in the worker
    peak_rss_bytes: int = 0  # resident memory radedge added to the worker at its peak on the case
    trace: str = ""


# ----------------------------------------------------------------------------- in the worker

_STATE: dict = {}


def prepare_worker(threads: int = 1) -> None:
    """Load the seeds and the bundled models once per worker process, and give the JPEG 2000
    decoding threads their memory arenas, as radedge's own reading worker does."""
    from radedge.io.j2k_plugin import warm_up
    from radedge.pipeline import load_models
    from tests.fuzz.seeds import load_seeds

    _STATE["seeds"] = load_seeds()
    _STATE["models"] = load_models(None, threads=threads)
    warm_up()
    _STATE["folder"] = Path(tempfile.mkdtemp(prefix="radedge-fuzz-"))


def run_case(master_seed: int, case: int) -> CaseReport:
    """Generate case ``case`` and run it through radedge; never raises."""
    from tests.fuzz.mutators import generate

    generated = generate(_STATE["seeds"], master_seed, case)
    path = _STATE["folder"] / f"case{os.getpid()}"
    path.write_bytes(generated.data)
    seed, mutations, size = generated.seed, generated.mutations, len(generated.data)
    del generated
    names = _seed_patient_text(seed)
    return _measured(lambda: analyse_file(path, names, every_model=case % EVERY_MODEL_EVERY == 0),
                     case, seed, mutations, size)


def run_file(path: str) -> CaseReport:
    """One given file (a saved reproducer) through radedge; never raises."""
    names = _patient_text(Path(path).read_bytes()[:1 << 20])
    return _measured(lambda: analyse_file(Path(path), names, every_model=True), -1, str(path), (),
                     Path(path).stat().st_size)


def _measured(analyse, case: int, seed: str, mutations: tuple[str, ...], size: int) -> CaseReport:
    """``analyse()``'s outcome with radedge's time and memory alone: what making the case
    cost (a deflate bomb takes seconds and a gigabyte) is handed back to the system first,
    and memory is counted from what the worker holds when radedge starts."""
    _trim_heap()  # (no gc.collect: a case's buffers go with their last reference, and a full collection costs 25 ms)
    reset_peak_rss()
    resting = current_rss()
    start = time.perf_counter()
    outcome, detail, trace = analyse()
    seconds = time.perf_counter() - start
    return CaseReport(case, outcome, detail, seed, mutations, size, seconds, peak_rss() - resting, trace)


def _trim_heap() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def analyse_file(path: Path, patient_text: list[str], *, every_model: bool) -> tuple[str, str, str]:
    """``radedge run``'s work on one file, and what came of it: (outcome, detail, trace).
    ``patient_text``: names and IDs that must not appear in the result."""
    from radedge.io import read_image

    dicom = ""
    try:
        image = read_image(path)
        analysis = _STATE["models"].predict(image, label="case", check_scope=not every_model)
        document = analysis.to_json()
        if every_model:
            if analysis.drawable:
                analysis.save_overlay(_STATE["folder"] / "overlay.png")
            dicom = dicom_outputs(analysis, patient_text)
    except RadedgeError as exc:
        return "refused", type(exc).__name__, ""
    except MemoryError:
        raise  # the worker reports it as over the memory cap
    except Exception as exc:  # noqa: BLE001 - every other exception is the finding
        return "untyped", f"{type(exc).__name__}: {exc}"[:300], traceback.format_exc()
    problem = result_problem(document, patient_text) or (dicom if dicom.startswith("bad:") else "")
    if problem:
        return "bad result", problem, document[:4000]
    if not analysis.analysed:
        return "not analysed", _reason_kind(analysis.reason) + dicom, ""
    return "analysed", ("flagged" if analysis.flagged else "no flags") + dicom, ""


def dicom_outputs(analysis, patient_text: list[str]) -> str:
    """Make and encode the result's DICOM objects (``radedge run --dicom-out``): '' when they
    were made, a note when refused typed, ``bad: ...`` when one carries another patient's name
    (a name is copied from the source, so it must be the source's)."""
    from radedge.dicom_out import encode
    from radedge.errors import DicomOutputError, NotDicomSourceError

    try:
        objects = analysis.to_dicom()
    except NotDicomSourceError:
        return ""
    except DicomOutputError:
        return " (no DICOM objects: DicomOutputError)"
    source = analysis._header
    for dataset in objects:
        encode(dataset)
        # Absent and empty are one value here: an absent Type 2 attribute is written empty.
        if str(dataset.get("PatientID") or "") != str(source.get("PatientID") or ""):
            return f"bad: {dataset.Modality} object's PatientID differs from the source's"
    return ""


def result_problem(document: str, patient_text: list[str]) -> str:
    """What is wrong with a result's JSON, or ''."""

    def refuse_constant(name: str):
        raise ValueError(f"non-finite number {name}")

    try:
        tree = json.loads(document, parse_constant=refuse_constant)
    except ValueError as exc:
        return f"JSON not strict: {exc}"
    for key, value in _walk(tree):
        if key in ("score", "threshold", "probability") or key.startswith("probabilit"):
            values = value.values() if isinstance(value, dict) else [value]
            for number in values:
                if isinstance(number, (int, float)) and not 0.0 <= number <= 1.0:
                    return f"{key} {number} is not a probability"
    for text in patient_text:
        if text in document:
            return "a patient name or ID from the header is in the result"
    return ""


def _walk(tree, key=""):
    if isinstance(tree, dict):
        for name, value in tree.items():
            yield name, value
            yield from _walk(value, name)
    elif isinstance(tree, list):
        for value in tree:
            yield from _walk(value, key)


def _seed_patient_text(seed: str) -> list[str]:
    """The seed's patient name and IDs, found once per seed: mutations never write those
    attributes, and reading a mutated header (a deflate bomb) could cost more than radedge."""
    cache = _STATE.setdefault("patient_text", {})
    if seed not in cache:
        data = next(candidate.data for candidate in _STATE["seeds"] if candidate.name == seed)
        cache[seed] = _patient_text(data)
    return cache[seed]


def _patient_text(data: bytes) -> list[str]:
    """Patient name and ID values of a DICOM header, where they are long enough to search for."""
    from io import BytesIO

    from pydicom import dcmread

    try:
        header = dcmread(BytesIO(data), stop_before_pixels=True, force=True)
        values = [str(header.get(keyword, "") or "") for keyword in ("PatientName", "PatientID", "OtherPatientIDs")]
    except Exception:  # noqa: BLE001 - an unreadable header has no names to leak
        return []
    return [value for value in values if len(value.strip()) >= 5]


def _reason_kind(reason: str | None) -> str:
    """A not-analysed reason without its figures, so reasons can be counted."""
    words = (reason or "no reason").split(":")[0].split()
    kept = [word for word in words if not any(char.isdigit() for char in word)]
    return " ".join(kept[:8])


# ----------------------------------------------------------------------------- in the parent


@dataclass
class Tally:
    """Counts by outcome and detail, the slowest case and the largest peak memory."""

    outcomes: Counter = field(default_factory=Counter)
    details: dict[str, Counter] = field(default_factory=dict)
    failures: list[CaseReport] = field(default_factory=list)
    slowest: CaseReport | None = None
    largest: CaseReport | None = None
    baseline_rss_bytes: int = 0

    def add(self, report: CaseReport) -> None:
        self.outcomes[report.outcome] += 1
        self.details.setdefault(report.outcome, Counter())[report.detail] += 1
        if report.outcome in FAILURES:
            self.failures.append(report)
        if self.slowest is None or report.seconds > self.slowest.seconds:
            self.slowest = report
        if self.largest is None or report.peak_rss_bytes > self.largest.peak_rss_bytes:
            self.largest = report

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    @property
    def failed(self) -> int:
        return sum(self.outcomes[name] for name in FAILURES)


@dataclass(frozen=True)
class Limits:
    """``time_limit_s``: radedge's time on one case, measured in the worker; the worker is
    stopped only after ``generation_allowance_s`` more, the time making a case may take (a
    deflate bomb of 1.6 GiB of zeros, about 3 s). ``memory_limit_bytes``: address space a
    case may add to a worker at rest."""

    time_limit_s: float = 10.0
    memory_limit_bytes: int = int(1.5 * 2**30)
    generation_allowance_s: float = 20.0


def run_cases(
    cases: range,
    *,
    master_seed: int,
    workers: int,
    limits: Limits,
    regenerate: Callable[[int], object],
    save: Path | None,
    deadline: float | None = None,
    progress: Callable[[Tally], None] | None = None,
    case_function: Callable[[int, int], CaseReport] | None = None,
    initializer: Callable[[], None] | None = None,
) -> Tally:
    """Run ``cases`` on ``workers`` worker processes; stop taking new cases after ``deadline``
    (``time.monotonic()``). Failures are saved under ``save`` with their bytes, regenerated here.
    ``case_function(master_seed, case)`` and ``initializer`` run in the workers (default
    ``run_case`` and ``prepare_worker``)."""
    case_function = case_function or run_case
    initializer = initializer or prepare_worker
    tally, lock = Tally(), threading.Lock()
    numbers = iter(cases)
    errors: list[BaseException] = []

    def drive() -> None:
        with IsolatedWorker(memory_limit_bytes=limits.memory_limit_bytes, initializer=initializer,
                            quiet=True) as worker:
            while True:
                with lock:
                    if deadline is not None and time.monotonic() > deadline:
                        return
                    case = next(numbers, None)
                if case is None:
                    return
                report = _call(worker, case_function, (master_seed, case), case, limits)
                if report.outcome in FAILURES:
                    report = _completed(report, regenerate(case), save)
                with lock:
                    tally.add(report)
                    if progress is not None:
                        progress(tally)

    def guarded() -> None:
        try:
            drive()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, name=f"fuzz-{index}") for index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    tally.baseline_rss_bytes = _baseline_rss(limits, initializer)
    return tally


def replay(paths: list[Path], limits: Limits) -> list[CaseReport]:
    """Run saved files through radedge, one worker, the same limits."""
    with IsolatedWorker(memory_limit_bytes=limits.memory_limit_bytes, initializer=prepare_worker) as worker:
        return [_call(worker, run_file, (str(path),), -1, limits, seed=str(path)) for path in paths]


def _call(worker: IsolatedWorker, function, args: tuple, case: int, limits: Limits, seed: str = "") -> CaseReport:
    start = time.perf_counter()
    try:
        result = worker.call(function, *args, time_limit_s=limits.time_limit_s + limits.generation_allowance_s)
    except TimeBudgetExceededError:
        return CaseReport(case, "hang", f"still running after {limits.time_limit_s + limits.generation_allowance_s:g} s",
                          seed, seconds=time.perf_counter() - start)
    except MemoryBudgetExceededError:
        return CaseReport(case, "memory", f"over the cap of {limits.memory_limit_bytes / 2**30:.2f} GiB", seed,
                          seconds=time.perf_counter() - start)
    except WorkerCrashedError as exc:
        return CaseReport(case, "crash", str(exc), seed, seconds=time.perf_counter() - start)
    report = result.value
    if report.seconds > limits.time_limit_s:  # finished, but later than a hang's limit
        return CaseReport(**{**asdict(report), "mutations": tuple(report.mutations), "outcome": "hang",
                             "detail": f"took {report.seconds:.1f} s ({report.outcome}: {report.detail})"})
    return report


def _completed(report: CaseReport, generated, save: Path | None) -> CaseReport:
    """A failure with its seed and mutations filled in (a crash or hang left them behind in
    the worker) and, with ``save``, its bytes and record written there."""
    report = CaseReport(**{**asdict(report), "seed": generated.seed, "mutations": tuple(generated.mutations),
                           "size": len(generated.data)})
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        stem = f"{report.outcome.replace(' ', '_')}-{report.case}"
        (save / f"{stem}.bin").write_bytes(generated.data)
        (save / f"{stem}.json").write_text(json.dumps(asdict(report), indent=2))
    return report


def _baseline_rss(limits: Limits, initializer: Callable[[], None]) -> int:
    """Resident memory of a worker at rest (models and seeds loaded), for scale."""
    with IsolatedWorker(memory_limit_bytes=limits.memory_limit_bytes, initializer=initializer) as worker:
        return worker.call(_noop).peak_rss_bytes


def _noop() -> None:
    return None


def describe(tally: Tally, *, elapsed_s: float, workers: int, limits: Limits) -> str:
    """The outcome table printed at the end."""
    lines = [f"{tally.total} cases in {elapsed_s:.0f} s on {workers} worker(s) "
             f"({tally.total / max(elapsed_s, 1e-9):.0f} cases/s; limits {limits.time_limit_s:g} s and "
             f"{limits.memory_limit_bytes / 2**30:.2f} GiB per case)", ""]
    for outcome in OUTCOMES:
        count = tally.outcomes[outcome]
        mark = "  <- failure" if outcome in FAILURES and count else ""
        lines.append(f"  {outcome:<13} {count:>8}{mark}")
        shown = tally.details.get(outcome, Counter()).most_common(None if outcome in FAILURES else 12)
        for detail, number in shown:
            lines.append(f"      {number:>8}  {detail[:110]}")
    if tally.slowest is not None:
        lines += ["", f"slowest case: {tally.slowest.seconds:.2f} s (case {tally.slowest.case}, "
                      f"{tally.slowest.outcome}, seed {tally.slowest.seed})"]
    if tally.largest is not None:
        lines.append(f"largest resident memory a case added: {tally.largest.peak_rss_bytes / 2**20:.0f} MiB (case "
                     f"{tally.largest.case}, {tally.largest.outcome}); a worker at rest holds "
                     f"{tally.baseline_rss_bytes / 2**20:.0f} MiB")
    for report in tally.failures[:20]:
        lines.append(f"FAILED case {report.case} [{report.outcome}] {report.detail[:200]} "
                     f"(seed {report.seed}; {'; '.join(report.mutations)})")
    return "\n".join(lines)
