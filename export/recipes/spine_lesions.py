"""``spine-lesions``: abnormal / normal + a 7-class lesion detector on lateral lumbar spines.

After VinDr-SpineXR (Nguyen, Pham et al., MICCAI 2021); the architecture is
``radedge.export.models.spine_lesions``. Trained on ``spine_lesion_radiograph`` phantoms
(half of them normal). Each finding's box is mapped into the model input with the
geometry the preprocess op returned, then assigned by size to one level - stride 4 for a box
whose longer side is under ``SMALL_BOX`` input pixels, stride 8 for the rest - and there
FCOS-style to the cells near its centre (centre sampling; a box smaller than a cell still
gets its nearest cell). Figures: AUROC of the classifier, mAP@0.5 of the detector (per-class average
precision, all-point interpolation as in PASCAL VOC 2010+).
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from radedge.heads import softmax
from radedge.ops.detection import decode_dense
from radedge.pipeline import load_model
from radedge.spec import DenseLevel, DetectionDecode, FlagRule, HeadSpec, Manifest, PreprocessSpec, Scope

from .. import phantoms
from ..metrics import auroc, mean_average_precision
from ..models.spine_lesions import CLASSES, INPUT_SIZE, STRIDES
from ..phantoms.spine_lesions import FINDINGS, spine_lesion_radiograph
from .base import Recipe, TrainingPlan, choose_threshold, dicom_bytes, model_input
from .codes import head_codes

MEAN, STD = 0.5, 0.25
FLAG_CODE = "SPINE_RADIOGRAPH_ABNORMAL"
FLAG_TITLE = "Spine radiograph: abnormal"
TARGET_SENSITIVITY = 0.9
SPINE_SCOPE = Scope(modalities=("DX", "CR"), presentation_intents=("FOR PRESENTATION",), body_parts=("LSPINE",))
MAX_FINDINGS = 3
# Boxes the console draws: below this score a box is left off the overlay. On the validation
# phantoms a normal spine carries 2.5 boxes at 0.1, 0.26 at 0.2 and 0.03 at 0.3, for an mAP
# of 0.820, 0.802 and 0.771. mAP is measured on what the console reports: these boxes only.
BOX_SCORE_THRESHOLD = 0.3
# Cells within this many strides of a box centre (and inside the box) learn the box.
CENTRE_RADIUS = 1.5
# A box whose longer side is under this many input pixels (osteophytes, other lesions: 5-15)
# is learnt at stride 4, the rest at stride 8.
SMALL_BOX = 16.0


# -- targets -----------------------------------------------------------------------------


def dense_targets(boxes: np.ndarray, classes: np.ndarray, stride: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """FCOS targets on the grid of ``stride`` for boxes float32[M, 4] (model-input pixels) of
    ``classes`` int[M]: (class map float32[K, h, w] of 0/1, distances float32[4, h, w] in
    strides; zero where no box is assigned). A cell inside several boxes learns the smallest."""
    grid = INPUT_SIZE // stride
    centres = (np.arange(grid, dtype=np.float32) + 0.5) * stride
    cx, cy = centres[None, :], centres[:, None]
    labels = np.zeros((len(FINDINGS), grid, grid), dtype=np.float32)
    distances = np.zeros((4, grid, grid), dtype=np.float32)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for index in np.argsort(-areas, kind="stable"):
        x1, y1, x2, y2 = boxes[index]
        bx, by = 0.5 * (x1 + x2), 0.5 * (y1 + y2)
        inside = (cx > x1) & (cx < x2) & (cy > y1) & (cy < y2)
        near = (np.abs(cx - bx) < CENTRE_RADIUS * stride) & (np.abs(cy - by) < CENTRE_RADIUS * stride)
        assigned = inside & near
        nearest = (min(int(by // stride), grid - 1), min(int(bx // stride), grid - 1))
        assigned[max(nearest[0], 0), max(nearest[1], 0)] = True
        labels[:, assigned] = 0.0
        labels[classes[index], assigned] = 1.0
        for channel, value in enumerate((cx - x1, cy - y1, x2 - cx, y2 - cy)):
            distances[channel][assigned] = np.maximum(np.broadcast_to(value, (grid, grid))[assigned], 0.1) / stride
    return labels, distances


def level_targets(boxes: np.ndarray, classes: np.ndarray) -> dict[str, np.ndarray]:
    """``dense_targets`` of every level, each box on the level its size picks (``SMALL_BOX``):
    ``box_labels_S`` and ``box_distance_targets_S`` for each stride S of ``STRIDES``."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    classes = np.asarray(classes)
    small = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) < SMALL_BOX
    targets = {}
    for stride, mine in zip(STRIDES, (small, ~small)):
        labels, distances = dense_targets(boxes[mine], classes[mine], stride)
        targets[f"box_labels_{stride}"], targets[f"box_distance_targets_{stride}"] = labels, distances
    return targets


