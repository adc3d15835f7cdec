"""``tumor-cls``: benign / malignant classification of the region around a bone lesion, with a CAM.

After the multi-centre bone tumour study (2026): ResNet50 fine-tuned on the tumour's
bounding box from pretrained weights, robustness tested by perturbing the box, Grad-CAM for
display. The architecture is ``radedge.export.models.tumor_cls``.

At the console it is a second-stage model: it reads the bounding box of the lesion that
``bone-tumor``'s ``lesion`` segment, grown by ``MARGIN`` of its size on every side
(manifest ``input_region``). Training reads the phantom's exact lesion box, jittered in
position and size, grown by the same margin with the SDK's own rule (``region``) and read
through the same preprocess crop (``model_input``), so a box the console finds and a
training box of the same rectangle give the network the same tensor.

Transfer learning: ``--set backbone_weights=PATH`` loads a vendor's torchvision-style
ResNet50 state_dict (RadImageNet, ImageNet; needs ``--set width=1``); otherwise the backbone
is first trained on a broader phantom task - no tumour / benign / malignant on random
regions of the same radiographs, with wider context and regions away from the lesion - and
then fine-tuned (``--set pretrain=0`` skips it, for the ablation).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from radedge.heads import softmax
from radedge.io import read_image
from radedge.pipeline import load_models
from radedge.spec import CamDecode, FlagRule, HeadSpec, InputRegion, Manifest, PreprocessSpec, grow_box
from radedge.spec.geometry import Crop

from .. import phantoms
from ..models.tumor_cls import LABELS
from ..metrics import auroc
from .base import (
    Recipe,
    TrainingPlan,
    choose_threshold,
    dicom_bytes,
    fit_loop,
    model_input,
    run_model,
)
from .bone_tumor import LONG_BONE_SCOPE
from .codes import head_codes

INPUT_SIZE = 160
WIDTH = 0.125  # of ResNet50's channels in the committed bundle; 1.0 is ResNet50 itself
MARGIN = 0.25  # context around the lesion box: zone of transition, periosteal reaction, soft tissue
MEAN, STD = 0.5, 0.25
FLAG_CODE = "MALIGNANT_REGION"
TARGET_SENSITIVITY = 0.95
FIRST_STAGE = InputRegion(model="bone-tumor", head="lesion", label="lesion", margin=MARGIN)
# Training views per phantom: jittered lesion boxes (fine-tuning) and random regions for the
# pre-training task, half around the lesion with wider context, half away from it.
JITTERED_VIEWS = 2
PRETRAIN_VIEWS = 4
JITTER_SHIFT = 0.3  # of the box's size, at most, each axis
JITTER_SCALE = 1.4  # size multiplied by 1/1.4 .. 1.4 (log-uniform)
PRETRAIN_LABELS = ("no_tumour", "benign", "malignant")
# The robustness table (as the study's): the box shifted by 10 / 25 % of its size in each of
# four directions, or scaled about its centre.
PERTURBATIONS: tuple[tuple[str, float, float], ...] = (
    ("exact box", 0.0, 1.0),
    ("shift 10 %", 0.10, 1.0),
    ("shift 25 %", 0.25, 1.0),
    ("scale 0.8", 0.0, 0.8),
    ("scale 1.25", 0.0, 1.25),
)
_DIRECTIONS = ((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0))


def label_for(seed: int) -> str:
    """Balanced classes: even seeds benign, odd seeds malignant (no_tumour has no region)."""
    return LABELS[seed % len(LABELS)]


def lesion_box(phantom: phantoms.Phantom) -> tuple[float, float, float, float]:
    """The lesion's exact bounding box (x1, y1, x2, y2), source pixels, x2 / y2 exclusive: the
    convention of a segmentation head's region (``RegionStats.bbox``)."""
    x, y, width, height = phantom.lesion["bbox_xywh_px"]
    return (float(x), float(y), float(x + width), float(y + height))


def region(box: tuple[float, ...], rows: int, columns: int) -> Crop:
    """The source rectangle analysed for ``box``: the SDK's own rule for an ``input_region``
    (grown by ``MARGIN``, clipped, whole pixels)."""
    return grow_box(box, MARGIN, rows, columns)


def perturb(box: tuple[float, ...], shift: tuple[float, float] = (0.0, 0.0), scale: float = 1.0) -> tuple[float, ...]:
    """``box`` (x1, y1, x2, y2) moved by ``shift`` (fractions of its width, height) and scaled
    about its centre by ``scale``."""
    x1, y1, x2, y2 = box
    width, height = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2 + shift[0] * width, (y1 + y2) / 2 + shift[1] * height
    half_w, half_h = scale * width / 2, scale * height / 2
    return (cx - half_w, cy - half_h, cx + half_w, cy + half_h)


