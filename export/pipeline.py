"""``radedge export``: a checkpoint -> FP32 / FP16 / INT8 ONNX, each gated head by head -> a bundle.

    checkpoint --intake--> torch module --OnnxFromTorch--> FP32 ONNX (checked against PyTorch)
        --Fp16OnnxFromOnnx--> FP16 ONNX          --QdqOnnxFromOnnx(calibration)--> INT8 Q/DQ ONNX
        --Comparator on the validation set--> per-head verdicts (GateThresholds)
        --SaveBundle--> model.onnx [+ model.fp16.onnx] [+ model.int8.onnx] + gate.json [--> manifest.sig]

A precision that fails its gate is not written; the report names the head, the metric and
the figure. FP32 that does not reproduce PyTorch fails the whole export. The bundle appears
whole or not at all: it is written beside ``out`` and moved into place at the end.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radedge import __version__
from radedge._files import write_directory
from radedge.heads import sigmoid, softmax
from radedge.spec import PRECISION_FILES, PRECISIONS, Manifest, Precision

from .calibration import ImageSet, print_progress, tensor_set
from .compare import Comparator, OnnxRuntimeRunner, PrecisionVerdict, TorchRunner, compare_accuracy
from .loaders import (
    OPSET,
    ExportError,
    Fp16OnnxFromOnnx,
    OnnxFromTorch,
    QdqOnnxFromOnnx,
    SaveBundle,
    check_onnx_against_torch,
)

GATE_REPORT = "gate.json"
# float32 reassociation (ONNX Runtime fuses and reorders) moves pooled logits by ~1e-4 of
# their size; a broken export is off by whole units.
ONNX_ATOL, ONNX_RTOL = 1e-4, 1e-3
NUMERIC_CHECK_IMAGES = 8
# INT8 scales from this many training images unless a calibration folder is given.
CALIBRATION_PHANTOMS = 128
# When full INT8 fails the gate: images each layer's sensitivity is measured on, and the
# most layers that may go back to float.
SENSITIVITY_IMAGES = 32
MAX_FLOAT_FRACTION = 0.5


@dataclass
class ExportReport:
    """What an export wrote and why: the bundle, the precisions written and refused, each
    precision's verdict, the FP32-vs-PyTorch check, the sets used and the step timings."""

    bundle: Path
    written: list[str]
    refused: dict[str, list[str]]
    verdicts: dict[str, PrecisionVerdict]
    document: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every requested precision passed and was written."""
        return not self.refused

    def table(self) -> str:
        """One line per precision and head: the figures that decided it."""
        lines = [f"{'precision':<10}{'head':<22}figures"]
        for name, verdict in self.verdicts.items():
            state = "written" if name in self.written else "REFUSED"
            for head, figures in verdict.heads.items():
                shown = ", ".join(f"{metric} {_shown(value)}" for metric, value in figures.items())
                lines.append(f"{name:<10}{head:<22}{shown}")
            lines.append(f"{name:<10}{'(flags)':<22}changed on {verdict.flag_changes:.1%} of {verdict.images} images "
                         f"against {verdict.reference} -> {state}")
        for name, reasons in self.refused.items():
            for reason in reasons:
                lines.append(f"  refused {reason}")
        return "\n".join(lines)


def export_bundle(
    module: Any,
    manifest: Manifest,
    *,
    out: str | os.PathLike,
    validation: ImageSet,
    calibration: ImageSet | None = None,
    precisions: Sequence[str] = PRECISIONS,
    output_names: Sequence[str] | None = None,
    provenance: dict[str, Any] | None = None,
    sign_key: str | os.PathLike | None = None,
    progress: Callable[[str], None] = print_progress,
) -> ExportReport:
    """Export ``module`` (a torch module whose forward returns ``output_names``, default the
    tensors the manifest's heads read, in that order) in ``precisions`` and write the bundle
    ``out`` with the precisions that pass ``manifest.gate`` on ``validation``.

    INT8 needs ``calibration``. Raises ``ExportError`` when FP32 does not reproduce PyTorch
    or nothing could be written; otherwise returns the report (``complete`` False when a
    requested precision was refused).
    """
    unknown = sorted(set(precisions) - set(PRECISIONS))
    if unknown:
        raise ExportError(f"unknown precision(s) {unknown}; choose from {list(PRECISIONS)}")
    if "int8" in precisions and calibration is None:
        raise ExportError("INT8 needs calibration images: give --calibration DIR (a folder of DICOM files)")
    if sign_key is not None:
        from radedge.bundle.signing import load_private_key

        load_private_key(sign_key)  # a key that cannot sign fails now, not after the export
    names = tuple(output_names or manifest.tensors)
    seconds: dict[str, float] = {}
    clock = _Clock(seconds, progress)

    with clock("ONNX export (FP32)"):
        fp32 = OnnxFromTorch(module, tuple(manifest.input_shape), manifest.input_name, names)()
    with clock("FP32 against PyTorch"):
        numeric = check_onnx_against_torch(module, fp32, validation.images[:NUMERIC_CHECK_IMAGES],
                                           manifest.input_name, names)
    if not numeric.within(atol=ONNX_ATOL, rtol=ONNX_RTOL):
        raise ExportError(
            f"the FP32 ONNX export does not reproduce PyTorch: max |difference| {numeric.max_abs_difference} "
            f"for outputs as large as {numeric.max_abs_reference}; nothing was written"
        )
    models = {"fp32": fp32}
    quantizer_report: dict[str, Any] = {}
    if "fp16" in precisions:
        with clock("FP16 conversion"):
            models["fp16"] = Fp16OnnxFromOnnx(fp32)()
    if "int8" in precisions:
        with clock(f"INT8 calibration on {len(calibration)} images"):
            models["int8"], quantizer_report = quantize_within_gate(fp32, manifest, calibration, validation, progress)

    runners = [TorchRunner(module, names)] + [OnnxRuntimeRunner(data, name) for name, data in models.items()]
    with clock(f"validation: {len(runners)} runners on {len(validation)} images"):
        runs = Comparator.run(runners, validation.images, progress)
    with clock("judging every head"):
        verdicts = {"fp32": compare_accuracy(manifest, runs["pytorch"].outputs, runs["fp32"].outputs, validation,
                                             "fp32", reference_name="pytorch")}
        for name in ("fp16", "int8"):
            if name in models:
                verdicts[name] = compare_accuracy(manifest, runs["fp32"].outputs, runs[name].outputs, validation, name)
    written = [name for name in PRECISIONS if name in models and (name == "fp32" or verdicts[name].passed)]
    refused = {name: verdicts[name].failures for name in models if name not in written}

    document = {
        "radedge": __version__,
        "thresholds": manifest.gate.to_document(),
        "validation": validation.describe(),
        "calibration": None if calibration is None else calibration.describe(),
        "fp32_against_pytorch": {"max_abs_difference": numeric.max_abs_difference,
                                 "max_abs_reference": numeric.max_abs_reference,
                                 "images": numeric.samples, "atol": ONNX_ATOL, "rtol": ONNX_RTOL},
        "precisions": {
            name: {"written": name in written, "file": PRECISION_FILES[name], **verdicts[name].summary(),
                   "failures": verdicts[name].failures, "seconds": round(runs[name].seconds, 2)}
            for name in models
        },
        "pytorch_seconds": round(runs["pytorch"].seconds, 2),
        "quantization": quantizer_report,
        "tensorrt": "not run: TensorRT is not part of this export; engines are built from these ONNX files on the target",
        "seconds": seconds,
    }
    entries = {name: Precision(name, PRECISION_FILES[name], verdicts[name].summary()) for name in written}
    record = {
        **dict(manifest.provenance),
        **dict(provenance or {}),
        "exporter": f"radedge {__version__}",
        "opset": OPSET,
        "output_names": list(names),
        "onnx_vs_torch_max_abs_difference": numeric.max_abs_difference,
        "validation": {**dict(manifest.provenance.get("validation", {})), **validation.describe()},
    }
    if calibration is not None:
        record["calibration"] = calibration.describe()
    final = dataclasses.replace(manifest, precisions=entries, provenance=record)
    gate_bytes = (json.dumps(document, indent=2, default=_plain) + "\n").encode()
    extra = {PRECISION_FILES[name]: models[name] for name in written if name != "fp32"}
    def write(directory: Path) -> None:
        SaveBundle(fp32, final, {**extra, GATE_REPORT: gate_bytes})(directory)
        if sign_key is not None:
            from radedge.bundle.signing import sign_bundle

            progress(f"signed with key {sign_bundle(directory, sign_key)}")

    with clock("writing the bundle"):
        bundle = write_directory(out, write)
    return ExportReport(bundle, written, refused, verdicts, document, seconds)


def quantize_within_gate(fp32: bytes, manifest: Manifest, calibration: ImageSet, validation: ImageSet,
                         progress: Callable[[str], None] = print_progress) -> tuple[bytes, dict[str, Any]]:
    """INT8 Q/DQ of ``fp32``, with as few layers left in float as the gate needs.

    Every Conv/Gemm is quantized except each head's final layer. When that fails the gate on
    the validation set, each quantized layer's sensitivity is measured alone (that layer in
    INT8, the rest in float, on ``SENSITIVITY_IMAGES`` images: the raw outputs' squared error
    over their variance, after each head's activation, so that errors in saturated logits no
    decision reads do not count), and the most sensitive layers go back to float, 1, 2, 4, ... of
    them, until the gate passes or ``MAX_FLOAT_FRACTION`` of the layers are float. TensorRT
    runs the float layers in the strongly typed graph's own precision. Returns the model
    (the last one tried, when none passed: the gate then refuses it) and the quantizer's
    report, with the layers returned to float and their sensitivities.
    """
    def images(subset: ImageSet):
        return lambda: [subset.images[i : i + 1] for i in range(len(subset))]

    def judge(model: bytes, subset: ImageSet, reference: dict[str, np.ndarray]) -> PrecisionVerdict:
        outputs = OnnxRuntimeRunner(model, "int8").infer(subset.images)
        return compare_accuracy(manifest, reference, outputs, subset, "int8")

    quantizer = QdqOnnxFromOnnx(fp32, images(calibration))
    model = quantizer()
    reference = OnnxRuntimeRunner(fp32, "fp32").infer(validation.images)
    verdict = judge(model, validation, reference)
    report = quantizer.report.to_document()
    if verdict.passed:
        return model, report
    layers = list(quantizer.report.quantized_nodes)
    heads = list(quantizer.report.kept_float)
    progress(f"INT8 with every layer quantized fails the gate ({'; '.join(verdict.failures)}); "
             f"measuring the sensitivity of {len(layers)} layers")
    probe = validation.head(SENSITIVITY_IMAGES)
    probe_activated = activated(manifest, {name: values[: len(probe)] for name, values in reference.items()})
    probe_calibration = calibration.head(SENSITIVITY_IMAGES)
    sensitivity = {}
    for layer in layers:
        alone = QdqOnnxFromOnnx(fp32, images(probe_calibration), keep_float=heads + [n for n in layers if n != layer])()
        outputs = activated(manifest, OnnxRuntimeRunner(alone, "probe").infer(probe.images))
        sensitivity[layer] = float(sum(
            np.mean((outputs[name] - probe_activated[name]) ** 2) / max(float(np.var(probe_activated[name])), 1e-12)
            for name in probe_activated
        ))
    ranked = sorted(layers, key=lambda name: -sensitivity[name])
    count = 1
    limit = max(1, int(len(layers) * MAX_FLOAT_FRACTION))
    while True:
        kept = ranked[:count]
        quantizer = QdqOnnxFromOnnx(fp32, images(calibration), keep_float=heads + kept)
        model = quantizer()
        verdict = judge(model, validation, reference)
        progress(f"INT8 with {count} sensitive layer(s) in float: "
                 + ("passes the gate" if verdict.passed else "; ".join(verdict.failures)))
        if verdict.passed or count >= limit:
            break
        count = min(limit, count * 2)
    report = quantizer.report.to_document()
    report["returned_to_float"] = {name: round(sensitivity[name], 6) for name in kept}
    report["layers"] = len(layers)
    return model, report


def activated(manifest: Manifest, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The outputs the heads read, through each head's activation (sigmoid, softmax over the
    channels); a detector's box distances and other raw tensors as they are."""
    raw = set()
    for head in manifest.heads:
        if head.kind == "detection" and head.decode.format == "dense":
            raw.update(level.distances for level in head.decode.levels)
        elif head.kind == "detection":
            raw.add(head.decode.boxes)
    result = {}
    for head in manifest.heads:
        for name in head.tensors:
            value = outputs[name].astype(np.float64)
            if name in raw or head.activation == "none":
                result[name] = value
            elif head.activation == "sigmoid":
                result[name] = sigmoid(np.clip(value, -60.0, 60.0))
            else:
                result[name] = np.moveaxis(softmax(np.moveaxis(value, 1, -1)), -1, 1)
    return result


