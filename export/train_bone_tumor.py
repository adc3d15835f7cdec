"""Train the ``bone-tumor`` reference model on phantoms and export its bundle.

    python -m radedge.export.train_bone_tumor            # the committed model (~10 min, 2 cores)
    python -m radedge.export.train_bone_tumor --train 24 --val 12 --epochs 1 --out /tmp/tiny   # smoke run

Every training input goes through the same path as inference: phantom -> DICOM data set
-> ``radedge.io.read_image`` -> ``radedge.intensity.build_lut`` (the file's own window) ->
the native preprocess op. The lesion mask goes through the same op (an identity LUT over
{0, 1}), so image and target are resampled identically.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from radedge import __version__
from radedge.bundle import default_bundle_path
from radedge.intensity import build_lut
from radedge.io import read_image
from radedge.ops.preprocess import PreprocessSpec, preprocess

from . import phantoms
from .loaders import ExportError, OnnxFromTorch, SaveBundle, check_onnx_against_torch
from .models.bone_tumor import INPUT_SIZE, LABELS

MODEL_ID = "bone-tumor"
MODEL_VERSION = "0.1.0"
MEAN, STD = 0.5, 0.25
FLAG_CODE = "SUSPECTED_MALIGNANT_BONE_LESION"
FLAG_TITLE = "Suspected malignant bone lesion"
TARGET_SENSITIVITY = 0.95
# Seeds: training and validation from 0 up, the held-out evaluation set far away
# (radedge.export.evaluate_bone_tumor), so no phantom is ever in two sets.
VALIDATION_SEED_OFFSET = 500_000
BODY_PARTS = (
    "FEMUR", "TIBIA", "FIBULA", "HUMERUS", "RADIUS", "ULNA", "LEG", "ARM", "KNEE", "HIP",
    "SHOULDER", "ELBOW", "ANKLE", "WRIST", "EXTREMITY", "LOWER LIMB", "UPPER LIMB",
)
SPEC = PreprocessSpec(INPUT_SIZE, INPUT_SIZE, resize="letterbox", pad_value=0.0, mean=(MEAN,), std=(STD,))
_MASK_SPEC = PreprocessSpec(INPUT_SIZE // 2, INPUT_SIZE // 2, resize="letterbox", pad_value=0.0)
_MASK_LUT = np.array([0.0, 1.0], dtype=np.float32)


def label_for(seed: int) -> str:
    """Balanced classes: seed i has label i mod 3."""
    return LABELS[seed % len(LABELS)]


def sample(seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One training sample: (image float32[1, 256, 256], lesion fraction float32[1, 128, 128], class index)."""
    label = label_for(seed)
    phantom = phantoms.long_bone_radiograph(seed, label=label)
    image = read_image(phantoms.to_dataset(phantom))
    lut = build_lut(image, voi="file")
    tensor, _ = preprocess(image.pixels, lut.table, lut.first_stored_value, SPEC, threads=1)
    # Letterboxing to half size gives the same geometry as the mask head's output grid.
    mask, _ = preprocess(np.ascontiguousarray(phantom.lesion_mask), _MASK_LUT, 0, _MASK_SPEC, threads=1)
    return tensor[0], mask[0], LABELS.index(label)


def build_dataset(seeds: range, cache: Path | None, workers: int) -> dict[str, np.ndarray]:
    """Samples for ``seeds`` (cached as .npz keyed by seeds and generator version)."""
    key = hashlib.sha256(f"{seeds.start}:{seeds.stop}:{INPUT_SIZE}:{__version__}:{phantoms.GENERATOR_VERSION}".encode()).hexdigest()[:16]
    path = cache / f"bone_tumor_{seeds.start}_{seeds.stop}_{key}.npz" if cache else None
    if path is not None and path.exists():
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(sample, seeds, chunksize=4))
    data = {
        "images": np.stack([r[0] for r in results]).astype(np.float32),
        "masks": np.stack([r[1] for r in results]).astype(np.float32),
        "labels": np.array([r[2] for r in results], dtype=np.int64),
        "seeds": np.array(list(seeds), dtype=np.int64),
    }
    print(f"  generated {len(seeds)} phantoms in {time.perf_counter() - started:.0f} s", flush=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **data)
    return data


def _augment(torch, images, masks, generator):
    """Flips and a random gamma on display intensities: the model must not depend on
    laterality, orientation or the exact window a modality chose."""
    if torch.rand((), generator=generator) < 0.5:
        images, masks = images.flip(-1), masks.flip(-1)
    if torch.rand((), generator=generator) < 0.5:
        images, masks = images.flip(-2), masks.flip(-2)
    gamma = torch.exp(torch.empty(images.shape[0], 1, 1, 1).uniform_(-0.35, 0.35, generator=generator))
    display = (images * STD + MEAN).clamp(0, 1) ** gamma
    return (display - MEAN) / STD, masks