def _softmax_abnormal(logits: np.ndarray) -> np.ndarray:
    return softmax(logits)[:, CLASSES.index("abnormal")]


def _truth_in_input(data: dict[str, np.ndarray]) -> list[list[tuple[int, np.ndarray]]]:
    return [[(int(cls), box) for cls, box in zip(classes, boxes) if cls >= 0]
            for classes, boxes in zip(data["box_classes"], data["boxes"])]


class SpineLesionsRecipe(Recipe):
    model_id = "spine-lesions"
    description = (
        "Abnormal / normal classifier and 7-class anchor-free lesion detector on lateral lumbar spine "
        "radiographs, after VinDr-SpineXR. Trained on synthetic phantoms only - a demonstration of the SDK, "
        "not a clinical model."
    )
    data = f"synthetic lumbar spine lesion phantoms, radedge.export.phantoms {phantoms.GENERATOR_VERSION}"
    output_names = ("abnormal_logits",
                    *(f"box_{kind}_{stride}" for stride in STRIDES for kind in ("logits", "distances")))
    spec = PreprocessSpec(INPUT_SIZE, INPUT_SIZE, resize="letterbox", pad_value=0.0, mean=(MEAN,), std=(STD,))
    version = "0.2.0"
    plan = TrainingPlan(train=800, val=150, epochs=35, batch=16, lr=3e-3)

    def build_model(self):
        from ..models.spine_lesions import SpineLesionNet

        return SpineLesionNet()

    def sample(self, seed: int) -> dict[str, np.ndarray]:
        phantom = spine_lesion_radiograph(seed)
        image, geometry = model_input(phantoms.to_dataset(phantom), self.spec)
        boxes = np.zeros((MAX_FINDINGS, 4), dtype=np.float32)
        classes = np.full(MAX_FINDINGS, -1, dtype=np.int64)
        for slot, finding in enumerate(phantom.findings):
            x1, y1, x2, y2 = finding["box_xyxy_px"]
            (left, right), (top, bottom) = geometry.to_output(np.array([x1, x2]), np.array([y1, y2]))
            boxes[slot] = (left, top, right, bottom)
            classes[slot] = FINDINGS.index(finding["label"])
        return {
            "image": image,
            "label": np.int64(bool(phantom.findings)),
            "boxes": boxes,
            "box_classes": classes,
            **level_targets(boxes[classes >= 0], classes[classes >= 0]),
        }

    def augment(self, torch, batch, generator):
        """Left-right flips (patients face either way; the distances swap left and right) and
        a random gamma on display intensities."""
        images = batch["image"]
        changed = {}
        flip = torch.rand(images.shape[0], generator=generator) < 0.5
        if flip.any():
            images = images.clone()
            images[flip] = images[flip].flip(-1)
            for stride in STRIDES:
                labels = batch[f"box_labels_{stride}"].clone()
                distances = batch[f"box_distance_targets_{stride}"].clone()
                labels[flip] = labels[flip].flip(-1)
                distances[flip] = distances[flip].flip(-1)[:, [2, 1, 0, 3]]
                changed[f"box_labels_{stride}"], changed[f"box_distance_targets_{stride}"] = labels, distances
        gamma = torch.exp(torch.empty(images.shape[0], 1, 1, 1).uniform_(-0.3, 0.3, generator=generator))
        display = (images * STD + MEAN).clamp(0, 1) ** gamma
        return {**batch, **changed, "image": (display - MEAN) / STD}

    def loss(self, torch, outputs, batch, progress):
        """Focal loss on the class maps and generalised IoU on the assigned cells' distances,
        both over the cells of every level, normalised by the positive cells of all levels."""
        functional = torch.nn.functional
        focal_sum, count, predicted, wanted = 0.0, 0, [], []
        for stride in STRIDES:
            logits, targets = outputs[f"box_logits_{stride}"], batch[f"box_labels_{stride}"]
            positive = targets.amax(1) > 0  # [N, h, w]
            count = count + positive.sum()
            probabilities = torch.sigmoid(logits)
            cross_entropy = functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
            p_t = probabilities * targets + (1 - probabilities) * (1 - targets)
            alpha = 0.25 * targets + 0.75 * (1 - targets)
            focal_sum = focal_sum + (alpha * (1 - p_t) ** 2 * cross_entropy).sum()
            predicted.append(outputs[f"box_distances_{stride}"].permute(0, 2, 3, 1)[positive])
            wanted.append(batch[f"box_distance_targets_{stride}"].permute(0, 2, 3, 1)[positive])
        focal = focal_sum / count.clamp(min=1).float()
        predicted, wanted = torch.cat(predicted), torch.cat(wanted)
        if len(wanted):
            box_loss = (1 - _giou(torch, predicted, wanted)).mean()
        else:
            box_loss = predicted.sum() * 0.0
        classification = functional.cross_entropy(outputs["abnormal_logits"], batch["label"])
        return focal + 2.0 * box_loss + 0.5 * classification

    def detections_in_input(self, outputs: dict[str, np.ndarray], score_threshold: float) -> list[list]:
        """The raw outputs decoded by radedge's own op, no geometry: per image, (class, score,
        box in model-input pixels)."""
        found = decode_dense(
            [(outputs[f"box_logits_{stride}"], outputs[f"box_distances_{stride}"]) for stride in STRIDES],
            list(STRIDES), None, score_threshold=score_threshold,
            iou_threshold=0.5, pre_nms_top_k=1000, max_detections=100, scores_are="logits",
        ).per_image()
        return [[(int(c), float(s), b) for b, s, c in zip(image.boxes, image.scores, image.classes)] for image in found]

    def validation_metrics(self, outputs, data):
        abnormal = _softmax_abnormal(outputs["abnormal_logits"])
        truth = _truth_in_input(data)
        shipped = mean_average_precision(self.detections_in_input(outputs, BOX_SCORE_THRESHOLD), truth, FINDINGS)
        return {
            "auroc": round(float(auroc(abnormal, data["label"] == 1)), 4),
            "accuracy_at_0.5": round(float(((abnormal >= 0.5) == (data["label"] == 1)).mean()), 4),
            "mAP50": shipped["mAP"],
            "mAP50_all_scores": mean_average_precision(self.detections_in_input(outputs, 0.01), truth, FINDINGS)["mAP"],
            "ap50_per_class": shipped["per_class"],
        }

    def class_labels(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"abnormal": np.eye(len(CLASSES), dtype=bool)[data["label"]]}

    def operating_points(self, outputs, data):
        abnormal = _softmax_abnormal(outputs["abnormal_logits"])
        return {FLAG_CODE: choose_threshold(abnormal, data["label"] == 1, TARGET_SENSITIVITY)}

    def manifest(self, operating_points, provenance) -> Manifest:
        point = operating_points[FLAG_CODE]
        return Manifest.create(
            model_id=self.model_id,
            model_version=self.version,
            description=self.description,
            preprocess=self.spec,
            heads=(
                HeadSpec(
                    "abnormal", "classification", CLASSES, "softmax",
                    flags=(FlagRule(FLAG_CODE, FLAG_TITLE, "abnormal", "abnormal", point["threshold"],
                                    operating_point=point),),
                    tensor="abnormal_logits", codes=head_codes(self.model_id, "abnormal"),
                ),
                HeadSpec(
                    "lesions", "detection", FINDINGS, "sigmoid",
                    DetectionDecode(
                        levels=tuple(DenseLevel(f"box_logits_{stride}", f"box_distances_{stride}", stride)
                                     for stride in STRIDES),
                        score_threshold=BOX_SCORE_THRESHOLD, iou_threshold=0.5, pre_nms_top_k=1000,
                        max_detections=20,
                    ),
                    codes=head_codes(self.model_id, "lesions"),
                ),
            ),
            scope=SPINE_SCOPE,
            display_head="abnormal",
            license=self.license,
            provenance=provenance,
        )

    def evaluate(self, bundle, count, seed, threads=0) -> dict[str, Any]:
        model = load_model(bundle if bundle is not None else self.bundle_path, threads=threads)
        scores, positive, flagged, latencies, predicted, truth = [], [], [], [], [], []
        for offset in range(count):
            phantom = spine_lesion_radiograph(seed + offset)
            prediction = model.predict(dicom_bytes(phantom), label=f"phantom {seed + offset}")
            latencies.append(prediction.timings_ms["total"])
            scores.append(prediction.classifications["abnormal"].probability("abnormal"))
            positive.append(bool(phantom.findings))
            flagged.append(any(flag.code == FLAG_CODE for flag in prediction.flags))
            predicted.append([(box.class_index, box.score, box.xyxy) for box in prediction.detections["lesions"].boxes])
            truth.append([(FINDINGS.index(f["label"]), f["box_xyxy_px"]) for f in phantom.findings])
        positive_array, flagged_array = np.array(positive), np.array(flagged)
        detection = mean_average_precision(predicted, truth, FINDINGS)
        return {
            "bundle_sha256": model.bundle.digest,
            "model": f"{model.manifest.model_id} {model.manifest.model_version}",
            "phantoms": count,
            "seeds": [seed, seed + count],
            "abnormal": int(positive_array.sum()),
            "findings": {label: sum(1 for items in truth for cls, _ in items if cls == index)
                         for index, label in enumerate(FINDINGS)},
            "auroc": round(float(auroc(np.array(scores), positive_array)), 4),
            "flag": {
                "code": FLAG_CODE,
                "sensitivity": round(float(flagged_array[positive_array].mean()), 4) if positive_array.any() else None,
                "specificity": round(float((~flagged_array[~positive_array]).mean()), 4)
                if (~positive_array).any() else None,
            },
            "mAP50": detection["mAP"],
            "ap50_per_class": detection["per_class"],
            "latency_ms": {
                "median": round(statistics.median(latencies), 1),
                "p95": round(float(np.percentile(latencies, 95)), 1),
            },
        }


def _giou(torch, predicted, wanted):
    """Generalised IoU of boxes given as (left, top, right, bottom) distances from the same point."""
    area_p = (predicted[:, 0] + predicted[:, 2]) * (predicted[:, 1] + predicted[:, 3])
    area_w = (wanted[:, 0] + wanted[:, 2]) * (wanted[:, 1] + wanted[:, 3])
    inner = torch.minimum(predicted, wanted)
    outer = torch.maximum(predicted, wanted)
    intersection = (inner[:, 0] + inner[:, 2]) * (inner[:, 1] + inner[:, 3])
    enclosing = (outer[:, 0] + outer[:, 2]) * (outer[:, 1] + outer[:, 3])
    union = area_p + area_w - intersection
    return intersection / union - (enclosing - union) / enclosing


RECIPE = SpineLesionsRecipe()
