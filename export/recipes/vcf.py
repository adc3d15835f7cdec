"""``vcf``: vertebral compression fractures and their level on lateral lumbar radiographs.

After the multitask U-Net of the seed paper (shared encoder, a fracture decoder and a
vertebral-level decoder); the architecture is ``radedge.export.models.vcf``. Trained on
lumbar spine phantoms (``radedge.export.phantoms.lumbar_spine_radiograph``), whose L1-L5
bodies carry Genant-graded wedge fractures.

Targets, all on the heads' 64 x 64 grid: the fracture maps are the 4-point trapezoid
(anterior superior, posterior superior, posterior inferior, anterior inferior corners) of
every fractured body, filled at the source geometry and taken through the same preprocess
op as the image, one channel per Genant grade; the level maps are Gaussians at each body's
centre, placed with the geometry the preprocess op returned.

At the console the fracture head is decoded into peaks and each grade's flag names the
level of the nearest level peak: "Possible compression fracture at L2 (Genant grade 2)".
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from radedge.heads import sigmoid
from radedge.heads.heatmap import HeatmapResult
from radedge.pipeline import load_model
from radedge.spec import FlagRule, HeadSpec, HeatmapDecode, Manifest, PreprocessSpec, Scope

from .. import phantoms
from ..models.vcf import GRADES, INPUT_SIZE, LEVELS, OUTPUT_STRIDE
from ..metrics import auroc, rates
from .base import Recipe, TrainingPlan, choose_threshold, dicom_bytes, mask_input, model_input
from .codes import head_codes

MEAN, STD = 0.5, 0.25
GRID = INPUT_SIZE // OUTPUT_STRIDE
FLAG_CODES = {grade: f"POSSIBLE_COMPRESSION_FRACTURE_GENANT_{grade}" for grade in GRADES}
FRACTURE_LABELS = tuple(f"genant_{grade}" for grade in GRADES)
# Per vertebral body: a missed fracture is a missed referral, a false flag costs a second look.
TARGET_SENSITIVITY = 0.9
LEVEL_SIGMA_CELLS = 1.0
CORNERS = ("anterior_superior", "posterior_superior", "posterior_inferior", "anterior_inferior")
SPINE_SCOPE = Scope(modalities=("DX", "CR"), presentation_intents=("FOR PRESENTATION",), body_parts=("LSPINE",))
_GRID_SPEC = PreprocessSpec(GRID, GRID, resize="letterbox")


def trapezoid_mask(shape: tuple[int, int], corners_xy_px: np.ndarray) -> np.ndarray:
    """uint8[rows, columns]: 1 where a pixel centre lies inside the convex quadrilateral
    ``corners_xy_px`` (float[4, 2], x y in continuous source pixels, in order around it)."""
    rows, columns = shape
    corners = np.asarray(corners_xy_px, dtype=np.float64)
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1 + 1, columns), min(y1 + 1, rows)
    mask = np.zeros(shape, dtype=np.uint8)
    if x1 <= x0 or y1 <= y0:
        return mask
    y, x = np.mgrid[y0:y1, x0:x1] + 0.5
    # Inside a convex polygon: on the same side of every edge, whichever way it winds.
    sides = []
    for start, end in zip(corners, np.roll(corners, -1, axis=0)):
        sides.append((end[0] - start[0]) * (y - start[1]) - (end[1] - start[1]) * (x - start[0]))
    sides = np.stack(sides)
    mask[y0:y1, x0:x1] = (sides >= 0).all(0) | (sides <= 0).all(0)
    return mask


def corners_of(vertebra: dict) -> np.ndarray:
    """float64[4, 2]: a phantom vertebra's trapezoid corners, in order around the body."""
    return np.array([vertebra["corners_xy_px"][name] for name in CORNERS], dtype=np.float64)


def inside_trapezoid(point_xy: tuple[float, float], corners_xy_px: np.ndarray) -> bool:
    """Whether a point (continuous source pixels) lies inside a convex quadrilateral."""
    corners = np.asarray(corners_xy_px, dtype=np.float64)
    x, y = point_xy
    sides = [(b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]) for a, b in zip(corners, np.roll(corners, -1, 0))]
    return all(s >= 0 for s in sides) or all(s <= 0 for s in sides)