def _dice(probabilities, targets, eps=1.0):
    intersection = (probabilities * targets).sum(dim=(1, 2, 3))
    return (2 * intersection + eps) / (probabilities.sum(dim=(1, 2, 3)) + targets.sum(dim=(1, 2, 3)) + eps)


def evaluate(torch, model, data, batch=32):
    """Class probabilities float32[S, 3] and per-image Dice at the mask grid (lesion cases)."""
    model.eval()
    probs, dices = [], []
    with torch.no_grad():
        for start in range(0, len(data["labels"]), batch):
            x = torch.from_numpy(data["images"][start : start + batch])
            m = torch.from_numpy(data["masks"][start : start + batch])
            lesion, tumor = model(x)
            probs.append(torch.softmax(tumor, dim=1).numpy())
            dices.append(_dice((torch.sigmoid(lesion) >= 0.5).float(), (m >= 0.5).float()).numpy())
    return np.concatenate(probs), np.concatenate(dices)


def choose_threshold(p_malignant: np.ndarray, is_malignant: np.ndarray, target_sensitivity: float) -> dict:
    """The highest threshold whose sensitivity for malignant on the validation set is >=
    the target (a flag at acquisition should rarely miss); returns it with the
    sensitivity and specificity it gives there."""
    scores = np.sort(p_malignant[is_malignant])[::-1]
    needed = max(1, int(np.ceil(target_sensitivity * len(scores))))
    # Rounded down so that the recorded threshold still flags every case it counted.
    threshold = float(np.floor(float(scores[needed - 1]) * 1e4) / 1e4)
    flagged = p_malignant >= threshold
    return {
        "threshold": threshold,
        "sensitivity": round(float(flagged[is_malignant].mean()), 4),
        "specificity": round(float((~flagged[~is_malignant]).mean()), 4),
        "target_sensitivity": target_sensitivity,
        "chosen_on": "validation phantoms",
    }


def _fit(torch, model, train_data, val_data, args) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = max(1, len(train_data["labels"]) // args.batch)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch, pct_start=0.15
    )
    generator = torch.Generator().manual_seed(args.seed)
    images = torch.from_numpy(train_data["images"])
    masks = torch.from_numpy(train_data["masks"])
    labels = torch.from_numpy(train_data["labels"])
    started = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(labels), generator=generator)
        seen, loss_sum = 0, 0.0
        for step in range(steps_per_epoch):
            index = order[step * args.batch : (step + 1) * args.batch]
            x, m = _augment(torch, images[index], masks[index], generator)
            lesion, tumor = model(x)
            target = (m >= 0.5).float()
            loss_mask = torch.nn.functional.binary_cross_entropy_with_logits(lesion, target) + (
                1 - _dice(torch.sigmoid(lesion), target)
            ).mean()
            loss_class = torch.nn.functional.cross_entropy(tumor, labels[index])
            loss = loss_mask + loss_class
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += len(index)
            loss_sum += float(loss.detach()) * len(index)
        probs, dices = evaluate(torch, model, val_data)
        accuracy = float((probs.argmax(1) == val_data["labels"]).mean())
        lesion_cases = val_data["labels"] > 0
        print(
            f"epoch {epoch + 1:2d}/{args.epochs}  loss {loss_sum / seen:.3f}  "
            f"val accuracy {accuracy:.3f}  val Dice {dices[lesion_cases].mean():.3f}  "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )


