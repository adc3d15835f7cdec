"""``bone-tumor``: lesion mask + no tumour / benign / malignant on long-bone radiographs.

After von Schacky et al. (Radiology 2021); the architecture is ``radedge.export.models.bone_tumor``.
Trained on long-bone phantoms, balanced over the three classes; the lesion mask goes
through the same preprocess op as the image (an identity table over {0, 1}) at the mask
head's half resolution, so image and target are resampled identically.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from radedge.heads import softmax
from radedge.pipeline import load_model
from radedge.spec import FlagRule, HeadSpec, Manifest, PreprocessSpec, Scope, SegmentationDecode

from .. import phantoms
from ..metrics import dice
from ..models.bone_tumor import INPUT_SIZE, LABELS
from .base import Recipe, TrainingPlan, choose_threshold, dicom_bytes, mask_input, model_input
from .codes import head_codes

MEAN, STD = 0.5, 0.25
FLAG_CODE = "SUSPECTED_MALIGNANT_BONE_LESION"
TARGET_SENSITIVITY = 0.95
LONG_BONES = (
    "FEMUR", "TIBIA", "FIBULA", "HUMERUS", "RADIUS", "ULNA", "LEG", "ARM", "KNEE", "HIP",
    "SHOULDER", "ELBOW", "ANKLE", "WRIST", "EXTREMITY", "LOWER LIMB", "UPPER LIMB",
)
LONG_BONE_SCOPE = Scope(modalities=("DX", "CR"), presentation_intents=("FOR PRESENTATION",), body_parts=LONG_BONES)
_MASK_SPEC = PreprocessSpec(INPUT_SIZE // 2, INPUT_SIZE // 2, resize="letterbox")


def label_for(seed: int) -> str:
    """Balanced classes: seed i has label i mod 3."""
    return LABELS[seed % len(LABELS)]


def _soft_dice(torch, probabilities, targets, eps=1.0):
    intersection = (probabilities * targets).sum(dim=(1, 2, 3))
    return (2 * intersection + eps) / (probabilities.sum(dim=(1, 2, 3)) + targets.sum(dim=(1, 2, 3)) + eps)


class BoneTumorRecipe(Recipe):
    model_id = "bone-tumor"
    description = (
        "Multitask U-Net: bone lesion mask + no tumour / benign / malignant on long-bone radiographs. "
        "Trained on synthetic phantoms only - a demonstration of the SDK, not a clinical model."
    )
    data = f"synthetic long-bone phantoms, radedge.export.phantoms {phantoms.GENERATOR_VERSION}"
    output_names = ("lesion_logits", "tumor_logits")
    spec = PreprocessSpec(INPUT_SIZE, INPUT_SIZE, resize="letterbox", pad_value=0.0, mean=(MEAN,), std=(STD,))
    plan = TrainingPlan(train=900, val=150, epochs=24, batch=16, lr=3e-3)

    def build_model(self):
        from ..models.bone_tumor import BoneTumorNet

        return BoneTumorNet()

    def sample(self, seed: int) -> dict[str, np.ndarray]:
        label = label_for(seed)
        phantom = phantoms.long_bone_radiograph(seed, label=label)
        image, _ = model_input(phantoms.to_dataset(phantom), self.spec)
        # Letterboxing to half size gives the same geometry as the mask head's output grid.
        mask = mask_input(phantom.lesion_mask, _MASK_SPEC)
        return {"image": image, "mask": mask[None], "label": np.int64(LABELS.index(label))}

    def augment(self, torch, batch, generator):
        """Flips and a random gamma on display intensities: the model must not depend on
        laterality, orientation or the exact window a modality chose."""
        images, masks = batch["image"], batch["mask"]
        if torch.rand((), generator=generator) < 0.5:
            images, masks = images.flip(-1), masks.flip(-1)
        if torch.rand((), generator=generator) < 0.5:
            images, masks = images.flip(-2), masks.flip(-2)
        gamma = torch.exp(torch.empty(images.shape[0], 1, 1, 1).uniform_(-0.35, 0.35, generator=generator))
        display = (images * STD + MEAN).clamp(0, 1) ** gamma
        return {**batch, "image": (display - MEAN) / STD, "mask": masks}

    def loss(self, torch, outputs, batch, progress):
        lesion, tumor = outputs["lesion_logits"], outputs["tumor_logits"]
        target = (batch["mask"] >= 0.5).float()
        loss_mask = torch.nn.functional.binary_cross_entropy_with_logits(lesion, target) + (
            1 - _soft_dice(torch, torch.sigmoid(lesion), target)
        ).mean()
        return loss_mask + torch.nn.functional.cross_entropy(tumor, batch["label"])

    def validation_metrics(self, outputs, data):
        predicted = outputs["tumor_logits"].argmax(1)
        lesion_cases = data["label"] > 0
        masks = outputs["lesion_logits"] >= 0.0
        dices = [dice(masks[i], data["mask"][i] >= 0.5) for i in np.flatnonzero(lesion_cases)]
        return {
            "accuracy": round(float((predicted == data["label"]).mean()), 4),
            "dice_at_mask_grid": round(float(np.mean(dices)), 4) if dices else None,
        }

    def class_labels(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"tumor": np.eye(len(LABELS), dtype=bool)[data["label"]]}

    def operating_points(self, outputs, data):
        probabilities = softmax(outputs["tumor_logits"])
        malignant = LABELS.index("malignant")
        return {FLAG_CODE: choose_threshold(probabilities[:, malignant], data["label"] == malignant, TARGET_SENSITIVITY)}

    def manifest(self, operating_points, provenance) -> Manifest:
        point = operating_points[FLAG_CODE]
        return Manifest.create(
            model_id=self.model_id,
            model_version=self.version,
            description=self.description,
            preprocess=self.spec,
            heads=(
                HeadSpec("lesion", "segmentation", ("lesion",), "sigmoid", SegmentationDecode(threshold=0.5),
                         tensor="lesion_logits", codes=head_codes(self.model_id, "lesion")),
                HeadSpec(
                    "tumor", "classification", LABELS, "softmax",
                    flags=(FlagRule(FLAG_CODE, "Suspected malignant bone lesion", "tumor", "malignant",
                                    point["threshold"], operating_point=point),),
                    tensor="tumor_logits", codes=head_codes(self.model_id, "tumor"),
                ),
            ),
            scope=LONG_BONE_SCOPE,
            display_head="tumor",
            provenance=provenance,
            license=self.license,
        )

    def evaluate(self, bundle, count, seed, threads=0) -> dict[str, Any]:
        model = load_model(bundle if bundle is not None else self.bundle_path, threads=threads)
        confusion = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
        dices, latencies = [], []
        flagged = {True: 0, False: 0}
        cases = {True: 0, False: 0}
        for offset in range(count):
            phantom = phantoms.long_bone_radiograph(seed + offset, label=label_for(seed + offset))
            prediction = model.predict(dicom_bytes(phantom), label=f"phantom {seed + offset}")
            latencies.append(prediction.timings_ms["total"])
            predicted = prediction.classifications["tumor"].top_label
            confusion[LABELS.index(phantom.label), LABELS.index(predicted)] += 1
            if phantom.label != "no_tumour":
                dices.append(dice(prediction.segmentations["lesion"].mask == 1, phantom.lesion_mask))
            is_malignant = phantom.label == "malignant"
            cases[is_malignant] += 1
            flagged[is_malignant] += any(flag.code == FLAG_CODE for flag in prediction.flags)
        return {
            "bundle_sha256": model.bundle.digest,
            "model": f"{model.manifest.model_id} {model.manifest.model_version}",
            "phantoms": count,
            "seeds": [seed, seed + count],
            "accuracy": round(float(np.trace(confusion) / confusion.sum()), 4),
            "confusion": {"rows_truth_cols_predicted": list(LABELS), "counts": confusion.tolist()},
            "dice_mean": round(float(np.mean(dices)), 4) if dices else None,
            "dice_median": round(float(np.median(dices)), 4) if dices else None,
            "flag": {
                "code": FLAG_CODE,
                "sensitivity": round(flagged[True] / cases[True], 4) if cases[True] else None,
                "specificity": round(1 - flagged[False] / cases[False], 4) if cases[False] else None,
            },
            "latency_ms": {
                "median": round(statistics.median(latencies), 1),
                "p95": round(float(np.percentile(latencies, 95)), 1),
            },
        }


RECIPE = BoneTumorRecipe()