def vertebral_metrics(predicted: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """The paper's figures from per-body decisions: bool[P, 5] predicted and true fractures
    (P patients, L1-L5). Per patient: any fractured body; per vertebral body: each body."""
    predicted = np.asarray(predicted, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    return {
        "per_patient": rates(predicted.any(1), truth.any(1)),
        "per_vertebral_body": rates(predicted.ravel(), truth.ravel()),
    }


def level_detection(found_inside: np.ndarray) -> dict[str, Any]:
    """Level detection from bool[P, 5] (level k's point lies inside body k): the success
    rate per image (all five levels inside their own body, the paper's figure) and per body."""
    found_inside = np.asarray(found_inside, dtype=bool)
    return {
        "success_rate": round(float(found_inside.all(1).mean()), 4),
        "per_body": round(float(found_inside.mean()), 4),
        "images": int(len(found_inside)),
    }


def _dilate(mask: np.ndarray) -> np.ndarray:
    """bool[..., H, W] grown by one cell (3 x 3): a peak on the body's edge still counts."""
    padded = np.pad(mask, [(0, 0)] * (mask.ndim - 2) + [(1, 1), (1, 1)])
    height, width = mask.shape[-2:]
    out = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            out |= padded[..., dy : dy + height, dx : dx + width]
    return out


def body_scores(fracture_logits: np.ndarray, bodies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From raw outputs: each body's fracture score (the highest probability of any grade
    channel on the body, grown by a cell) and the grade (1-3) of that maximum.
    ``fracture_logits`` float32[P, 3, h, w], ``bodies`` int8[P, h, w] (0 background, k + 1
    body of level k) -> float64[P, 5], int64[P, 5]."""
    probabilities = sigmoid(fracture_logits.astype(np.float64))
    best = probabilities.max(1)
    best_grade = probabilities.argmax(1) + 1
    scores = np.zeros((len(bodies), len(LEVELS)))
    grades = np.zeros((len(bodies), len(LEVELS)), dtype=np.int64)
    for level in range(len(LEVELS)):
        region = _dilate(bodies == level + 1)
        for patient in range(len(bodies)):
            cells = np.flatnonzero(region[patient])
            if len(cells):
                top = cells[np.argmax(best[patient].ravel()[cells])]
                scores[patient, level] = best[patient].ravel()[top]
                grades[patient, level] = best_grade[patient].ravel()[top]
    return scores, grades


def estimated_grades(fracture: HeatmapResult, levels: HeatmapResult, thresholds: dict[str, float]) -> dict[str, int]:
    """The Genant grade the model estimates at each level it flags: the grade channel of the
    best fracture peak (at or above its flag's threshold) whose nearest level point is that
    level. ``thresholds``: fracture label -> its flag's threshold. Returns level -> grade (1-3)."""
    best: dict[str, tuple[float, int]] = {}
    for point in fracture.points:
        if point.score < thresholds.get(point.label, np.inf):
            continue
        nearest = levels.nearest(point.x, point.y)
        if nearest is not None and point.score > best.get(nearest.label, (-1.0, 0))[0]:
            best[nearest.label] = (point.score, GRADES[point.channel])
    return {level: grade for level, (_, grade) in best.items()}


class VcfRecipe(Recipe):
    model_id = "vcf"
    description = (
        "Multitask U-Net: vertebral compression fractures (Genant grade 1-3) and vertebral levels L1-L5 on "
        "lateral lumbar radiographs. Trained on synthetic phantoms only - a demonstration of the SDK, not a "
        "clinical model."
    )
    data = f"synthetic lateral lumbar spine phantoms, radedge.export.phantoms {phantoms.GENERATOR_VERSION}"
    output_names = ("fracture", "levels")
    spec = PreprocessSpec(INPUT_SIZE, INPUT_SIZE, resize="letterbox", pad_value=0.0, mean=(MEAN,), std=(STD,))
    plan = TrainingPlan(train=480, val=120, epochs=12, batch=16, lr=3e-3)

    def build_model(self):
        from ..models.vcf import VcfNet

        return VcfNet()

    def sample(self, seed: int) -> dict[str, np.ndarray]:
        phantom = phantoms.lumbar_spine_radiograph(seed)
        image, geometry = model_input(phantoms.to_dataset(phantom), self.spec)
        shape = phantom.stored.shape
        fracture = np.zeros((len(GRADES), GRID, GRID), dtype=np.float32)
        levels = np.zeros((len(LEVELS), GRID, GRID), dtype=np.float32)
        bodies = np.zeros((GRID, GRID), dtype=np.int8)
        centres = np.zeros((len(LEVELS), 2), dtype=np.float32)
        grades = np.zeros(len(LEVELS), dtype=np.int64)
        cell_y, cell_x = np.mgrid[0:GRID, 0:GRID] + 0.5
        for vertebra in phantom.vertebrae:
            level = LEVELS.index(vertebra["level"])
            # Filled at the source geometry and resampled by the image's own op: the target
            # is where the body is in the network's input, letterbox and all.
            body = mask_input(trapezoid_mask(shape, corners_of(vertebra)), _GRID_SPEC)
            bodies[(body >= 0.5) & (bodies == 0)] = level + 1
            grade = int(vertebra["genant_grade"])
            grades[level] = grade
            if grade > 0:
                np.maximum(fracture[grade - 1], body, out=fracture[grade - 1])
            x, y = geometry.to_output(*vertebra["centre_xy_px"])
            centres[level] = (x / OUTPUT_STRIDE, y / OUTPUT_STRIDE)
            squared = (cell_x - centres[level, 0]) ** 2 + (cell_y - centres[level, 1]) ** 2
            levels[level] = np.exp(-squared / (2 * LEVEL_SIGMA_CELLS**2))
        return {
            "image": image,
            "fracture": fracture,
            "levels": levels,
            "bodies": bodies,
            "centres": centres,
            "grades": grades,
        }

    def augment(self, torch, batch, generator):
        """A random gamma on display intensities: the model must not depend on the exact
        window a modality chose. No flips: the phantoms already face both ways, and the
        level order runs head to foot."""
        images = batch["image"]
        gamma = torch.exp(torch.empty(images.shape[0], 1, 1, 1).uniform_(-0.35, 0.35, generator=generator))
        display = (images * STD + MEAN).clamp(0, 1) ** gamma
        return {**batch, "image": (display - MEAN) / STD}

    def loss(self, torch, outputs, batch, progress):
        """Fracture detection (weighted BCE + soft Dice on p(fracture)), the grade given a
        fracture (cross-entropy on fractured cells) and the level maps (weighted BCE)."""
        functional = torch.nn.functional
        fracture, levels = outputs["fracture"], outputs["levels"]
        target = batch["fracture"]
        union_target = target.amax(1)
        # The network's channels are p(fracture) * p(grade | fracture) (see the model): the
        # log-sigmoids of the logits are their logs, which sum (logsumexp) to log p(fracture).
        log_grade = functional.logsigmoid(fracture)
        log_fracture = torch.logsumexp(log_grade, dim=1).clamp(max=-1e-7)
        log_no_fracture = torch.log(-torch.expm1(log_fracture))
        # Fractured bodies cover well under 1 % of the grid: their cells weigh 20 times more.
        loss_detection = -(20.0 * union_target * log_fracture + (1 - union_target) * log_no_fracture).mean()
        # A soft Dice on p(fracture), so that small bodies count as much as large ones.
        probability = torch.exp(log_fracture)
        intersection = (probability * union_target).sum(dim=(1, 2))
        dice = (2 * intersection + 1.0) / (probability.sum(dim=(1, 2)) + union_target.sum(dim=(1, 2)) + 1.0)
        loss = loss_detection + (1 - dice).mean()
        # The grade, on fractured cells only: cross-entropy of p(grade | fracture). Brought
        # in after a fifth of training and at half weight: from the start, its noisy
        # gradients slowed the shared encoder down for detection and levels alike.
        fractured = union_target >= 0.5
        grade_weight = 0.5 * min(1.0, max(0.0, (progress - 0.2) / 0.3))
        if grade_weight > 0 and fractured.any():
            log_conditional = (log_grade - log_fracture[:, None]).permute(0, 2, 3, 1)[fractured]
            loss = loss + grade_weight * functional.nll_loss(log_conditional, target.argmax(1)[fractured])
        loss_levels = functional.binary_cross_entropy_with_logits(
            levels, batch["levels"], pos_weight=torch.tensor(30.0)
        )
        return loss + loss_levels

    # -- choosing and measuring ----------------------------------------------------------
    def validation_metrics(self, outputs, data):
        scores, grades = body_scores(outputs["fracture"], data["bodies"])
        truth = data["grades"] > 0
        figures = vertebral_metrics(scores >= 0.5, truth)
        level_maps = outputs["levels"]
        count, channels, height, width = level_maps.shape
        best = level_maps.reshape(count, channels, -1).argmax(-1)
        inside = np.zeros((count, channels), dtype=bool)
        for patient in range(count):
            for level in range(channels):
                inside[patient, level] = data["bodies"][patient].ravel()[best[patient, level]] == level + 1
        detected = truth & (scores >= 0.5)
        return {
            "body_auroc": auroc(scores.ravel(), truth.ravel()),
            "patient_auroc": auroc(scores.max(1), truth.any(1)),
            "body_sensitivity": figures["per_vertebral_body"]["sensitivity"],
            "body_specificity": figures["per_vertebral_body"]["specificity"],
            "grade_agreement": round(float((grades[detected] == data["grades"][detected]).mean()), 4)
            if detected.any() else None,
            "level_success": level_detection(inside)["success_rate"],
        }

    def operating_points(self, outputs, data):
        scores, _ = body_scores(outputs["fracture"], data["bodies"])
        truth = data["grades"] > 0
        # One threshold for every grade channel: a body counts as flagged when any grade's
        # peak on it reaches it, so it is chosen on the highest grade probability per body.
        point = choose_threshold(scores.ravel(), truth.ravel(), TARGET_SENSITIVITY,
                                 chosen_on="validation phantoms, per vertebral body, highest grade channel")
        patient = vertebral_metrics(scores >= point["threshold"], truth)["per_patient"]
        point = {**point, "patient_sensitivity": patient["sensitivity"], "patient_specificity": patient["specificity"]}
        return {code: dict(point) for code in FLAG_CODES.values()}

    def manifest(self, operating_points, provenance) -> Manifest:
        threshold = min(point["threshold"] for point in operating_points.values())
        rules = tuple(
            FlagRule(
                code,
                f"Possible compression fracture at {{where}} (Genant grade {grade})",
                "fracture",
                FRACTURE_LABELS[grade - 1],
                operating_points[code]["threshold"],
                locate_with="levels",
                operating_point=operating_points[code],
            )
            for grade, code in FLAG_CODES.items()
        )
        return Manifest.create(
            model_id=self.model_id,
            model_version=self.version,
            description=self.description,
            preprocess=self.spec,
            heads=(
                # Up to one peak per body; radius 2 cells keeps the peaks of two neighbouring
                # bodies (about 6 cells apart) apart. The grades are exclusive over 3 cells,
                # half a body: one fracture gets one grade (the likeliest), never two flags.
                HeadSpec("fracture", "heatmap", FRACTURE_LABELS, "sigmoid",
                         HeatmapDecode(mode="peaks", threshold=threshold, k=len(LEVELS), radius=2,
                                       exclusive_radius=3),
                         flags=rules, codes=head_codes(self.model_id, "fracture")),
                HeadSpec("levels", "heatmap", LEVELS, "sigmoid", HeatmapDecode(mode="argmax", threshold=0.05),
                         codes=head_codes(self.model_id, "levels")),
            ),
            scope=SPINE_SCOPE,
            display_head="fracture",
            license=self.license,
            provenance=provenance,
        )

    def evaluate(self, bundle, count, seed, threads=0) -> dict[str, Any]:
        model = load_model(bundle if bundle is not None else self.bundle_path, threads=threads)
        codes = set(FLAG_CODES.values())
        thresholds = {rule.label: rule.threshold for rule in model.manifest.head("fracture").flags}
        predicted = np.zeros((count, len(LEVELS)), dtype=bool)
        truth = np.zeros((count, len(LEVELS)), dtype=bool)
        inside = np.zeros((count, len(LEVELS)), dtype=bool)
        grade_pairs, latencies = [], []
        for offset in range(count):
            phantom = phantoms.lumbar_spine_radiograph(seed + offset)
            prediction = model.predict(dicom_bytes(phantom), label=f"phantom {seed + offset}")
            latencies.append(prediction.timings_ms["total"])
            levels = prediction.heatmaps["levels"]
            flagged = {level for flag in prediction.flags if flag.code in codes and flag.where
                       for level in flag.where.split(", ")}
            estimated = estimated_grades(prediction.heatmaps["fracture"], levels, thresholds)
            for vertebra in phantom.vertebrae:
                level = LEVELS.index(vertebra["level"])
                truth[offset, level] = vertebra["fractured"]
                predicted[offset, level] = vertebra["level"] in flagged
                found = levels.of(vertebra["level"])
                inside[offset, level] = bool(found) and inside_trapezoid((found[0].x, found[0].y), corners_of(vertebra))
                if vertebra["fractured"] and predicted[offset, level]:
                    grade_pairs.append((int(vertebra["genant_grade"]), estimated[vertebra["level"]]))
        return {
            "bundle_sha256": model.bundle.digest,
            "model": f"{model.manifest.model_id} {model.manifest.model_version}",
            "phantoms": count,
            "seeds": [seed, seed + count],
            "fractured_bodies": int(truth.sum()),
            "patients_with_fracture": int(truth.any(1).sum()),
            **vertebral_metrics(predicted, truth),
            "genant_grade_agreement": {
                "flagged_fractures": len(grade_pairs),
                "exact": round(float(np.mean([t == p for t, p in grade_pairs])), 4) if grade_pairs else None,
                "rows_truth_cols_estimated": list(GRADES),
                "counts": [[sum(1 for pair in grade_pairs if pair == (t, p)) for p in GRADES] for t in GRADES],
            },
            "level_detection": level_detection(inside),
            "latency_ms": {
                "median": round(statistics.median(latencies), 1),
                "p95": round(float(np.percentile(latencies, 95)), 1),
            },
        }


RECIPE = VcfRecipe()
