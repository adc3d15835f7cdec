"""The measurements of ``radedge bench``: cold start, warm rounds per input, the outputs stage,
concurrency, and the research pipeline interleaved round by round.

Warm rounds start from the DICOM file's bytes in memory, so the disk cache does not decide
the figures, and end at every applying model's flags (``ImageAnalysis.timings_ms['total']``).
Every stage figure is radedge's own ``timings_ms`` (``StageTimer`` laps in ``ModelSet.predict``
and ``Model.analyse``): ``read`` (parse and decode the file), ``lut``, ``preprocess``,
``inference``, ``decode`` (the heads) and ``flags``, summed over the models that ran; each
model's own are kept too. The outputs stage follows each round, timed apart: the result's
JSON, the overlay PNG as ``radedge run --out`` writes them, and for a DICOM input the
SEG / SR / GSPS / KOS objects (``analysis.to_dicom()``) encoded as files, all in memory.
"to flag" is the analysis alone; "to outputs" adds the outputs stage.

With ``baseline``, each round runs radedge and the research pipeline (``baseline.py``) on the
same input one after the other, taking turns at going first, so drift and background load
land on both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from . import DEFAULT_ROUNDS
from .._heap import settle
from ..errors import RadedgeError
from .baseline import STAGES as BASELINE_STAGES
from .baseline import BaselinePipeline, BaselineUnsupported
from .cold import cold_start
from .progress import Progress
from .stats import METHOD, MIN_SAMPLES, summarise

#: radedge's stages per round, summed over the models that ran, then the outputs stage.
STAGES = ("read", "lut", "preprocess", "inference", "decode", "flags", "total")
OUTPUT_STAGES = ("json", "overlay", "dicom", "outputs", "to_outputs")
MODEL_STAGES = ("lut", "preprocess", "inference", "decode", "flags", "total")


@dataclass(frozen=True)
class BenchInput:
    """One input file: ``name`` as reports show it, its ``path`` and its bytes."""

    name: str
    path: Path
    data: bytes


@dataclass
class BenchOptions:
    """What to measure. ``models``: bundle paths (None: every bundled model); ``precision``:
    None for each bundle's default; ``rounds``: warm rounds per input; ``concurrency``: the
    most threads calling ``predict`` at once (levels 1, 2, 4... up to it); ``threads``: CPU
    threads per model (0: all cores)."""

    models: Sequence[str] | None = None
    precision: str | None = None
    device: str = "cpu"
    rounds: int = DEFAULT_ROUNDS
    concurrency: int = 1
    threads: int = 0
    baseline: bool = False
    quick: bool = False


def concurrency_levels(most: int) -> list[int]:
    """1, 2, 4... below ``most``, and ``most``."""
    levels, level = [], 1
    while level < most:
        levels.append(level)
        level *= 2
    return levels + [most]


def _figures(samples: Sequence[float]) -> dict[str, Any]:
    return {"samples": [round(float(sample), 4) for sample in samples], "summary": summarise(samples).to_dict()}


@dataclass
class _InputRecord:
    """What the rounds collect for one input."""

    item: BenchInput
    description: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES + OUTPUT_STAGES})
    models: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    dicom_outputs: bool = True
    baseline: dict[str, list[float]] | None = None
    radedge_for_baseline: dict[str, list[float]] | None = None
    baseline_error: str | None = None
    decision: dict[str, Any] | None = None
    cold: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


class Benchmark:
    """One benchmark run over loaded ``models`` (a ``ModelSet``) and ``inputs``."""

    def __init__(self, models, inputs: Sequence[BenchInput], options: BenchOptions, progress: Progress):
        self.models = models
        self.inputs = list(inputs)
        self.options = options
        self.progress = progress
        self.baseline = BaselinePipeline(models, threads=options.threads) if options.baseline else None
        self.errors: list[dict[str, str]] = []

    def run(self) -> dict[str, Any]:
        records = self._warm_up()
        # As radedge serve does after its first image: full collections that walk every object
        # the warm-up left (about 300 000) would otherwise land inside timed rounds.
        settled = settle()
        self._cold_starts(records)
        self._rounds(records)
        concurrency = self._concurrency([record.item for record in records])
        self.progress.done()
        return {
            "inputs": [self._input_document(record) for record in records],
            "transfer_syntaxes": _by_transfer_syntax(records),
            "concurrency": concurrency,
            "baseline_overall": _baseline_overall(records) if self.baseline is not None else None,
            "errors": self.errors,
            "objects_settled_after_warm_up": settled,
        }

    def _warm_up(self) -> list[_InputRecord]:
        """One untimed round per input (radedge, its outputs, the baseline), which also
        records what each input is, which models apply, and whether the decisions agree."""
        self.progress.phase("warm-up, one round per input", len(self.inputs))
        records = []
        for item in self.inputs:
            record = _InputRecord(item)
            try:
                analysis = self.models.predict(item.data, label=item.name)
            except (RadedgeError, OSError) as exc:
                self.errors.append({"input": item.name, "message": f"{type(exc).__name__}: {exc}"})
                self.progress.step()
                continue
            record.description = {
                "name": item.name,
                "path": str(item.path),
                "bytes": len(item.data),
                "format": analysis.image["format"],
                "transfer_syntax": analysis.image["transfer_syntax"],
                "rows": analysis.image["rows"],
                "columns": analysis.image["columns"],
                "models_applied": list(analysis.predictions),
                "not_applied": dict(analysis.not_applied),
                "not_analysable": dict(analysis.not_analysable),
                "flags": [flag.code for flag in analysis.flags],
            }
            record.models = {model_id: {stage: [] for stage in MODEL_STAGES} for model_id in analysis.predictions}
            record.dicom_outputs = analysis.image["format"] == "dicom"
            try:
                self._outputs(record, analysis)
            except RadedgeError as exc:
                record.dicom_outputs = False
                record.notes.append(f"no DICOM outputs timed: {exc}")
            if self.baseline is not None:
                self._baseline_warm_up(record, analysis)
            records.append(record)
            self.progress.step()
        return records

    def _baseline_warm_up(self, record: _InputRecord, analysis) -> None:
        applied = list(analysis.predictions)
        try:
            run = self.baseline.run(record.item.data, applied)
        except BaselineUnsupported as exc:
            record.baseline_error = f"the baseline does not handle this input: {exc}"
            return
        except Exception as exc:  # the research code failing on one input leaves radedge's figures standing
            record.baseline_error = f"the baseline failed on this input ({type(exc).__name__}: {exc})"
            return
        models = {}
        for model_id in applied:
            prediction = analysis.predictions[model_id]
            ours = {"flags": [flag.code for flag in prediction.flags], "verdict": prediction.verdict}
            theirs = run.decisions[model_id].to_dict()
            models[model_id] = {"radedge": ours, "baseline": theirs, "agree": ours == theirs}
        record.decision = {"agree": all(model["agree"] for model in models.values()), "models": models,
                           "notes": run.notes}
        record.baseline = {stage: [] for stage in BASELINE_STAGES}
        record.radedge_for_baseline = {stage: [] for stage in BASELINE_STAGES}

    def _cold_starts(self, records: list[_InputRecord]) -> None:
        self.progress.phase("cold start, a new process per input", len(records))
        for record in records:
            record.cold = cold_start(record.item.path, models=self.options.models, precision=self.options.precision,
                                     threads=self.options.threads)
            self.progress.step()

    def _rounds(self, records: list[_InputRecord]) -> None:
        rounds = self.options.rounds
        self.progress.phase(f"warm rounds ({rounds} per input)" + (" with baseline" if self.baseline else ""),
                            rounds * len(records))
        for number in range(rounds):
            for record in records:
                turns: list[Callable[[], None]] = [lambda r=record: self._radedge_round(r)]
                if record.baseline is not None:
                    # Taking turns at going first: whatever the first leaves behind (caches,
                    # a frequency step) does not favour one pipeline.
                    turns.insert(number % 2, lambda r=record: self._baseline_round(r))
                for turn in turns:
                    turn()
                self.progress.step()

    def _radedge_round(self, record: _InputRecord) -> None:
        analysis = self.models.predict(record.item.data, label=record.item.name)
        timings = analysis.timings_ms
        per_model = {model_id: prediction.timings_ms for model_id, prediction in analysis.predictions.items()}
        sums = {
            "read": timings["read"],
            "lut": timings["lut"],
            **{stage: sum(model.get(stage, 0.0) for model in per_model.values())
               for stage in ("preprocess", "inference", "decode", "flags")},
            "total": timings["total"],
        }
        for stage, value in sums.items():
            record.stages[stage].append(value)
        for model_id, model_timings in per_model.items():
            for stage in MODEL_STAGES:
                record.models[model_id][stage].append(model_timings.get(stage, 0.0))
        outputs = self._outputs(record, analysis)
        for stage, value in outputs.items():
            record.stages[stage].append(value)
        record.stages["to_outputs"].append(timings["total"] + outputs["outputs"])
        if record.radedge_for_baseline is not None:
            for stage, parts in BASELINE_STAGES.items():
                record.radedge_for_baseline[stage].append(sum(sums[part] for part in parts))

    def _outputs(self, record: _InputRecord, analysis) -> dict[str, float]:
        """The outputs stage after the flags, in memory: JSON, overlay PNG, DICOM objects (ms each)."""
        from ..dicom_out import encode
        from ..results.overlay import encode_png

        start = time.perf_counter()
        analysis.to_json()
        made_json = time.perf_counter()
        if analysis.drawable:
            encode_png(analysis.overlay())
        drawn = time.perf_counter()
        if record.dicom_outputs:
            for dataset in analysis.to_dicom():
                encode(dataset)
        done = time.perf_counter()
        return {"json": (made_json - start) * 1e3, "overlay": (drawn - made_json) * 1e3,
                "dicom": (done - drawn) * 1e3, "outputs": (done - start) * 1e3}

    def _baseline_round(self, record: _InputRecord) -> None:
        run = self.baseline.run(record.item.data, record.description["models_applied"])
        for stage in BASELINE_STAGES:
            record.baseline[stage].append(run.timings_ms[stage])

    def _concurrency(self, items: Sequence[BenchInput]) -> list[dict[str, Any]]:
        """Per level K: K threads calling ``predict`` on the one ModelSet at once, each
        ``rounds`` calls over the inputs in turn; per-call latency and images per second."""
        if not items:
            return []
        levels = concurrency_levels(self.options.concurrency)
        calls = self.options.rounds
        self.progress.phase(f"concurrency {', '.join(map(str, levels))} thread(s)", sum(levels) * calls)
        lock = threading.Lock()
        results = []
        for level in levels:
            latencies: list[list[float]] = [[] for _ in range(level)]
            failures: list[str] = []
            start = threading.Barrier(level + 1)

            def work(index: int, latencies=latencies, failures=failures, start=start) -> None:
                start.wait()
                for call in range(calls):
                    item = items[(index + call) % len(items)]
                    try:
                        latencies[index].append(self.models.predict(item.data, label=item.name).timings_ms["total"])
                    except (RadedgeError, OSError) as exc:
                        failures.append(f"{type(exc).__name__}: {exc}")
                    with lock:
                        self.progress.step()

            workers = [threading.Thread(target=work, args=(index,), daemon=True) for index in range(level)]
            for worker in workers:
                worker.start()
            start.wait()
            began = time.perf_counter()
            for worker in workers:
                worker.join()
            wall = time.perf_counter() - began
            samples = [latency for thread in latencies for latency in thread]
            results.append({
                "threads": level,
                "calls": len(samples),
                "wall_s": wall,
                "images_per_s": len(samples) / wall if wall > 0 else None,
                "latency_ms": _figures(samples),
                "errors": failures[:5],
            })
        return results

    def _input_document(self, record: _InputRecord) -> dict[str, Any]:
        document = dict(record.description)
        document["cold_start"] = record.cold
        stages = {stage: _figures(record.stages[stage]) for stage in STAGES + OUTPUT_STAGES
                  if stage != "dicom" or record.dicom_outputs}
        document["warm"] = {
            "rounds": len(record.stages["total"]),
            "stages": stages,
            "models": {model_id: {stage: _figures(samples) for stage, samples in model.items()}
                       for model_id, model in record.models.items()},
        }
        document["notes"] = record.notes
        if self.baseline is None:
            document["baseline"] = None
        elif record.baseline is None:
            document["baseline"] = {"error": record.baseline_error}
        else:
            ours = {stage: summarise(samples).median for stage, samples in record.radedge_for_baseline.items()}
            theirs = {stage: summarise(samples).median for stage, samples in record.baseline.items()}
            document["baseline"] = {
                "stages": {stage: _figures(samples) for stage, samples in record.baseline.items()},
                "radedge_stages": {stage: _figures(samples) for stage, samples in record.radedge_for_baseline.items()},
                "ratios": {stage: _ratio(theirs[stage], ours[stage]) for stage in BASELINE_STAGES},
                "decision": record.decision,
            }
        return document


def _ratio(baseline: float | None, ours: float | None) -> float | None:
    if baseline is None or not ours:
        return None
    return baseline / ours


def _by_transfer_syntax(records: list[_InputRecord]) -> list[dict[str, Any]]:
    """Inputs grouped by transfer syntax (by format for a file that is not DICOM), their
    rounds pooled."""
    groups: dict[str, list[_InputRecord]] = {}
    for record in records:
        key = record.description.get("transfer_syntax") or f"not DICOM ({record.description.get('format')})"
        groups.setdefault(key, []).append(record)
    return [
        {
            "name": name,
            "inputs": [record.item.name for record in members],
            **{stage: summarise([v for record in members for v in record.stages[key]]).to_dict()
               for stage, key in (("read", "read"), ("to_flag", "total"), ("to_outputs", "to_outputs"))},
        }
        for name, members in sorted(groups.items())
    ]


def _baseline_overall(records: list[_InputRecord]) -> dict[str, Any] | None:
    """Each stage's medians summed over the inputs the baseline ran on (one of each input, a
    mixed workload), baseline / radedge."""
    compared = [record for record in records if record.baseline is not None]
    if not compared:
        return None
    overall = {}
    for stage in BASELINE_STAGES:
        theirs = sum(summarise(record.baseline[stage]).median or 0.0 for record in compared)
        ours = sum(summarise(record.radedge_for_baseline[stage]).median or 0.0 for record in compared)
        overall[stage] = {"baseline_ms": theirs, "radedge_ms": ours, "ratio": _ratio(theirs, ours)}
    return {"inputs": len(compared), "stages": overall,
            "decisions_agree": sum(bool(record.decision and record.decision["agree"]) for record in compared)}


def examples_folder() -> Path | None:
    """The examples of a source checkout (``examples/`` beside ``sdk/radedge``), the images
    ``make demo`` runs; None for an installed package, which carries none."""
    package = Path(__file__).resolve().parents[1]
    candidate = package.parents[1] / "examples"
    if package.parent.name == "sdk" and candidate.is_dir():
        return candidate
    return None


def gather_inputs(paths: Sequence[str]) -> list[BenchInput]:
    """Every file named, and every image file under a folder named (``radedge run``'s walk),
    read into memory. A folder's files are named by their path inside it."""
    from ..io import image_files

    inputs = []
    for given in paths:
        root = Path(given)
        if root.is_dir():
            for path in image_files(root):
                inputs.append(BenchInput(path.relative_to(root).as_posix(), path, path.read_bytes()))
        else:
            inputs.append(BenchInput(given, root, root.read_bytes()))
    return inputs


def model_records(models) -> list[dict[str, Any]]:
    return [
        {
            "id": model.model_id,
            "version": model.manifest.model_version,
            "precision": model.precision,
            "bundle": str(model.bundle.location),
            "sha256": model.bundle.digest,
            "backend": model.backend.name,
            "device": model.backend.device,
        }
        for model in models
    ]


def settings(options: BenchOptions) -> dict[str, Any]:
    return {
        "device": options.device,
        "precision": options.precision or "each bundle's default",
        "rounds": options.rounds,
        "warm_up_rounds": 1,
        "concurrency": options.concurrency,
        "threads": options.threads,
        "baseline": options.baseline,
        "quick": options.quick,
        "percentile_method": METHOD,
        "percentile_min_samples": MIN_SAMPLES,
        "radedge_version": __version__,
    }
