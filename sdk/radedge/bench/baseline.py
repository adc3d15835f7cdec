"""The research pipeline a vendor would otherwise write, run beside radedge by
``radedge bench --baseline``: pydicom, numpy, OpenCV and ONNX Runtime, step by obvious step.

Per image:

- read: ``pydicom.dcmread`` of the bytes, then ``ds.pixel_array`` (pydicom's decoder plugins);
- preprocess: ``pydicom_display``, the modality LUT and the VOI LUT applied to every pixel in
  float64 and mapped onto [0, 1] (``apply_modality_lut``, ``apply_voi_lut``; an explicit or
  percentile window of the manifest in numpy), once per intensity handling as radedge builds
  one table; then ``reference_tensor``, ``cv2.resize`` to the model input (letterbox) and
  numpy normalisation;
- inference: the bundle's own ONNX file for the precision radedge runs, in an ONNX Runtime
  ``InferenceSession`` with the same intra-op thread count, on the CPU;
- post-process: per head kind, softmax / sigmoid in numpy; segmentation logits upsampled with
  ``cv2.resize`` to the input, cropped to the image, resized to the source and thresholded
  after a sigmoid (or softmax); heatmap peaks with ``cv2.dilate`` as a max filter; dense
  detections decoded in numpy with per-class ``cv2.dnn.NMSBoxesBatched``; the class
  activation map of the top class; then the manifest's flag rules.

It runs the models radedge applied to the image (routing by scope is not part of it) and a
second-stage model on the region its first stage found, grown as the manifest says
(``grow_box``). Pixel padding is not masked (pydicom has no padding rule) and heatmap peaks
are not refined below a cell: the decisions, not the pixels, are what it must agree on.

``pydicom_display`` and ``reference_tensor`` are also the references radedge's intensity and
preprocess tests check the fused op against (``tests/reference_chain.py``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from ..errors import MissingDependencyError
from ..pipeline.timer import StageTimer
from ..spec.geometry import Crop, grow_box
from ..spec.heads import HeadSpec
from ..spec.manifest import IntensitySpec, Manifest
from ..spec.window import Percentile, Window

try:
    import cv2
except ImportError:  # radedge runs without OpenCV; only this pipeline (the bench extra) needs it
    cv2 = None

#: What to install for the baseline where OpenCV is missing.
OPENCV_HINT = ("pip install 'radedge[bench]' (opencv-python-headless), or any OpenCV build that provides "
               "the cv2 module (opencv-python, opencv-contrib-python)")


def opencv_missing() -> bool:
    """Whether the research pipeline cannot run here for want of OpenCV."""
    return cv2 is None


#: The baseline's stages, and radedge's stages each one stands against.
STAGES: dict[str, tuple[str, ...]] = {
    "read": ("read",),
    "preprocess": ("lut", "preprocess"),
    "inference": ("inference",),
    "postprocess": ("decode", "flags"),
    "total": ("total",),
}


def letterbox_placement(rows: int, columns: int, height: int, width: int,
                        letterbox: bool = True) -> tuple[int, int, int, int]:
    """Where a ``rows`` x ``columns`` image lands in a ``height`` x ``width`` model input:
    (content height, content width, top, left) in input pixels. Letterbox: the limiting side
    filled, the other rounded half up, centred with ``(n - size) // 2``; stretch: all of it."""
    if not letterbox:
        return height, width, 0, 0
    if height / rows <= width / columns:  # height limits: full height, width rounded half up
        content_h, content_w = height, max(1, int(np.floor(columns * height / rows + 0.5)))
    else:
        content_h, content_w = max(1, int(np.floor(rows * width / columns + 0.5))), width
    return content_h, content_w, (height - content_h) // 2, (width - content_w) // 2


