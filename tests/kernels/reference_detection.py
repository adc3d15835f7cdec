"""Slow, obvious numpy reference for radedge's detection ops (decode_dense, decode_boxes, nms).

Written from the documented rules (radedge/detection.h, radedge.ops.detection) with plain loops;
it shares no code with the C++ ops.

``precision`` selects the arithmetic of boxes and IoU:

- ``"float64"``: the mathematical definition, evaluated in float64;
- ``"float32"``: the same formulas with every operation rounded to float32, in the order the
  documentation gives (cx = (x + offset) * stride, x1 = cx - l * unit, area = w * h,
  union = (area_a + area_b) - intersection, IoU = intersection / union), as the ops compute.

Scores are float32 in both: a logit's score is float64 sigmoid rounded to float32, and
centerness is combined in float32, because the ops define the score that way and the
order of candidates (and so the result) depends on its exact value.

The two precisions can only disagree where the float32 rounding of a box or an IoU moves
the IoU across the threshold; ``Result.disagreements`` records every pair NMS evaluated
where that happens, so a test can check that a difference has this cause.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

F32 = np.float32


def sigmoid(logit) -> np.float32:
    """float32(1 / (1 + exp(-x))) with x and the arithmetic in float64."""
    with np.errstate(over="ignore"):
        return F32(1.0 / (1.0 + np.exp(-np.float64(logit))))


def combine(class_score: np.float32, centerness_score, mode: str) -> np.float32:
    if centerness_score is None:
        return F32(class_score)
    product = F32(F32(class_score) * F32(centerness_score))
    return F32(np.sqrt(product)) if mode == "sqrt" else product


def score_of(value, scores_are: str) -> np.float32:
    return sigmoid(value) if scores_are == "logits" else F32(value)


def dense_box(x: int, y: int, stride: float, offset: float, unit: float, distances, precision: str):
    left, top, right, bottom = distances
    if precision == "float32":
        cx = F32(F32(F32(x) + F32(offset)) * F32(stride))
        cy = F32(F32(F32(y) + F32(offset)) * F32(stride))
        u = F32(unit)
        return (
            F32(cx - F32(F32(left) * u)),
            F32(cy - F32(F32(top) * u)),
            F32(cx + F32(F32(right) * u)),
            F32(cy + F32(F32(bottom) * u)),
        )
    cx, cy = (x + offset) * stride, (y + offset) * stride
    return (
        cx - float(left) * unit,
        cy - float(top) * unit,
        cx + float(right) * unit,
        cy + float(bottom) * unit,
    )


def decoded_box(values, box_format: str, precision: str):
    a, b, c, d = (float(v) for v in values)
    if box_format == "xyxy":
        return tuple(F32(v) for v in (a, b, c, d)) if precision == "float32" else (a, b, c, d)
    if precision == "float32":
        half_w, half_h = F32(F32(c) * F32(0.5)), F32(F32(d) * F32(0.5))
        return (F32(F32(a) - half_w), F32(F32(b) - half_h), F32(F32(a) + half_w), F32(F32(b) + half_h))
    return (a - c / 2, b - d / 2, a + c / 2, b + d / 2)


def iou(a, b, precision: str) -> float:
    """IoU with continuous coordinates; 0 when the union is 0 (float32: 0 / 0 is NaN, not > anything)."""
    if precision == "float32":
        area_a = F32(max(F32(0), F32(a[2] - a[0])) * max(F32(0), F32(a[3] - a[1])))
        area_b = F32(max(F32(0), F32(b[2] - b[0])) * max(F32(0), F32(b[3] - b[1])))
        width = max(F32(0), F32(min(a[2], b[2]) - max(a[0], b[0])))
        height = max(F32(0), F32(min(a[3], b[3]) - max(a[1], b[1])))
        intersection = F32(width * height)
        union = F32(F32(area_a + area_b) - intersection)
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(F32(intersection / union))
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    intersection = width * height
    union = area_a + area_b - intersection
    return intersection / union if union > 0 else 0.0


@dataclass
class Candidate:
    score: np.float32
    flat: int
    label: int
    box: tuple  # in the chosen precision
    box32: tuple  # float32 arithmetic, for the disagreement check
    box64: tuple  # float64 arithmetic


@dataclass
class Result:
    boxes: np.ndarray  # float32 [N, max_det, 4]
    scores: np.ndarray  # float32 [N, max_det]
    classes: np.ndarray  # int32 [N, max_det]
    valid: np.ndarray  # int32 [N]
    disagreements: list = field(default_factory=list)  # (iou64, threshold) of pairs where float32 and float64 disagree


def greedy_nms(candidates: list[Candidate], iou_threshold: float, max_detections: int, class_agnostic: bool,
               precision: str, disagreements: list, margins: list | None = None) -> list[Candidate]:
    """Greedy NMS in (score desc, flat asc) order; keeps at most max_detections. Appends to
    ``margins`` |IoU - threshold| (float64) of every pair it decides."""
    threshold = float(F32(iou_threshold))
    order = sorted(candidates, key=lambda c: (-float(c.score), c.flat))
    removed = [False] * len(order)
    kept = []
    for i, a in enumerate(order):
        if removed[i]:
            continue
        kept.append(a)
        if len(kept) == max_detections:
            break
        for j in range(i + 1, len(order)):
            b = order[j]
            if removed[j] or (not class_agnostic and a.label != b.label):
                continue
            value = iou(a.box, b.box, precision)
            iou32, iou64 = iou(a.box32, b.box32, "float32"), iou(a.box64, b.box64, "float64")
            if (iou32 > threshold) != (iou64 > threshold):
                disagreements.append((iou64, threshold))
            if margins is not None:
                margins.append(abs(iou64 - threshold))
            if value > threshold:
                removed[j] = True
    return kept


def map_box(box, geometry: dict | None) -> tuple:
    """Model-input box -> source pixels through a geometry (a dict of its fields), float64 then one
    rounding to float32, clipped to the crop, the region the model saw."""
    if geometry is None:
        return tuple(F32(v) for v in box)
    g = geometry
    xs = [(float(box[i]) - g["offset_x"]) / g["scale_x"] + g["crop_x"] for i in (0, 2)]
    ys = [(float(box[i]) - g["offset_y"]) / g["scale_y"] + g["crop_y"] for i in (1, 3)]
    xs = [min(max(v, g["crop_x"]), g["crop_x"] + g["crop_width"]) for v in xs]
    ys = [min(max(v, g["crop_y"]), g["crop_y"] + g["crop_height"]) for v in ys]
    return (F32(xs[0]), F32(ys[0]), F32(xs[1]), F32(ys[1]))


def finish(per_image: list[list[Candidate]], *, score_threshold, iou_threshold, pre_nms_top_k, max_detections,
           class_agnostic, geometries, precision) -> Result:
    batch = len(per_image)
    result = Result(
        np.zeros((batch, max_detections, 4), np.float32),
        np.zeros((batch, max_detections), np.float32),
        np.zeros((batch, max_detections), np.int32),
        np.zeros(batch, np.int32),
    )
    for n, candidates in enumerate(per_image):
        passing = [c for c in candidates if c.score > F32(score_threshold)]
        top = sorted(passing, key=lambda c: (-float(c.score), c.flat))[:pre_nms_top_k]
        kept = greedy_nms(top, iou_threshold, max_detections, class_agnostic, precision, result.disagreements)
        for s, c in enumerate(kept):
            result.boxes[n, s] = map_box(c.box, None if geometries is None else geometries[n])
            result.scores[n, s] = c.score
            result.classes[n, s] = c.label
        result.valid[n] = len(kept)
    return result


def decode_dense(scores, distances, centerness, strides, *, score_threshold, iou_threshold, pre_nms_top_k,
                 max_detections, class_agnostic=False, scores_are="logits", centerness_mode="sqrt",
                 distance_units="stride", cell_offset=0.5, geometries=None, precision="float32") -> Result:
    """The op's result for lists of per-level arrays (centerness None or a list)."""
    batch = scores[0].shape[0]
    per_image = []
    for n in range(batch):
        candidates = []
        flat = 0
        for level, (s, d, stride) in enumerate(zip(scores, distances, strides)):
            classes, height, width = s.shape[1:]
            unit = stride if distance_units == "stride" else 1.0
            for k in range(classes):
                for y in range(height):
                    for x in range(width):
                        ctr = None
                        if centerness is not None:
                            ctr = score_of(centerness[level][n, 0, y, x], scores_are)
                        score = combine(score_of(s[n, k, y, x], scores_are), ctr, centerness_mode)
                        values = d[n, :, y, x].astype(np.float64)
                        box32 = dense_box(x, y, stride, cell_offset, unit, values, "float32")
                        box64 = dense_box(x, y, stride, cell_offset, unit, values, "float64")
                        box = box32 if precision == "float32" else box64
                        candidates.append(Candidate(score, flat, k, box, box32, box64))
                        flat += 1
        per_image.append(candidates)
    return finish(per_image, score_threshold=score_threshold, iou_threshold=iou_threshold,
                  pre_nms_top_k=pre_nms_top_k, max_detections=max_detections, class_agnostic=class_agnostic,
                  geometries=geometries, precision=precision)