def train(args) -> Path:
    """Train (or, with ``--from-checkpoint``, reload) the model, choose the flag's
    operating point on the validation phantoms, export, check and write the bundle."""
    try:
        import torch
    except ImportError:
        sys.exit("training needs PyTorch: pip install 'radedge[export]' (a CPU build of torch is enough)")
    from .models.bone_tumor import BoneTumorNet

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    cache = Path(args.cache) if args.cache else None
    val_seeds = range(VALIDATION_SEED_OFFSET + args.seed, VALIDATION_SEED_OFFSET + args.seed + args.val)
    model = BoneTumorNet()
    if args.from_checkpoint:
        raw = Path(args.from_checkpoint).read_bytes()
        state = torch.load(io.BytesIO(raw), weights_only=True)
        model.load_state_dict(state["state_dict"])
        training = state["training"]
        print(f"reloaded {args.from_checkpoint}; {len(val_seeds)} validation phantoms", flush=True)
        val_data = build_dataset(val_seeds, cache, args.workers)
    else:
        train_seeds = range(args.seed, args.seed + args.train)
        print(f"phantoms: {len(train_seeds)} training, {len(val_seeds)} validation", flush=True)
        train_data = build_dataset(train_seeds, cache, args.workers)
        val_data = build_dataset(val_seeds, cache, args.workers)
        _fit(torch, model, train_data, val_data, args)
        training = {
            "data": f"synthetic long-bone phantoms, radedge.export.phantoms {phantoms.GENERATOR_VERSION}",
            "train_seeds": [train_seeds.start, train_seeds.stop],
            "epochs": args.epochs,
            "batch": args.batch,
            "learning_rate": args.lr,
            "torch": torch.__version__,
        }
        buffer = io.BytesIO()
        torch.save(
            {"state_dict": model.state_dict(), "labels": LABELS, "input_size": INPUT_SIZE, "mean": MEAN, "std": STD,
             "training": training},
            buffer,
        )
        raw = buffer.getvalue()
        checkpoint = Path(args.checkpoint)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_bytes(raw)
    checkpoint_sha256 = hashlib.sha256(raw).hexdigest()

    probs, dices = evaluate(torch, model, val_data)
    is_malignant = val_data["labels"] == LABELS.index("malignant")
    operating_point = choose_threshold(probs[:, LABELS.index("malignant")], is_malignant, TARGET_SENSITIVITY)
    validation = {
        "phantoms": len(val_seeds),
        "seeds": [val_seeds.start, val_seeds.stop],
        "accuracy": round(float((probs.argmax(1) == val_data["labels"]).mean()), 4),
        "dice_at_mask_grid": round(float(dices[val_data["labels"] > 0].mean()), 4),
    }

    output_names = ("lesion_logits", "tumor_logits")
    onnx_bytes = OnnxFromTorch(model, (1, 1, INPUT_SIZE, INPUT_SIZE), "image", output_names)()
    report = check_onnx_against_torch(model, onnx_bytes, val_data["images"][:8], "image", output_names)
    # float32 reassociation (ONNX Runtime fuses and reorders) moves pooled logits by ~1e-4
    # of their size; a broken export is off by whole units.
    if not report.within(atol=1e-4, rtol=1e-3):
        raise ExportError(
            f"the ONNX export drifts from PyTorch: max |difference| {report.max_abs_difference} "
            f"for outputs as large as {report.max_abs_reference}"
        )

    manifest = {
        "model": {
            "id": MODEL_ID,
            "version": MODEL_VERSION,
            "description": (
                "Multitask U-Net: bone lesion mask + no tumour / benign / malignant on long-bone radiographs. "
                "Trained on synthetic phantoms only - a demonstration of the SDK, not a clinical model."
            ),
        },
        "input": {"name": "image", "shape": [1, 1, INPUT_SIZE, INPUT_SIZE], "dtype": "float32", "layout": "NCHW"},
        "preprocessing": {
            "voi": "file",
            "voi_index": 0,
            "resize": "letterbox",
            "pad_value": 0.0,
            "mean": [MEAN],
            "std": [STD],
            "channels": 1,
        },
        "outputs": [
            {
                "name": "lesion_logits",
                "kind": "segmentation",
                "labels": ["lesion"],
                "activation": "sigmoid",
                "decode": {"threshold": 0.5},
            },
            {
                "name": "tumor_logits",
                "kind": "classification",
                "labels": list(LABELS),
                "activation": "softmax",
                "flags": [
                    {
                        "code": FLAG_CODE,
                        "title": FLAG_TITLE,
                        "label": "malignant",
                        "threshold": operating_point["threshold"],
                        "operating_point": operating_point,
                    }
                ],
            },
        ],
        "scope": {
            "modalities": ["DX", "CR"],
            "presentation_intents": ["FOR PRESENTATION"],
            "body_parts": list(BODY_PARTS),
        },
        "provenance": {
            "checkpoint_sha256": checkpoint_sha256,
            "onnx_vs_torch_max_abs_difference": report.max_abs_difference,
            "training": training,
            "validation": validation,
        },
    }
    out = SaveBundle(onnx_bytes, manifest)(args.out)
    summary = {"bundle": str(out), "checkpoint_sha256": checkpoint_sha256, "validation": validation, "flag": operating_point}
    print(json.dumps(summary, indent=2))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(default_bundle_path()), help="bundle directory to write")
    parser.add_argument("--checkpoint", default=str(Path(__file__).parent / "checkpoints" / "bone-tumor.pt"))
    parser.add_argument("--train", type=int, default=900, help="training phantoms")
    parser.add_argument("--val", type=int, default=150, help="validation phantoms (operating point, progress)")
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes generating phantoms")
    parser.add_argument("--cache", default=None, help="directory to cache generated training tensors")
    parser.add_argument("--from-checkpoint", default=None, metavar="PT",
                        help="skip training: reload this checkpoint, re-choose the operating point and re-export")
    train(parser.parse_args(argv))


if __name__ == "__main__":
    main()