def pydicom_display(ds: pydicom.Dataset, stored: np.ndarray, index: int = 0) -> np.ndarray:
    """pydicom 3's chain on ``stored`` (the stored values), float64 [rows, columns] in [0, 1]:
    modality LUT or rescale, then ``apply_voi_lut(prefer_lut=True)`` at ``index``, mapped onto
    [0, 1] with pydicom's output range (the window's [y_min, y_max], read back from pydicom by
    windowing -inf and +inf; a VOI LUT's [0, 2**bits - 1]), without VOI the min-max of the
    modality values, then 1 - x for MONOCHROME1 (pydicom never inverts)."""
    modality = apply_modality_lut(stored, ds)
    voi_lut = ds.get("VOILUTSequence")
    if voi_lut:
        out = apply_voi_lut(modality, ds, index, prefer_lut=True).astype(np.float64)
        out /= 2 ** voi_lut[index].LUTDescriptor[2] - 1
    elif "WindowCenter" in ds:
        with np.errstate(over="ignore"):
            out = apply_voi_lut(modality, ds, index)
            y_min, y_max = apply_voi_lut(np.array([-np.inf, np.inf]), ds, index)
        out = (out - y_min) / (y_max - y_min)
    else:
        out = _min_max(modality)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        out = 1.0 - out
    return out


def reference_tensor(display: np.ndarray, height: int, width: int, *, letterbox: bool = True,
                     pad_value: float = 0.0, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """``display`` (float [rows, columns] in [0, 1]) -> float32 [height, width] model input:
    resized with OpenCV as a model input is made (INTER_AREA along an axis that shrinks,
    INTER_LINEAR along one that grows), placed by ``letterbox_placement`` on a canvas of
    ``pad_value`` and normalised, ``(x - mean) / std``."""
    rows, columns = display.shape
    content_h, content_w, top, left = letterbox_placement(rows, columns, height, width, letterbox)
    # One axis at a time: INTER_AREA where it shrinks, INTER_LINEAR where it grows. When
    # both shrink (or both grow) this equals a single cv2.resize with that interpolation.
    resized = display.astype(np.float32)
    resized = cv2.resize(resized, (columns, content_h),
                         interpolation=cv2.INTER_AREA if content_h < rows else cv2.INTER_LINEAR)
    resized = cv2.resize(resized, (content_w, content_h),
                         interpolation=cv2.INTER_AREA if content_w < columns else cv2.INTER_LINEAR)
    canvas = np.full((height, width), pad_value, dtype=np.float32)
    canvas[top:top + content_h, left:left + content_w] = resized
    return (canvas - mean) / std


class BaselineUnsupported(Exception):
    """An input the baseline does not handle (not DICOM, colour, no pixels): radedge's figures
    for it stand alone."""


@dataclass(frozen=True)
class Decision:
    """What one model decided on one image: the ``flags`` raised (codes, in rule order) and the
    display head's top label (``verdict``; None for a head that is not a classification)."""

    flags: tuple[str, ...]
    verdict: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"flags": list(self.flags), "verdict": self.verdict}


@dataclass
class BaselineRun:
    """One image through the baseline: ``timings_ms`` by stage (``STAGES``), each model's
    ``decisions``, and ``notes`` on what it could not do (a second stage without a region)."""

    timings_ms: dict[str, float]
    decisions: dict[str, Decision]
    notes: list[str] = field(default_factory=list)