def _clip(box: tuple[float, ...], rows: int, columns: int) -> tuple[float, ...]:
    """A box kept inside the image with at least one pixel: a perturbed box may leave it."""
    x1, y1, x2, y2 = box
    x1, y1 = min(max(x1, 0.0), columns - 1.0), min(max(y1, 0.0), rows - 1.0)
    return (x1, y1, min(max(x2, x1 + 1.0), float(columns)), min(max(y2, y1 + 1.0), float(rows)))


def _pretrain_boxes(box: tuple[float, ...], mask: np.ndarray, rng: np.random.Generator) -> list[tuple[tuple, bool]]:
    """Random regions for pre-training: (box, shows the lesion). Half contain the lesion's
    centre at 1 to 2.5 times its size; half lie elsewhere on the bone's axis (the long bones
    run top to bottom in these views) at 0.6 to 1.5 times its size, at most 40 % of the
    image's side, their region touching none of the lesion."""
    rows, columns = mask.shape
    x1, y1, x2, y2 = box
    width, height = x2 - x1, y2 - y1
    chosen: list[tuple[tuple, bool]] = []
    for index in range(PRETRAIN_VIEWS):
        shows_lesion = index % 2 == 0
        if shows_lesion:
            scale = rng.uniform(1.0, 2.5)
            shift = rng.uniform(-0.5, 0.5, size=2) * (scale - 1.0)
            chosen.append((_clip(perturb(box, (float(shift[0]), float(shift[1])), scale), rows, columns), True))
            continue
        for _ in range(30):
            scale = rng.uniform(0.6, 1.5)
            size_x, size_y = min(width * scale, 0.4 * columns), min(height * scale, 0.4 * rows)
            centre_x = np.clip((x1 + x2) / 2 + rng.uniform(-0.5, 0.5) * size_x, size_x / 2, columns - size_x / 2)
            centre_y = rng.uniform(size_y / 2, rows - size_y / 2)
            candidate = (centre_x - size_x / 2, centre_y - size_y / 2, centre_x + size_x / 2, centre_y + size_y / 2)
            crop = region(candidate, rows, columns)
            if not mask[crop.y : crop.y + crop.height, crop.x : crop.x + crop.width].any():
                chosen.append((candidate, False))
                break
        else:  # no lesion-free region fits: show the lesion instead
            chosen.append((_clip(perturb(box, scale=1.5), rows, columns), True))
    return chosen


def _softmax_malignant(logits: np.ndarray) -> np.ndarray:
    return softmax(logits)[:, LABELS.index("malignant")]


def _flag(name: str, value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"--set {name}= takes 1 or 0; got {value!r}")


def _views(data: dict[str, np.ndarray], images: str, labels: str) -> dict[str, np.ndarray]:
    """Stacked views [N, V, C, H, W] (labels [N] or [N, V]) as one set of N * V examples."""
    stacked = data[images]
    count, views = stacked.shape[:2]
    label = data[labels]
    label = np.repeat(label, views) if label.ndim == 1 else label.reshape(-1)
    return {"image": stacked.reshape(count * views, *stacked.shape[2:]), "label": label.astype(np.int64)}


@dataclasses.dataclass(frozen=True)
class _Options:
    width: float = WIDTH
    pretrain: bool = True
    pretrain_epochs: int | None = None
    backbone_weights: Path | None = None