def recipe_sets(model_recipe: Any, *, validation_count: int, calibration_count: int, seed: int = 0,
                workers: int = 1, cache: Path | None = None) -> tuple[dict[str, np.ndarray], ImageSet, ImageSet]:
    """A recipe's validation phantoms (with their targets, for the operating points), the
    same as a set with classification truth, and its calibration set: training phantoms
    (seeds from ``seed``), never validation ones."""
    from .recipes.base import VALIDATION_SEED, build_dataset

    val_data = build_dataset(model_recipe, range(VALIDATION_SEED + seed, VALIDATION_SEED + seed + validation_count),
                             cache, workers)
    cal_data = build_dataset(model_recipe, range(seed, seed + calibration_count), cache, workers)
    return val_data, phantom_set(model_recipe, val_data, "validation"), phantom_set(model_recipe, cal_data, "training")


def phantom_set(model_recipe: Any, data: dict[str, np.ndarray], role: str) -> ImageSet:
    """A recipe's phantoms (``build_dataset``'s arrays) as an image set, with class truth."""
    seeds = data["seeds"]
    return tensor_set(data["image"], f"{model_recipe.model_id} {role} phantoms, seeds {seeds[0]}-{seeds[-1]}",
                      model_recipe.class_labels(data))


def recipe_manifest(model_recipe: Any, module: Any, val_data: dict[str, np.ndarray],
                    provenance: dict[str, Any] | None = None) -> Manifest:
    """A reference model's manifest: its flags' operating points chosen on the validation
    phantoms ``val_data`` (as training does), the validation figures in its provenance."""
    import torch

    from .recipes.base import run_model

    outputs = run_model(torch, module, val_data, model_recipe.output_names)
    seeds = val_data["seeds"]
    record = {
        **dict(provenance or {}),
        "validation": {"phantoms": len(seeds), "seeds": [int(seeds[0]), int(seeds[-1]) + 1],
                       **model_recipe.validation_metrics(outputs, val_data)},
    }
    return model_recipe.manifest(model_recipe.operating_points(outputs, val_data), record)


class _Clock:
    """Times named steps into ``seconds`` and reports each as it starts and ends."""

    def __init__(self, seconds: dict[str, float], progress: Callable[[str], None]):
        self.seconds, self.progress = seconds, progress

    def __call__(self, step: str) -> _Clock:
        self.step = step
        return self

    def __enter__(self) -> None:
        self.progress(f"{self.step} ...")
        self.started = time.perf_counter()

    def __exit__(self, kind, value, traceback) -> None:
        elapsed = time.perf_counter() - self.started
        self.seconds[self.step] = round(elapsed, 2)
        if kind is None:
            self.progress(f"{self.step}: done in {elapsed:.1f} s")


def _shown(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


