"""``bone-quality``: blastic? lytic? -> normal / blastic / lytic / mixed on axial CT slices.

After the learning-based bone quality classification for spinal metastasis (arXiv 2024);
the architecture is ``radedge.export.models.bone_quality``. Trained on CT vertebra
phantoms (``radedge.export.phantoms.ct_vertebra_slice``), balanced over the four classes,
with self-paced learning: each sample's loss is computed on its own, and only the samples
whose loss is under a threshold that grows with training progress count (always at least
the easiest half of a batch); from 60 % of training on every sample counts. The
input goes through the bone window in HU that the manifest names, so every scanner's
file is windowed the same whatever windows it carries. The flags read the combined head,
one per lesion class, each threshold above one half, so a slice raises at most one flag
and it names the class of the verdict.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np

from radedge.pipeline import load_model
from radedge.spec import FlagRule, HeadSpec, IntensitySpec, Manifest, PreprocessSpec, Scope, Window

from .. import phantoms
from ..metrics import auroc
from ..models.bone_quality import INPUT_SIZE, QUALITY_LABELS
from .base import Recipe, TrainingPlan, choose_threshold, dicom_bytes, fit_loop, model_input
from .codes import head_codes

MEAN, STD = 0.3, 0.3
#: The bone window (HU) every input goes through: center 400, width 1800 (-500 to 1300 HU).
BONE_WINDOW = Window(400.0, 1800.0, explanation="BONE")
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
CT_SCOPE = Scope(modalities=("CT",), sop_classes=(CT_IMAGE_STORAGE,))
BLASTIC_FLAG = "SUSPECTED_BLASTIC_BONE_METASTASIS"
LYTIC_FLAG = "SUSPECTED_LYTIC_BONE_METASTASIS"
MIXED_FLAG = "SUSPECTED_MIXED_BONE_METASTASIS"
#: The flags read the combined head: one rule per lesion class on its softmax probability.
LESION_FLAGS = {"blastic": BLASTIC_FLAG, "lytic": LYTIC_FLAG, "mixed": MIXED_FLAG}
LESION_TITLES = {
    "blastic": "Suspected blastic bone metastasis",
    "lytic": "Suspected lytic bone metastasis",
    "mixed": "Suspected mixed (blastic and lytic) bone metastasis",
}
TARGET_SENSITIVITY = 1.0
#: Softmax probabilities sum to 1, so two classes cannot both exceed one half: with every
#: threshold above it, a slice raises at most one flag.
EXCLUSIVE_THRESHOLD = 0.5001
# Self-paced learning: the loss threshold under which a sample counts grows geometrically
# from SPL_START to SPL_END over the first SPL_RAMP of training; afterwards every sample
# counts. At least SPL_MIN_KEPT of each batch (its easiest samples) always counts, so the
# first steps of an untrained network, whose losses all exceed the threshold, still learn.
SPL_START, SPL_END, SPL_RAMP, SPL_MIN_KEPT = 1.0, 4.0, 0.6, 0.5


def label_for(seed: int) -> str:
    """Balanced classes: seed i has label i mod 4."""
    return QUALITY_LABELS[seed % len(QUALITY_LABELS)]


def has_blastic(labels: np.ndarray) -> np.ndarray:
    return np.isin(labels, (QUALITY_LABELS.index("blastic"), QUALITY_LABELS.index("mixed")))


def has_lytic(labels: np.ndarray) -> np.ndarray:
    return np.isin(labels, (QUALITY_LABELS.index("lytic"), QUALITY_LABELS.index("mixed")))


def self_paced_threshold(progress: float) -> float:
    """The per-sample loss under which a sample counts at ``progress`` (0..1); inf once
    every sample counts."""
    if progress >= SPL_RAMP:
        return math.inf
    return SPL_START * (SPL_END / SPL_START) ** (progress / SPL_RAMP)


def self_paced_weights(torch: Any, losses: Any, labels: Any, progress: float) -> Any:
    """0/1 weights (float32[N]) of per-sample ``losses`` (float32[N]) of classes ``labels``
    (int64[N]): 1 where the loss is under the threshold at ``progress`` or among the
    easiest ``SPL_MIN_KEPT`` of its class in the batch. The floor is per class so that the
    easy samples of one class (whatever the untrained network happens to predict) cannot
    crowd out every sample of the others."""
    losses = losses.detach()
    threshold = torch.full_like(losses, min(self_paced_threshold(progress), torch.finfo(losses.dtype).max))
    for label in torch.unique(labels):
        members = labels == label
        kept = max(1, math.ceil(SPL_MIN_KEPT * int(members.sum())))
        floor = torch.kthvalue(losses[members], kept).values
        threshold[members] = torch.clamp(threshold[members], min=floor)
    return (losses <= threshold).to(losses.dtype)


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def per_class_sensitivity(confusion: np.ndarray) -> dict[str, float | None]:
    """Recall of each class from a confusion matrix (rows truth, columns predicted)."""
    totals = confusion.sum(axis=1)
    return {label: round(float(confusion[i, i] / totals[i]), 4) if totals[i] else None
            for i, label in enumerate(QUALITY_LABELS)}


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    confusion = np.zeros((len(QUALITY_LABELS), len(QUALITY_LABELS)), dtype=np.int64)
    np.add.at(confusion, (np.asarray(truth), np.asarray(predicted)), 1)
    return confusion


class BoneQualityRecipe(Recipe):
    model_id = "bone-quality"
    description = (
        "Bone quality of a vertebra on an axial CT slice: blastic and lytic sub-task heads combined by an MLP "
        "into normal / blastic / lytic / mixed. Trained on synthetic phantoms only - a demonstration of the "
        "SDK, not a clinical model."
    )
    data = f"synthetic CT vertebra phantoms, radedge.export.phantoms {phantoms.GENERATOR_VERSION}"
    output_names = ("blastic_logits", "lytic_logits", "quality_logits")
    spec = PreprocessSpec(INPUT_SIZE, INPUT_SIZE, resize="letterbox", pad_value=0.0, mean=(MEAN,), std=(STD,))
    plan = TrainingPlan(train=1600, val=200, epochs=20, batch=32, lr=3e-3)
    options = {"self_paced": "1 (default): self-paced sample weighting; 0: every sample counts from the start"}

    def build_model(self):
        from ..models.bone_quality import BoneQualityNet

        return BoneQualityNet()

    def sample(self, seed: int) -> dict[str, np.ndarray]:
        label = label_for(seed)
        ct_slice = phantoms.ct_vertebra_slice(seed, label=label)
        image, _ = model_input(phantoms.to_dataset(ct_slice), self.spec, voi=BONE_WINDOW)
        return {"image": image, "label": np.int64(QUALITY_LABELS.index(label))}

    def augment(self, torch, batch, generator):
        """Left-right flips (the spine is symmetric, the aorta is not where the lesion is)
        and small shifts of display intensity (scanner calibration drifts by a few HU)."""
        images = batch["image"]
        if torch.rand((), generator=generator) < 0.5:
            images = images.flip(-1)
        shift = torch.empty(images.shape[0], 1, 1, 1).uniform_(-0.02, 0.02, generator=generator) / STD
        return {**batch, "image": images + shift}

    def per_sample_loss(self, torch, outputs, batch):
        """float32[N]: binary cross-entropy of both sub-tasks plus the 4-class cross-entropy."""
        functional = torch.nn.functional
        labels = batch["label"]
        blastic = ((labels == 1) | (labels == 3)).float()
        lytic = ((labels == 2) | (labels == 3)).float()
        return (
            functional.binary_cross_entropy_with_logits(outputs["blastic_logits"][:, 0], blastic, reduction="none")
            + functional.binary_cross_entropy_with_logits(outputs["lytic_logits"][:, 0], lytic, reduction="none")
            + functional.cross_entropy(outputs["quality_logits"], labels, reduction="none")
        )

    def loss(self, torch, outputs, batch, progress):
        losses = self.per_sample_loss(torch, outputs, batch)
        weights = self_paced_weights(torch, losses, batch["label"], progress)
        return (weights * losses).sum() / weights.sum()

    def fit(self, torch, model, train, val, settings):
        self_paced = settings.options.get("self_paced", "1") != "0"
        loss = self.loss if self_paced else (
            lambda torch, outputs, batch, progress: self.per_sample_loss(torch, outputs, batch).mean())
        fit_loop(torch, model, train, val, settings, loss=loss, augment=self.augment,
                 report=lambda outputs: self.validation_metrics(outputs, val), output_names=self.output_names)
        if not self_paced:
            return {"self_paced": None}
        return {"self_paced": {"threshold_start": SPL_START, "threshold_end": SPL_END,
                               "all_samples_from_progress": SPL_RAMP, "min_fraction_kept_per_class": SPL_MIN_KEPT}}

    def validation_metrics(self, outputs, data):
        labels = data["label"]
        confusion = confusion_matrix(labels, outputs["quality_logits"].argmax(1))
        sensitivity = per_class_sensitivity(confusion)
        return {
            "accuracy": round(float(np.trace(confusion) / confusion.sum()), 4),
            **{f"sensitivity_{label}": value for label, value in sensitivity.items()},
            "blastic_auroc": auroc(outputs["blastic_logits"][:, 0], has_blastic(labels)),
            "lytic_auroc": auroc(outputs["lytic_logits"][:, 0], has_lytic(labels)),
            "confusion": {"rows_truth_cols_predicted": list(QUALITY_LABELS), "counts": confusion.tolist()},
        }

    def class_labels(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        labels = data["label"]
        return {"blastic": has_blastic(labels)[:, None], "lytic": has_lytic(labels)[:, None],
                "quality": np.eye(len(QUALITY_LABELS), dtype=bool)[labels]}

    def operating_points(self, outputs, data):
        """One operating point per lesion class, on the combined head's softmax probability
        of that class: the highest threshold that flags ``TARGET_SENSITIVITY`` of the
        validation slices of the class, raised to ``EXCLUSIVE_THRESHOLD`` if lower, so that
        at most one flag can hold on a slice."""
        labels = data["label"]
        probabilities = _softmax(outputs["quality_logits"])
        points = {}
        for label, code in LESION_FLAGS.items():
            index = QUALITY_LABELS.index(label)
            scores, positive = probabilities[:, index], labels == index
            point = choose_threshold(scores, positive, TARGET_SENSITIVITY)
            if point["threshold"] < EXCLUSIVE_THRESHOLD:
                flagged = scores >= EXCLUSIVE_THRESHOLD
                point.update(
                    threshold=EXCLUSIVE_THRESHOLD,
                    raised_from=point["threshold"],
                    sensitivity=round(float(flagged[positive].mean()), 4),
                    specificity=round(float((~flagged[~positive]).mean()), 4),
                )
            points[code] = point
        return points

    def manifest(self, operating_points, provenance) -> Manifest:
        flags = tuple(
            FlagRule(code, LESION_TITLES[label], "quality", label, operating_points[code]["threshold"],
                     operating_point=operating_points[code])
            for label, code in LESION_FLAGS.items()
        )
        return Manifest.create(
            model_id=self.model_id,
            model_version=self.version,
            description=self.description,
            preprocess=self.spec,
            intensity=IntensitySpec(window=BONE_WINDOW),
            heads=(
                HeadSpec("blastic", "classification", ("blastic",), "sigmoid", tensor="blastic_logits",
                         codes=head_codes(self.model_id, "blastic")),
                HeadSpec("lytic", "classification", ("lytic",), "sigmoid", tensor="lytic_logits",
                         codes=head_codes(self.model_id, "lytic")),
                HeadSpec("quality", "classification", QUALITY_LABELS, "softmax", flags=flags, tensor="quality_logits",
                         codes=head_codes(self.model_id, "quality")),
            ),
            scope=CT_SCOPE,
            display_head="quality",
            license=self.license,
            provenance=provenance,
        )

    def evaluate(self, bundle, count, seed, threads=0) -> dict[str, Any]:
        model = load_model(bundle if bundle is not None else self.bundle_path, threads=threads)
        truth, predicted, latencies = [], [], []
        blastic_scores, lytic_scores = [], []
        raised: dict[str, list[bool]] = {BLASTIC_FLAG: [], LYTIC_FLAG: [], MIXED_FLAG: []}
        for offset in range(count):
            ct_slice = phantoms.ct_vertebra_slice(seed + offset, label=label_for(seed + offset))
            prediction = model.predict(dicom_bytes(ct_slice), label=f"phantom {seed + offset}")
            latencies.append(prediction.timings_ms["total"])
            truth.append(QUALITY_LABELS.index(ct_slice.label))
            predicted.append(QUALITY_LABELS.index(prediction.classifications["quality"].top_label))
            blastic_scores.append(prediction.classifications["blastic"].probability("blastic"))
            lytic_scores.append(prediction.classifications["lytic"].probability("lytic"))
            codes = {flag.code for flag in prediction.flags}
            for code, values in raised.items():
                values.append(code in codes)
        truth_array = np.array(truth)
        confusion = confusion_matrix(truth_array, np.array(predicted))
        positives = {code: truth_array == QUALITY_LABELS.index(label) for label, code in LESION_FLAGS.items()}
        flags_per_slice = np.sum([raised[code] for code in raised], axis=0)

        def flag_figures(code: str) -> dict[str, Any]:
            flagged, positive = np.array(raised[code]), positives[code]
            return {
                "sensitivity": round(float(flagged[positive].mean()), 4) if positive.any() else None,
                "specificity": round(float((~flagged[~positive]).mean()), 4) if (~positive).any() else None,
                "positives": int(positive.sum()),
                "negatives": int((~positive).sum()),
            }

        return {
            "bundle_sha256": model.bundle.digest,
            "model": f"{model.manifest.model_id} {model.manifest.model_version}",
            "phantoms": count,
            "seeds": [seed, seed + count],
            "accuracy": round(float(np.trace(confusion) / confusion.sum()), 4),
            "sensitivity_per_class": per_class_sensitivity(confusion),
            "confusion": {"rows_truth_cols_predicted": list(QUALITY_LABELS), "counts": confusion.tolist()},
            "blastic_auroc": auroc(np.array(blastic_scores), has_blastic(truth_array)),
            "lytic_auroc": auroc(np.array(lytic_scores), has_lytic(truth_array)),
            "flags": {code: flag_figures(code) for code in raised},
            "slices_with_several_flags": int((flags_per_slice > 1).sum()),
            "lesion_slices_without_a_flag": int(((flags_per_slice == 0) & (truth_array != 0)).sum()),
            "latency_ms": {
                "median": round(statistics.median(latencies), 1),
                "p95": round(float(np.percentile(latencies, 95)), 1),
            },
        }


RECIPE = BoneQualityRecipe()
