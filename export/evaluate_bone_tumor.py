"""Measure a ``bone-tumor`` bundle on held-out phantoms, end to end through the SDK.

    python -m radedge.export.evaluate_bone_tumor                # the bundled model, 150 phantoms
    python -m radedge.export.evaluate_bone_tumor --bundle DIR --count 60 --report out/eval.json

Each phantom is written as DICOM bytes and given to ``radedge.load_model().predict`` as a
console would receive it, so the figures include decoding, windowing, the native
preprocess op, ONNX Runtime and the mask decode back to the source geometry. Dice is
computed at the source resolution against the phantom's exact lesion mask.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pydicom

from radedge._files import write_atomically
from radedge.pipeline import load_model

from . import phantoms
from .models.bone_tumor import LABELS
from .train_bone_tumor import FLAG_CODE, label_for

# Far from every training (0..) and validation (500 000..) seed.
HELD_OUT_SEED = 1_000_000


def dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    predicted, truth = predicted.astype(bool), truth.astype(bool)
    total = predicted.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(predicted, truth).sum() / total)


def evaluate(bundle: str | None, count: int, seed: int, threads: int = 0) -> dict:
    model = load_model(bundle, threads=threads)
    confusion = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    dices, latencies = [], []
    flagged_malignant = flagged_other = malignant = other = 0
    for offset in range(count):
        phantom = phantoms.long_bone_radiograph(seed + offset, label=label_for(seed + offset))
        buffer = io.BytesIO()
        pydicom.dcmwrite(buffer, phantoms.to_dataset(phantom), enforce_file_format=True)
        prediction = model.predict(buffer.getvalue(), label=f"phantom {seed + offset}")
        latencies.append(prediction.timings_ms["total"])
        truth = LABELS.index(phantom.label)
        confusion[truth, LABELS.index(prediction.classifications["tumor_logits"].top_label)] += 1
        if phantom.label != "no_tumour":
            dices.append(dice(prediction.segmentations["lesion_logits"].mask == 1, phantom.lesion_mask))
        raised = any(flag.code == FLAG_CODE for flag in prediction.flags)
        if phantom.label == "malignant":
            malignant += 1
            flagged_malignant += raised
        else:
            other += 1
            flagged_other += raised
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
            "sensitivity": round(flagged_malignant / malignant, 4) if malignant else None,
            "specificity": round(1 - flagged_other / other, 4) if other else None,
        },
        "latency_ms": {
            "median": round(statistics.median(latencies), 1),
            "p95": round(float(np.percentile(latencies, 95)), 1),
        },
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default=None, help="bundle directory (default: the bundled bone-tumor model)")
    parser.add_argument("--count", type=int, default=150)
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--report", default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    result = evaluate(args.bundle, args.count, args.seed, args.threads)
    text = json.dumps(result, indent=2)
    print(text)
    if args.report:
        write_atomically(Path(args.report), (text + "\n").encode())


if __name__ == "__main__":
    sys.exit(main())