class BaselinePipeline:
    """The research pipeline over radedge's loaded models (``Model`` objects: their manifests,
    bundles and precisions), with its own ONNX Runtime sessions on the same model files.

    ``threads``: ONNX Runtime intra-op threads, as radedge's backend was given (0: ONNX
    Runtime's default, one per core). Idle intra-op threads do not spin, as in radedge's
    backend, so neither pipeline's leftover spinning takes the cores from the other when they
    take turns.
    """

    def __init__(self, models: Iterable[Any], *, threads: int = 0):
        if opencv_missing():
            raise MissingDependencyError("opencv-python-headless", f"The OpenCV research pipeline ({OPENCV_HINT})")
        import onnxruntime as ort

        self._models: dict[str, Any] = {}
        self._sessions: dict[str, Any] = {}
        for model in models:
            options = ort.SessionOptions()
            if threads > 0:
                options.intra_op_num_threads = threads
            options.log_severity_level = 3
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            onnx = model.bundle.read(model.manifest.precisions[model.precision].file)
            self._sessions[model.model_id] = ort.InferenceSession(onnx, sess_options=options,
                                                                  providers=["CPUExecutionProvider"])
            self._models[model.model_id] = model

    def run(self, data: bytes, model_ids: Sequence[str]) -> BaselineRun:
        """``data`` (a DICOM file's bytes) through the models ``model_ids`` (in the order that
        feeds second stages after their first), timed by stage."""
        timer = StageTimer()
        try:
            ds = pydicom.dcmread(io.BytesIO(data))
        except Exception as exc:  # pydicom raises many untyped errors; the baseline only reports them
            raise BaselineUnsupported(f"pydicom cannot read it ({type(exc).__name__}: {exc})") from None
        if "PixelData" not in ds:
            raise BaselineUnsupported("no Pixel Data")
        if int(ds.get("SamplesPerPixel", 1)) != 1:
            raise BaselineUnsupported("colour images are not part of the baseline")
        stored = ds.pixel_array
        if stored.ndim == 3:
            stored = stored[0]
        timer.lap("read")
        spacing = _pixel_spacing(ds)
        displays: dict[IntensitySpec, np.ndarray] = {}
        heads_by_model: dict[str, dict[str, Any]] = {}
        decisions: dict[str, Decision] = {}
        notes: list[str] = []
        for model_id in model_ids:
            manifest: Manifest = self._models[model_id].manifest
            display = displays.get(manifest.intensity)
            if display is None:
                display = displays[manifest.intensity] = _display(ds, stored, manifest.intensity)
            crop = Crop(0, 0, display.shape[1], display.shape[0])
            if manifest.input_region is not None:
                crop = _region(manifest, heads_by_model, display.shape)
                if crop is None:
                    notes.append(f"{model_id}: {manifest.input_region.model} found no region for it")
                    decisions[model_id] = Decision((), None)
                    continue
            tensor = _model_input(display[crop.y:crop.y + crop.height, crop.x:crop.x + crop.width], manifest)
            session = self._sessions[model_id]
            feed = tensor.astype(np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32)
            timer.lap("preprocess")
            names = [output.name for output in session.get_outputs()]
            outputs = dict(zip(names, session.run(names, {manifest.input_name: feed})))
            timer.lap("inference")
            heads = _decode(manifest, outputs, crop, spacing)
            heads_by_model[model_id] = heads
            decisions[model_id] = Decision(_flags(manifest, heads), _verdict(manifest, heads))
            timer.lap("postprocess")
        timings = timer.finish()
        return BaselineRun({stage: timings.get(stage, 0.0) for stage in STAGES}, decisions, notes)