def decode_boxes(boxes, scores, *, score_threshold, iou_threshold, pre_nms_top_k, max_detections,
                 class_agnostic=False, scores_are="probabilities", box_format="xyxy", geometries=None,
                 precision="float32") -> Result:
    batch, count, classes = scores.shape
    per_image = []
    for n in range(batch):
        candidates = []
        for m in range(count):
            decoded = {p: decoded_box(boxes[n, m], box_format, p) for p in ("float32", "float64")}
            for k in range(classes):
                score = score_of(scores[n, m, k], scores_are)
                candidates.append(Candidate(score, m * classes + k, k, decoded[precision], decoded["float32"],
                                            decoded["float64"]))
        per_image.append(candidates)
    return finish(per_image, score_threshold=score_threshold, iou_threshold=iou_threshold,
                  pre_nms_top_k=pre_nms_top_k, max_detections=max_detections, class_agnostic=class_agnostic,
                  geometries=geometries, precision=precision)


@dataclass
class NmsResult:
    kept: list  # indices, best first
    disagreements: list  # as Result.disagreements
    closest: float  # the smallest |IoU - threshold| (float64) of a pair NMS decided


def nms(boxes, scores, classes, iou_threshold, max_detections, precision="float32") -> NmsResult:
    candidates = []
    for i in range(len(scores)):
        box32 = tuple(F32(v) for v in boxes[i])
        box64 = tuple(float(v) for v in boxes[i])
        label = 0 if classes is None else int(classes[i])
        candidates.append(Candidate(F32(scores[i]), i, label, box32 if precision == "float32" else box64, box32,
                                    box64))
    disagreements, margins = [], []
    kept = greedy_nms(candidates, iou_threshold, max_detections, classes is None, precision, disagreements, margins)
    return NmsResult([c.flat for c in kept], disagreements, min(margins, default=np.inf))
