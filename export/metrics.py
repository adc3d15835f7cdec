"""The figures the export stage measures models by: AUROC, Dice, box IoU, average precision.

Recipes use them against phantom ground truth; the accuracy gate uses them to compare a
reduced-precision model with the FP32 one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

IOU_THRESHOLD = 0.5


def auroc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted half); None
    without both classes."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    pos, neg = scores[positive], scores[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def rates(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    """Accuracy, sensitivity and specificity of boolean predictions."""
    predicted = np.asarray(predicted, dtype=bool)
    truth = np.asarray(truth, dtype=bool)

    def fraction(values: np.ndarray) -> float | None:
        return round(float(values.mean()), 4) if len(values) else None

    return {
        "accuracy": fraction(predicted == truth),
        "sensitivity": fraction(predicted[truth]),
        "specificity": fraction(~predicted[~truth]),
        "count": int(len(truth)),
    }


def dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient of two masks (1.0 when both are empty)."""
    predicted, truth = predicted.astype(bool), truth.astype(bool)
    total = predicted.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(predicted, truth).sum() / total)


def box_iou(box: Sequence[float], boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (x1, y1, x2, y2) with boxes float[M, 4], continuous coordinates."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0.0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0.0, None)
    intersection = width * height
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - intersection
    return np.where(union > 0, intersection / np.where(union > 0, union, 1.0), 0.0)


def average_precision(detections: Sequence[tuple[int, float, Sequence[float]]],
                      truths: dict[int, Sequence[Sequence[float]]], iou_threshold: float = IOU_THRESHOLD) -> float | None:
    """Average precision of one class: ``detections`` (image, score, box), ``truths`` image ->
    its true boxes. Detections are taken best first; one is a true positive when its IoU
    with a true box of its image not yet matched is >= ``iou_threshold``. All-point
    interpolation (PASCAL VOC 2010+): the area under the precision envelope over recall.
    None when the class has no true box."""
    total = sum(len(boxes) for boxes in truths.values())
    if total == 0:
        return None
    matched = {image: np.zeros(len(boxes), dtype=bool) for image, boxes in truths.items()}
    ordered = sorted(detections, key=lambda item: -item[1])
    hits = np.zeros(len(ordered))
    for rank, (image, _, box) in enumerate(ordered):
        candidates = truths.get(image, ())
        if len(candidates) == 0:
            continue
        overlaps = box_iou(box, np.asarray(candidates))
        best = int(np.argmax(overlaps))
        if overlaps[best] >= iou_threshold and not matched[image][best]:
            matched[image][best] = True
            hits[rank] = 1
    true_positives = np.cumsum(hits)
    recall = np.concatenate([[0.0], true_positives / total, [1.0]])
    precision = np.concatenate([[0.0], true_positives / np.arange(1, len(ordered) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def mean_average_precision(predicted: Sequence[Sequence[tuple[int, float, Sequence[float]]]],
                           truth: Sequence[Sequence[tuple[int, Sequence[float]]]],
                           labels: Sequence[str], iou_threshold: float = IOU_THRESHOLD) -> dict[str, Any]:
    """mAP over the classes that have a true box: ``predicted[i]`` lists image i's
    detections (class index, score, box), ``truth[i]`` its true boxes (class index, box).
    Returns ``{"mAP": float | None, "per_class": {label: AP | None}}``."""
    per_class: dict[str, float | None] = {}
    for index, label in enumerate(labels):
        detections = [(image, score, box) for image, items in enumerate(predicted)
                      for cls, score, box in items if cls == index]
        truths = {image: [box for cls, box in items if cls == index] for image, items in enumerate(truth)}
        per_class[label] = average_precision(detections, truths, iou_threshold)
    values = [value for value in per_class.values() if value is not None]
    return {
        "mAP": round(float(np.mean(values)), 4) if values else None,
        "per_class": {label: None if value is None else round(value, 4) for label, value in per_class.items()},
    }