class TumorClsRecipe(Recipe):
    model_id = "tumor-cls"
    description = (
        "ResNet50 benign / malignant classifier of a bone lesion's region, with a class "
        "activation map; a second stage on the lesion bone-tumor segments. Trained on synthetic phantoms "
        "only - a demonstration of the SDK, not a clinical model."
    )
    data = f"synthetic long-bone phantoms (benign / malignant), radedge.export.phantoms {phantoms.GENERATOR_VERSION}"
    output_names = ("malignancy", "malignancy_cam")
    spec = PreprocessSpec(INPUT_SIZE, INPUT_SIZE, resize="letterbox", pad_value=0.0, mean=(MEAN,), std=(STD,))
    plan = TrainingPlan(train=600, val=150, epochs=12, batch=32, lr=2e-3)
    options = {
        "width": f"channel multiplier of ResNet50 (default {WIDTH}; 1 = ResNet50 itself, needed for backbone_weights)",
        "pretrain": "1 (default): pre-train the backbone on no tumour / benign / malignant regions first; 0: do not",
        "pretrain_epochs": "epochs of that pre-training (default: the fine-tuning epochs)",
        "backbone_weights": "a torchvision-style ResNet50 state_dict file (RadImageNet, ImageNet) to start from "
                            "instead of pre-training",
    }

    def __init__(self, choices: _Options | None = None):
        self.choices = choices or _Options()

    def with_options(self, options):
        choices = _Options(
            width=float(options.get("width", WIDTH)),
            pretrain=_flag("pretrain", options.get("pretrain", "1")),
            pretrain_epochs=int(options["pretrain_epochs"]) if "pretrain_epochs" in options else None,
            backbone_weights=Path(options["backbone_weights"]) if options.get("backbone_weights") else None,
        )
        if not (0.0 < choices.width <= 1.0):
            raise ValueError(f"width must be in (0, 1]; got {choices.width}")
        # Refused before any phantom is made: vendor weights only fit ResNet50 itself.
        if choices.backbone_weights is not None:
            if choices.width != 1.0:
                raise ValueError(f"backbone_weights are a full-width ResNet50's: add --set width=1 (got width "
                                 f"{choices.width:g})")
            if not choices.backbone_weights.is_file():
                raise ValueError(f"backbone_weights: no file at {choices.backbone_weights}")
        return TumorClsRecipe(choices)

    def build_model(self, num_classes: int = len(LABELS)):
        from ..models.tumor_cls import TumorClsNet

        return TumorClsNet(width=self.choices.width, num_classes=num_classes)

    # -- data -------------------------------------------------------------------------
    def sample(self, seed: int) -> dict[str, np.ndarray]:
        """The exact box's region (``image``), ``JITTERED_VIEWS`` jittered boxes' regions
        (``jittered``) and ``PRETRAIN_VIEWS`` random regions with their no tumour / benign /
        malignant labels (``pretrain``, ``pretrain_label``), all float32[.., 1, 160, 160]."""
        label = label_for(seed)
        phantom = phantoms.long_bone_radiograph(seed, label=label)
        dataset = phantoms.to_dataset(phantom)
        rows, columns = phantom.rows, phantom.columns
        box = lesion_box(phantom)
        rng = np.random.default_rng([seed, 0x7C])

        def view(chosen: tuple[float, ...]) -> np.ndarray:
            return model_input(dataset, self.spec, crop=region(chosen, rows, columns))[0]

        jittered = []
        for _ in range(JITTERED_VIEWS):
            shift = rng.uniform(-JITTER_SHIFT, JITTER_SHIFT, size=2)
            scale = math.exp(rng.uniform(-math.log(JITTER_SCALE), math.log(JITTER_SCALE)))
            jittered.append(view(_clip(perturb(box, (float(shift[0]), float(shift[1])), scale), rows, columns)))
        pretrain, pretrain_label = [], []
        for chosen, shows_lesion in _pretrain_boxes(box, phantom.lesion_mask, rng):
            pretrain.append(view(chosen))
            pretrain_label.append(PRETRAIN_LABELS.index(label) if shows_lesion else 0)
        return {
            "image": view(box),
            "label": np.int64(LABELS.index(label)),
            "jittered": np.stack(jittered),
            "pretrain": np.stack(pretrain),
            "pretrain_label": np.array(pretrain_label, dtype=np.int64),
        }

    def augment(self, torch, batch, generator):
        """Flips, quarter turns and a random gamma: a lesion's class does not depend on the
        side, the orientation or the exact window."""
        images = batch["image"]
        if torch.rand((), generator=generator) < 0.5:
            images = images.flip(-1)
        if torch.rand((), generator=generator) < 0.5:
            images = images.flip(-2)
        if torch.rand((), generator=generator) < 0.5:
            images = images.transpose(-1, -2)
        gamma = torch.exp(torch.empty(images.shape[0], 1, 1, 1).uniform_(-0.3, 0.3, generator=generator))
        display = (images * STD + MEAN).clamp(0, 1) ** gamma
        return {**batch, "image": (display - MEAN) / STD}

    def loss(self, torch, outputs, batch, progress):
        return torch.nn.functional.cross_entropy(outputs["malignancy"], batch["label"])

    # -- training ---------------------------------------------------------------------
    def fit(self, torch, model, train, val, settings):
        """Backbone first (vendor weights, or pre-training on the broader phantom task, or
        nothing), then fine-tuning on the exact and jittered lesion boxes."""
        from ..models.tumor_cls import load_backbone

        choices = self.choices
        record: dict[str, Any] = {"width": choices.width, "input_size": INPUT_SIZE, "margin": MARGIN}
        if choices.backbone_weights is not None:
            raw = choices.backbone_weights.read_bytes()
            state = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
            state = state.get("state_dict", state) if isinstance(state, dict) else state
            loaded = load_backbone(model, state)
            print(f"backbone: {len(loaded)} tensors from {choices.backbone_weights}", flush=True)
            record["backbone"] = {"weights_file": choices.backbone_weights.name,
                                  "weights_sha256": hashlib.sha256(raw).hexdigest(), "tensors": len(loaded)}
        elif choices.pretrain:
            epochs = choices.pretrain_epochs or settings.epochs
            pretrained = self.build_model(num_classes=len(PRETRAIN_LABELS))
            pre_train = _views(train, "pretrain", "pretrain_label")
            pre_val = _views(val, "pretrain", "pretrain_label")
            print(f"pre-training: {len(pre_train['image'])} regions, no tumour / benign / malignant", flush=True)
            fit_loop(
                torch, pretrained, pre_train, pre_val, settings, loss=self.loss, augment=self.augment,
                output_names=self.output_names, epochs=epochs,
                report=lambda outputs: {"accuracy": float((outputs["malignancy"].argmax(1) == pre_val["label"]).mean())},
            )
            weights = {key: value for key, value in pretrained.state_dict().items() if not key.startswith("classifier.")}
            model.load_state_dict(weights, strict=False)
            record["backbone"] = {"pretrained_on": "no tumour / benign / malignant random regions of the training "
                                                   "phantoms", "regions": len(pre_train["image"]), "epochs": epochs}
        else:
            record["backbone"] = "random initialisation (no pre-training)"
        fine = {
            "image": np.concatenate([train["image"], _views(train, "jittered", "label")["image"]]),
            "label": np.concatenate([train["label"], np.repeat(train["label"], JITTERED_VIEWS)]).astype(np.int64),
        }
        print(f"fine-tuning: {len(fine['image'])} lesion regions (exact and jittered boxes)", flush=True)
        fit_loop(torch, model, fine, val, settings, loss=self.loss, augment=self.augment,
                 output_names=self.output_names, report=lambda outputs: self.validation_metrics(outputs, val))
        jittered = run_model(torch, model, _views(val, "jittered", "label"), self.output_names)
        record["validation_auc_jittered_boxes"] = auroc(
            _softmax_malignant(jittered["malignancy"]), np.repeat(val["label"], JITTERED_VIEWS) == 1
        )
        return record

    # -- choosing and measuring ---------------------------------------------------------
    def validation_metrics(self, outputs, data):
        scores = _softmax_malignant(outputs["malignancy"])
        malignant = data["label"] == LABELS.index("malignant")
        return {
            "auc": auroc(scores, malignant),
            "accuracy": round(float(((scores >= 0.5) == malignant).mean()), 4),
        }

    def class_labels(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"malignancy": np.eye(len(LABELS), dtype=bool)[data["label"]]}

    def operating_points(self, outputs, data):
        scores = _softmax_malignant(outputs["malignancy"])
        return {FLAG_CODE: choose_threshold(scores, data["label"] == LABELS.index("malignant"), TARGET_SENSITIVITY,
                                            chosen_on="validation phantoms, exact lesion boxes")}

    def manifest(self, operating_points, provenance) -> Manifest:
        point = operating_points[FLAG_CODE]
        return Manifest.create(
            model_id=self.model_id,
            model_version=self.version,
            description=self.description,
            preprocess=self.spec,
            heads=(
                HeadSpec(
                    "malignancy", "classification", LABELS, "softmax",
                    flags=(FlagRule(FLAG_CODE, "Region classified malignant", "malignancy", "malignant",
                                    point["threshold"], operating_point=point),),
                    codes=head_codes(self.model_id, "malignancy"),
                ),
                HeadSpec("malignancy_cam", "cam", LABELS, "none", CamDecode(explains="malignancy"),
                         codes=head_codes(self.model_id, "malignancy_cam")),
            ),
            scope=LONG_BONE_SCOPE,
            display_head="malignancy",
            license=self.license,
            input_region=FIRST_STAGE,
            provenance=provenance,
        )

    def evaluate(self, bundle, count, seed, threads=0) -> dict[str, Any]:
        """Held-out benign / malignant phantoms as DICOM bytes: (1) through bone-tumor then
        this model on the region it segments, as the console runs them; (2) on the exact
        lesion box and on shifted and scaled boxes given as the region."""
        from .bone_tumor import RECIPE as FIRST_STAGE_RECIPE

        models = load_models([FIRST_STAGE_RECIPE.bundle_path, bundle if bundle is not None else self.bundle_path],
                             threads=threads)
        model = models[self.model_id]
        threshold = next(rule.threshold for rule in model.manifest.flag_rules if rule.code == FLAG_CODE)
        truth, chained, chained_flags, ious = [], [], [], []
        latencies, stage_latencies = [], []
        perturbed: dict[str, list[list[float]]] = {name: [] for name, _, _ in PERTURBATIONS}
        for offset in range(count):
            phantom = phantoms.long_bone_radiograph(seed + offset, label=label_for(seed + offset))
            data = dicom_bytes(phantom)
            name = f"phantom {seed + offset}"
            malignant = phantom.label == "malignant"
            truth.append(malignant)
            analysis = models.predict(data, label=name)
            latencies.append(analysis.timings_ms["total"])
            prediction = analysis.predictions.get(self.model_id)
            exact = region(lesion_box(phantom), phantom.rows, phantom.columns)
            if prediction is None:
                chained.append(None)
                chained_flags.append(False)
            else:
                stage_latencies.append(prediction.timings_ms["total"])
                chained.append(prediction.classifications["malignancy"].probability("malignant"))
                chained_flags.append(any(flag.code == FLAG_CODE for flag in prediction.flags))
                ious.append(_iou(prediction.geometry.crop, exact))
            image = read_image(data)
            for label, shift, scale in PERTURBATIONS:
                directions = _DIRECTIONS if shift else ((0.0, 0.0),)
                scores = []
                for dx, dy in directions:
                    box = _clip(perturb(lesion_box(phantom), (dx * shift, dy * shift), scale), phantom.rows, phantom.columns)
                    result = model.predict(image, label=name, region=region(box, phantom.rows, phantom.columns))
                    scores.append(result.classifications["malignancy"].probability("malignant"))
                perturbed[label].append(scores)
        truth_array = np.array(truth)
        analysed = np.array([score is not None for score in chained])
        chained_scores = np.array([score if score is not None else 0.0 for score in chained])
        robustness = {}
        for label, _, _ in PERTURBATIONS:
            scores = np.array(perturbed[label])  # [phantoms, directions]
            flagged = scores >= threshold
            robustness[label] = {
                "auc": _round(auroc(scores.reshape(-1), np.repeat(truth_array, scores.shape[1]))),
                "sensitivity": round(float(flagged[truth_array].mean()), 4),
                "specificity": round(float((~flagged[~truth_array]).mean()), 4),
                "boxes": int(scores.size),
            }
        chained_flags_array = np.array(chained_flags)
        return {
            "bundle_sha256": model.bundle.digest,
            "first_stage_bundle_sha256": models[FIRST_STAGE.model].bundle.digest,
            "model": f"{model.manifest.model_id} {model.manifest.model_version}",
            "phantoms": count,
            "malignant": int(truth_array.sum()),
            "seeds": [seed, seed + count],
            "flag": {"code": FLAG_CODE, "threshold": threshold},
            "second_stage": {
                "analysed": int(analysed.sum()),
                "not_analysed_no_lesion_found": int((~analysed).sum()),
                "auc_on_analysed": _round(auroc(chained_scores[analysed], truth_array[analysed])),
                "sensitivity": round(float(chained_flags_array[truth_array].mean()), 4),
                "specificity": round(float((~chained_flags_array[~truth_array]).mean()), 4),
                "region_iou_with_exact_box_median": round(float(np.median(ious)), 4) if ious else None,
            },
            "given_region": robustness,
            "latency_ms": {
                "bone_tumor_then_tumor_cls_median": round(statistics.median(latencies), 1),
                "bone_tumor_then_tumor_cls_p95": round(float(np.percentile(latencies, 95)), 1),
                "tumor_cls_stage_median": round(statistics.median(stage_latencies), 1) if stage_latencies else None,
                "tumor_cls_stage_p95": round(float(np.percentile(stage_latencies, 95)), 1) if stage_latencies else None,
                "threads": threads,
            },
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _iou(a: Crop, b: Crop) -> float:
    width = max(0, min(a.x + a.width, b.x + b.width) - max(a.x, b.x))
    height = max(0, min(a.y + a.height, b.y + b.height) - max(a.y, b.y))
    inter = width * height
    return inter / (a.width * a.height + b.width * b.height - inter)


RECIPE = TumorClsRecipe()
