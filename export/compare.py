"""Run several versions of one model on the same images, then judge them head by head.

Running (``Comparator.run``) is separate from judging (``compare_accuracy``), so a new
runner (another precision, TensorRT) slots in without touching the judgement:

    outputs = Comparator.run([TorchRunner(model, names), OnnxRuntimeRunner(fp32, "fp32"),
                              OnnxRuntimeRunner(int8, "int8")], validation.images)
    verdict = compare_accuracy(manifest, outputs["fp32"], outputs["int8"], validation, "int8")

The judgement decodes every output with radedge's own head decoders and flag rules, at the
model-input geometry, and measures what a clinician would see change (``GateThresholds``):
a classification head's AUC against the validation labels and its agreement at each flag's
threshold; a segmentation mask's Dice against the reference's; a heatmap peak's distance in
input pixels from the reference's; a detector's mAP@0.5 with the reference's boxes as the
truth; and the fraction of images whose flag decisions change.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from radedge.backends import create_backend
from radedge.heads import DecodeContext, HeadResult, decode_heads
from radedge.results import evaluate_flags
from radedge.spec import GateThresholds, Manifest, ResizeGeometry

from .calibration import ImageSet
from .metrics import auroc, dice, mean_average_precision

# A heatmap's peak error is the 95th percentile of the distances between matched peaks; a
# peak with no counterpart of its label counts as infinitely far, so more than 5 % of
# peaks appearing or vanishing fails the gate on its own.
PEAK_PERCENTILE = 95.0


class Runner(ABC):
    """One version of the model: float32[N, C, H, W] in, every raw output (by name) out."""

    name: str

    @abstractmethod
    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """The outputs for ``images``, each with N first."""


class TorchRunner(Runner):
    """The PyTorch module itself, in eval mode, batches of ``batch``."""

    def __init__(self, module: Any, output_names: Sequence[str], *, name: str = "pytorch", batch: int = 16):
        self.module, self.output_names, self.name, self.batch = module, tuple(output_names), name, batch

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        self.module.eval()
        collected: dict[str, list[np.ndarray]] = {name: [] for name in self.output_names}
        with torch.no_grad():
            for start in range(0, len(images), self.batch):
                outputs = self.module(torch.from_numpy(np.ascontiguousarray(images[start : start + self.batch])))
                if not isinstance(outputs, (tuple, list)):
                    outputs = (outputs,)
                for name, value in zip(self.output_names, outputs):
                    collected[name].append(value.float().numpy())
        return {name: np.concatenate(values) for name, values in collected.items()}


class OnnxRuntimeRunner(Runner):
    """An ONNX model on radedge's own ONNX Runtime backend (the CPU provider, as a console runs
    it); batches of ``batch`` when the model's batch dimension is dynamic, else one image at a
    time."""

    def __init__(self, onnx_bytes: bytes, name: str, *, threads: int | None = None, batch: int = 8):
        self.backend = create_backend("onnxruntime", onnx_bytes, threads=threads)
        self.name = name
        declared = self.backend.inputs[0]
        self.input_name = declared.name
        self.batch = batch if declared.shape[0] is None else declared.shape[0]

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        collected: dict[str, list[np.ndarray]] = {spec.name: [] for spec in self.backend.outputs}
        for start in range(0, len(images), self.batch):
            batch = np.ascontiguousarray(images[start : start + self.batch], dtype=np.float32)
            for name, value in self.backend.run({self.input_name: batch}).items():
                collected[name].append(np.asarray(value, dtype=np.float32))
        return {name: np.concatenate(values) for name, values in collected.items()}


@dataclass(frozen=True)
class RunOutputs:
    """One runner's raw outputs over a set (name -> array with N first) and its wall time."""

    runner: str
    outputs: dict[str, np.ndarray]
    seconds: float


class Comparator:
    """Runs runners over the same images; judging is ``compare_accuracy``'s."""

    @staticmethod
    def run(runners: Sequence[Runner], images: np.ndarray,
            progress: Callable[[str], None] | None = None) -> dict[str, RunOutputs]:
        results = {}
        for runner in runners:
            started = time.perf_counter()
            outputs = runner.infer(images)
            seconds = time.perf_counter() - started
            results[runner.name] = RunOutputs(runner.name, outputs, seconds)
            if progress is not None:
                progress(f"ran {runner.name} on {len(images)} images in {seconds:.1f} s")
        return results