def _min_max(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _display(ds: pydicom.Dataset, stored: np.ndarray, spec: IntensitySpec) -> np.ndarray:
    """The [0, 1] image a model with intensity handling ``spec`` was trained on."""
    if spec.window is None and spec.voi == "file":
        return pydicom_display(ds, stored, spec.voi_index)
    modality = apply_modality_lut(stored, ds).astype(np.float64)
    if spec.window is not None:
        out = _window(modality, spec.window)
    elif isinstance(spec.voi, Percentile):
        low, high = np.percentile(modality, [spec.voi.low, spec.voi.high])
        out = np.clip((modality - low) / (high - low), 0.0, 1.0) if high > low else np.zeros_like(modality)
    else:
        out = _min_max(modality)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        out = 1.0 - out
    return out


def _window(values: np.ndarray, window: Window) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 LINEAR, C.11.2.1.3.2 LINEAR_EXACT and C.11.2.1.3.1 SIGMOID onto [0, 1]."""
    center, width = float(window.center), float(window.width)
    function = str(window.function).upper()
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR":
        center, width = center - 0.5, width - 1.0
    if width <= 0:
        return (values > center).astype(np.float64)
    return np.clip((values - center) / width + 0.5, 0.0, 1.0)


def _model_input(display: np.ndarray, manifest: Manifest) -> np.ndarray:
    """float32 [1, C, H, W]: the grey image resized, letterboxed and normalised per channel."""
    spec = manifest.preprocess
    letterbox = spec.resize == "letterbox"
    if spec.channels == 1:
        plane = reference_tensor(display, spec.height, spec.width, letterbox=letterbox, pad_value=spec.pad_value,
                                 mean=spec.mean[0], std=spec.std[0])
        return plane[None, None]
    plane = reference_tensor(display, spec.height, spec.width, letterbox=letterbox, pad_value=spec.pad_value)
    means = np.resize(np.asarray(spec.mean, np.float32), spec.channels)[:, None, None]
    stds = np.resize(np.asarray(spec.std, np.float32), spec.channels)[:, None, None]
    return ((plane[None] - means) / stds)[None]


def _pixel_spacing(ds: pydicom.Dataset) -> tuple[float, float] | None:
    """(row mm, column mm) from Pixel Spacing, else Imager Pixel Spacing; None without either."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is not None and len(value) == 2:
            return float(value[0]), float(value[1])
    return None


@dataclass(frozen=True)
class _Placement:
    """Where the crop lies in the model input (see ``letterbox_placement``)."""

    crop: Crop
    content_h: int
    content_w: int
    top: int
    left: int
    input_h: int
    input_w: int

    def to_source(self, x_in: np.ndarray, y_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = (x_in - self.left) * self.crop.width / self.content_w + self.crop.x
        y = (y_in - self.top) * self.crop.height / self.content_h + self.crop.y
        return x, y


def _placement(manifest: Manifest, crop: Crop) -> _Placement:
    spec = manifest.preprocess
    content_h, content_w, top, left = letterbox_placement(crop.height, crop.width, spec.height, spec.width,
                                                          spec.resize == "letterbox")
    return _Placement(crop, content_h, content_w, top, left, spec.height, spec.width)


def _softmax(values: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-values))


def _decode(manifest: Manifest, outputs: Mapping[str, np.ndarray], crop: Crop,
            spacing: tuple[float, float] | None) -> dict[str, Any]:
    """Each head's result as plain data: probabilities, a mask's regions, boxes or peaks."""
    placement = _placement(manifest, crop)
    heads: dict[str, Any] = {}
    # A class activation map reads the decision of the head it explains: decode it last.
    for spec in sorted(manifest.heads, key=lambda head: head.kind == "cam"):
        if spec.kind == "classification":
            logits = np.asarray(outputs[spec.tensors[0]], np.float32).reshape(-1)
            probabilities = _softmax(logits) if spec.activation == "softmax" else _sigmoid(logits)
            heads[spec.name] = dict(zip(spec.labels, probabilities.tolist()))
        elif spec.kind == "segmentation":
            heads[spec.name] = _segment(spec, np.asarray(outputs[spec.tensors[0]], np.float32)[0], placement, spacing)
        elif spec.kind == "heatmap":
            heads[spec.name] = _peaks(spec, np.asarray(outputs[spec.tensors[0]], np.float32)[0], placement)
        elif spec.kind == "detection":
            heads[spec.name] = _detect(spec, outputs, placement)
        elif spec.kind == "cam":
            probabilities = heads[spec.decode.explains]
            label = spec.decode.label or max(probabilities, key=probabilities.get)
            values = np.asarray(outputs[spec.tensors[0]], np.float32)[0, spec.labels.index(label)]
            row, column = np.unravel_index(int(np.argmax(values)), values.shape)
            heads[spec.name] = {"label": label, "peak_cell": (int(column), int(row))}
    return heads


def _segment(spec: HeadSpec, logits: np.ndarray, placement: _Placement,
             spacing: tuple[float, float] | None) -> dict[str, dict[str, Any]]:
    """logits [C, h, w] -> per label {pixels, bbox (x0, y0, x1, y1 exclusive, source), area_mm2}."""
    crop = placement.crop
    planes = []
    for channel in logits:
        full = cv2.resize(channel, (placement.input_w, placement.input_h), interpolation=cv2.INTER_LINEAR)
        content = full[placement.top:placement.top + placement.content_h,
                       placement.left:placement.left + placement.content_w]
        planes.append(cv2.resize(content, (crop.width, crop.height), interpolation=cv2.INTER_LINEAR))
    stack = np.stack(planes)
    if spec.activation == "sigmoid":
        above = _sigmoid(stack) >= spec.decode.threshold
        if len(planes) == 1:
            mask = above[0].astype(np.uint8)
        else:
            best = np.argmax(stack, axis=0)
            mask = np.where(np.take_along_axis(above, best[None], 0)[0], best + 1, 0).astype(np.uint8)
    else:
        mask = np.argmax(_softmax(stack, axis=0), axis=0).astype(np.uint8)
    regions = {}
    for index, label in enumerate(spec.labels, start=1):
        rows, columns = np.nonzero(mask == index)
        count = int(rows.size)
        bbox = None if count == 0 else (int(columns.min()) + crop.x, int(rows.min()) + crop.y,
                                        int(columns.max()) + 1 + crop.x, int(rows.max()) + 1 + crop.y)
        area = None if spacing is None else count * spacing[0] * spacing[1]
        regions[label] = {"pixels": count, "bbox": bbox, "area_mm2": area}
    return regions


def _peaks(spec: HeadSpec, maps: np.ndarray, placement: _Placement) -> list[dict[str, Any]]:
    """maps [C, h, w] -> peaks {label, channel, score, cell (x, y), xy (source)}: local maxima
    in a (2 radius + 1)² window at or above the threshold, the best k per channel (or each
    channel's best cell, mode argmax), then, with exclusive_radius, of peaks of different
    channels within that many cells only the best."""
    decode = spec.decode
    scores = _sigmoid(maps) if spec.activation == "sigmoid" else maps
    height, width = scores.shape[1:]
    found = []
    for channel, label in enumerate(spec.labels):
        plane = np.ascontiguousarray(scores[channel], np.float32)
        if decode.mode == "argmax":
            row, column = np.unravel_index(int(np.argmax(plane)), plane.shape)
            candidates = [(float(plane[row, column]), int(row), int(column))]
        else:
            size = 2 * decode.radius + 1
            local_max = cv2.dilate(plane, np.ones((size, size), np.uint8))
            rows, columns = np.nonzero((plane >= local_max) & (plane >= decode.threshold))
            candidates = sorted(zip(plane[rows, columns].tolist(), rows.tolist(), columns.tolist()),
                                key=lambda c: -c[0])[:decode.k]
        for score, row, column in candidates:
            if score >= decode.threshold:
                found.append({"label": label, "channel": channel, "score": score, "cell": (column, row)})
    if decode.exclusive_radius:
        kept: list[dict[str, Any]] = []
        for peak in sorted(found, key=lambda p: -p["score"]):
            if all(other["channel"] == peak["channel"]
                   or max(abs(other["cell"][0] - peak["cell"][0]), abs(other["cell"][1] - peak["cell"][1]))
                   > decode.exclusive_radius for other in kept):
                kept.append(peak)
        found = kept
    for peak in found:
        column, row = peak["cell"]
        x_in = (column + 0.5) * placement.input_w / width
        y_in = (row + 0.5) * placement.input_h / height
        peak["xy"] = tuple(float(v) for v in placement.to_source(np.float64(x_in), np.float64(y_in)))
    return found


def _detect(spec: HeadSpec, outputs: Mapping[str, np.ndarray], placement: _Placement) -> list[dict[str, Any]]:
    """Dense levels or decoded boxes -> boxes {label, score, xyxy (source)}, best first, after
    the score threshold, top-k, per-class NMS (``cv2.dnn.NMSBoxesBatched``) and max_detections."""
    decode = spec.decode
    boxes, scores, classes = [], [], []
    if decode.format == "dense":
        for level in decode.levels:
            logits = np.asarray(outputs[level.scores], np.float32)[0]
            probability = _sigmoid(logits) if spec.activation == "sigmoid" else logits
            if level.centerness is not None:
                centerness = _sigmoid(np.asarray(outputs[level.centerness], np.float32)[0])
                probability = (np.sqrt(probability * centerness) if decode.centerness_mode == "sqrt"
                               else probability * centerness)
            distances = np.asarray(outputs[level.distances], np.float32)[0]
            if decode.distance_units == "stride":
                distances = distances * level.stride
            index, rows, columns = np.nonzero(probability > decode.score_threshold)
            centre_x = (columns + decode.cell_offset) * level.stride
            centre_y = (rows + decode.cell_offset) * level.stride
            left, top, right, bottom = (distances[side, rows, columns] for side in range(4))
            boxes.append(np.stack([centre_x - left, centre_y - top, centre_x + right, centre_y + bottom], axis=1))
            scores.append(probability[index, rows, columns])
            classes.append(index)
    else:
        raw = np.asarray(outputs[decode.boxes], np.float32)[0]
        probability = np.asarray(outputs[decode.scores], np.float32)[0]
        if spec.activation == "sigmoid":
            probability = _sigmoid(probability)
        if decode.box_format == "cxcywh":
            raw = np.stack([raw[:, 0] - raw[:, 2] / 2, raw[:, 1] - raw[:, 3] / 2,
                            raw[:, 0] + raw[:, 2] / 2, raw[:, 1] + raw[:, 3] / 2], axis=1)
        box_index, index = np.nonzero(probability > decode.score_threshold)
        boxes.append(raw[box_index])
        scores.append(probability[box_index, index])
        classes.append(index)
    boxes_xyxy = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
    box_scores = np.concatenate(scores) if scores else np.zeros(0, np.float32)
    box_classes = np.concatenate(classes) if classes else np.zeros(0, np.int64)
    order = np.argsort(-box_scores, kind="stable")[:decode.pre_nms_top_k]
    boxes_xyxy, box_scores, box_classes = boxes_xyxy[order], box_scores[order], box_classes[order]
    if box_scores.size:
        xywh = np.column_stack([boxes_xyxy[:, :2], boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]]).tolist()
        groups = np.zeros_like(box_classes) if decode.class_agnostic else box_classes
        kept = cv2.dnn.NMSBoxesBatched(xywh, box_scores.tolist(), groups.astype(np.int32).tolist(),
                                       float(decode.score_threshold), float(decode.iou_threshold))
        kept = sorted(np.asarray(kept, np.int64).reshape(-1).tolist(), key=lambda i: -box_scores[i])
        kept = kept[:decode.max_detections]
    else:
        kept = []
    found = []
    crop = placement.crop
    for i in kept:
        x1, y1 = placement.to_source(boxes_xyxy[i, 0], boxes_xyxy[i, 1])
        x2, y2 = placement.to_source(boxes_xyxy[i, 2], boxes_xyxy[i, 3])
        x1, x2 = (float(np.clip(v, crop.x, crop.x + crop.width)) for v in (x1, x2))
        y1, y2 = (float(np.clip(v, crop.y, crop.y + crop.height)) for v in (y1, y2))
        found.append({"label": spec.labels[int(box_classes[i])], "score": float(box_scores[i]),
                      "xyxy": (x1, y1, x2, y2)})
    return found