@dataclass
class PrecisionVerdict:
    """How ``candidate`` compares with ``reference`` on a set: figures per head (metric ->
    value; None where it cannot be measured, e.g. AUC without labels), the fraction of
    images whose flags changed, and every limit it broke, worded for the report."""

    candidate: str
    reference: str
    images: int
    heads: dict[str, dict[str, Any]]
    flag_changes: float
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> dict[str, Any]:
        """What the manifest records about the gate this precision passed."""
        return {"passed": self.passed, "reference": self.reference, "images": self.images,
                "flag_changes": round(self.flag_changes, 4), "heads": self.heads}


def input_geometry(manifest: Manifest) -> ResizeGeometry:
    """The model input as its own source image: decoded results stay in input pixels."""
    _, _, height, width = manifest.input_shape
    return ResizeGeometry(source_rows=height, source_columns=width, content_height=height, content_width=width,
                          offset_y=0, offset_x=0, scale_y=1.0, scale_x=1.0, input_height=height, input_width=width)


def decode_set(manifest: Manifest, outputs: Mapping[str, np.ndarray]) -> list[tuple[dict[str, HeadResult], frozenset]]:
    """Every image's decoded heads and the (flag code, where) pairs its rules raise."""
    context = DecodeContext(input_geometry(manifest), threads=1)
    count = len(next(iter(outputs.values())))
    decoded = []
    for index in range(count):
        heads = decode_heads(manifest.heads, {name: value[index : index + 1] for name, value in outputs.items()},
                             context)
        flags, _ = evaluate_flags(manifest.flag_rules, heads)
        decoded.append((dict(heads), frozenset((flag.code, flag.where) for flag in flags)))
    return decoded


def compare_accuracy(manifest: Manifest, reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray],
                     validation: ImageSet, candidate_name: str, *, reference_name: str = "fp32",
                     thresholds: GateThresholds | None = None) -> PrecisionVerdict:
    """Judge ``candidate``'s raw outputs against ``reference``'s on ``validation``."""
    limits = thresholds or manifest.gate
    ours, theirs = decode_set(manifest, reference), decode_set(manifest, candidate)
    heads: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    for spec in manifest.heads:
        before = [heads_of[spec.name] for heads_of, _ in ours]
        after = [heads_of[spec.name] for heads_of, _ in theirs]
        measure = _MEASURES.get(spec.kind)
        if measure is None:
            failures.append(f"{candidate_name}: head {spec.name}: no accuracy measure for {spec.kind} heads")
            continue
        figures, broken = measure(spec, before, after, validation, manifest, limits)
        heads[spec.name] = figures
        failures.extend(f"{candidate_name}: head {spec.name}: {text}" for text in broken)
    differences = [flags_before ^ flags_after for (_, flags_before), (_, flags_after) in zip(ours, theirs)]
    changed = sum(bool(difference) for difference in differences)
    flag_changes = changed / max(1, len(ours))
    if flag_changes > limits.flag_changes:
        head_of = {rule.code: rule.head for rule in manifest.flag_rules}
        codes = sorted({code for difference in differences for code, _ in difference})
        failures.append(
            f"{candidate_name}: flag decisions change on {changed} of {len(ours)} images "
            f"({flag_changes:.1%} > {limits.flag_changes:.1%}): "
            + ", ".join(f"{code} (head {head_of[code]})" for code in codes)
        )
    return PrecisionVerdict(candidate_name, reference_name, len(ours), heads, flag_changes, failures)