def _holds(spec: HeadSpec, result: Any, label: str, threshold: float) -> bool:
    """Whether ``label`` of this head reaches ``threshold`` (the flag rule's meaning per kind)."""
    if spec.kind == "classification":
        return result[label] >= threshold
    if spec.kind == "segmentation":
        area = result[label]["area_mm2"]
        return result[label]["pixels"] > 0 and area is not None and area >= threshold
    if spec.kind in ("detection", "heatmap"):
        return any(item["label"] == label and item["score"] >= threshold for item in result)
    return False


def _flags(manifest: Manifest, heads: Mapping[str, Any]) -> tuple[str, ...]:
    raised = []
    for rule in manifest.flag_rules:
        if all(_holds(manifest.head(condition.head), heads[condition.head], condition.label, condition.threshold)
               for condition in rule.conditions):
            raised.append(rule.code)
    return tuple(raised)


def _verdict(manifest: Manifest, heads: Mapping[str, Any]) -> str | None:
    if manifest.display_head is None or manifest.head(manifest.display_head).kind != "classification":
        return None
    probabilities = heads[manifest.display_head]
    return max(probabilities, key=probabilities.get)


def _region(manifest: Manifest, heads_by_model: Mapping[str, Mapping[str, Any]],
            shape: tuple[int, int]) -> Crop | None:
    """The source rectangle a second-stage model reads: its first stage's best box of the
    label, or the bounding box of the label's region, grown by the margin (``grow_box``)."""
    needed = manifest.input_region
    result = heads_by_model.get(needed.model, {}).get(needed.head)
    if result is None:
        return None
    box = None
    if isinstance(result, list):  # detection boxes, best first
        boxes = [item for item in result if needed.label is None or item["label"] == needed.label]
        box = boxes[0]["xyxy"] if boxes else None
    else:  # segmentation regions by label
        region = result[needed.label] if needed.label else next(iter(result.values()))
        box = region["bbox"]
    if box is None:
        return None
    return grow_box(tuple(float(v) for v in box), needed.margin, shape[0], shape[1])