def _classification(spec, before, after, validation, manifest, limits):
    p_before = np.stack([result.probabilities for result in before]).reshape(len(before), -1)
    p_after = np.stack([result.probabilities for result in after]).reshape(len(after), -1)
    figures: dict[str, Any] = {"max_probability_change": _round(float(np.abs(p_before - p_after).max()))}
    broken = []
    truth = validation.labels.get(spec.name)
    if truth is None:
        figures["auc_drop"] = None
    else:
        drops = {}
        for column, label in enumerate(spec.labels):
            was, now = auroc(p_before[:, column], truth[:, column]), auroc(p_after[:, column], truth[:, column])
            if was is not None and now is not None:
                drops[label] = was - now
        worst = max(drops, key=drops.get) if drops else None
        figures["auc_drop"] = None if worst is None else _round(drops[worst])
        if worst is not None and drops[worst] > limits.auc_drop:
            broken.append(f"AUC of {worst} drops by {drops[worst]:.4f} (limit {limits.auc_drop})")
    agreements = []
    for rule in spec.flags:
        column = spec.labels.index(rule.label)
        agreements.append(float(np.mean((p_before[:, column] >= rule.threshold) == (p_after[:, column] >= rule.threshold))))
    figures["flag_agreement"] = _round(min(agreements)) if agreements else None
    return figures, broken


def _segmentation(spec, before, after, validation, manifest, limits):
    figures: dict[str, Any] = {}
    broken = []
    scores = []
    for index, label in enumerate(spec.labels, start=1):
        for was, now in zip(before, after):
            a, b = was.mask == index, now.mask == index
            if a.any() or b.any():
                scores.append(dice(a, b))
    figures["dice_mean"] = _round(float(np.mean(scores))) if scores else None
    figures["dice_min"] = _round(float(np.min(scores))) if scores else None
    figures["masks"] = len(scores)
    if scores and figures["dice_mean"] < limits.dice:
        broken.append(f"mean Dice against the reference masks is {np.mean(scores):.4f} (limit >= {limits.dice})")
    return figures, broken


def _heatmap(spec, before, after, validation, manifest, limits):
    distances = []
    for was, now in zip(before, after):
        for label in spec.labels:
            mine, theirs = was.of(label), now.of(label)
            for points, others in ((mine, theirs), (theirs, mine)):
                for point in points:
                    distances.append(min((np.hypot(point.x - o.x, point.y - o.y) for o in others), default=np.inf))
    figures: dict[str, Any] = {"peaks": len(distances), "unmatched": int(np.isinf(distances).sum()) if distances else 0}
    broken = []
    if not distances:
        figures["peak_error_px"] = None
        return figures, broken
    error = float(np.percentile(np.asarray(distances), PEAK_PERCENTILE, method="higher"))
    figures["peak_error_px"] = None if not np.isfinite(error) else _round(error)
    if not np.isfinite(error):
        broken.append(f"{figures['unmatched']} of {len(distances)} peaks have no counterpart of their label")
    elif error > limits.peak_px:
        broken.append(f"peaks move by {error:.2f} px ({PEAK_PERCENTILE:.0f}th percentile; limit {limits.peak_px} px)")
    return figures, broken


def _detection(spec, before, after, validation, manifest, limits):
    truth = [[(box.class_index, box.xyxy) for box in result.boxes] for result in before]
    predicted = [[(box.class_index, box.score, box.xyxy) for box in result.boxes] for result in after]
    measured = mean_average_precision(predicted, truth, spec.labels)
    figures: dict[str, Any] = {"boxes_reference": sum(map(len, truth)), "boxes": sum(map(len, predicted))}
    broken = []
    if measured["mAP"] is None:
        # No reference box anywhere: any candidate box is a change.
        figures["map_drop"] = 0.0 if not figures["boxes"] else 1.0
    else:
        figures["map_drop"] = _round(1.0 - measured["mAP"])
    if figures["map_drop"] > limits.map_drop:
        broken.append(f"mAP@0.5 against the reference boxes is {1 - figures['map_drop']:.4f} "
                      f"(drop {figures['map_drop']:.4f}, limit {limits.map_drop})")
    return figures, broken


def _cam(spec, before, after, validation, manifest, limits):
    # A class activation map is shown, never decided on: reported, not gated.
    correlations = []
    for was, now in zip(before, after):
        a, b = np.ravel(was.values).astype(np.float64), np.ravel(now.values).astype(np.float64)
        if a.std() > 0 and b.std() > 0:
            correlations.append(float(np.corrcoef(a, b)[0, 1]))
    return {"correlation_min": _round(min(correlations)) if correlations else None}, []


_MEASURES = {
    "classification": _classification,
    "segmentation": _segmentation,
    "heatmap": _heatmap,
    "detection": _detection,
    "cam": _cam,
}


def _round(value: float) -> float:
    return round(float(value), 6)
