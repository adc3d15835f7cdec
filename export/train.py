"""Train a reference model on phantoms and write its checkpoint and bundle.

    python -m radedge.export.train bone-tumor        # the committed model (writes
                                                     # export/checkpoints/bone-tumor.pt and
                                                     # sdk/radedge/models/bone-tumor)
    python -m radedge.export.train vcf --train 16 --val 8 --epochs 1 --out /tmp/vcf --checkpoint /tmp/vcf.pt

Every model id of ``radedge.export.recipes.RECIPES`` works. Training is deterministic in
``--seed`` for a given torch build and thread count. The run: phantoms (training from
seed 0, validation from 500 000) -> the recipe's training -> checkpoint -> the flags'
operating points on the validation phantoms -> FP32, FP16 and INT8 ONNX (calibrated on the
first training phantoms), each judged head by head on the validation phantoms
(``radedge.export.pipeline``) -> the bundle, with the precisions that passed and gate.json.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from radedge.errors import MissingDependencyError

from radedge.spec import PRECISIONS

from .loaders import ExportError
from .pipeline import CALIBRATION_PHANTOMS, export_bundle, phantom_set, recipe_manifest
from .recipes import RECIPES, recipe
from .recipes.base import VALIDATION_SEED, Recipe, Settings, build_dataset


def _torch():
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "Training a reference model") from None
    return torch


def train(model_recipe: Recipe, settings: Settings, *, out: Path, checkpoint: Path,
          from_checkpoint: Path | None = None, threads: int = 0,
          precisions: tuple[str, ...] = PRECISIONS) -> dict[str, Any]:
    """Train (or, with ``from_checkpoint``, reload) the model, choose its operating points,
    export it in ``precisions`` through the accuracy gate and write the bundle; returns a
    summary."""
    torch = _torch()
    model_recipe = model_recipe.with_options(settings.options)
    torch.manual_seed(settings.seed)
    torch.set_num_threads(threads or os.cpu_count() or 1)
    started = time.perf_counter()
    val_seeds = range(VALIDATION_SEED + settings.seed, VALIDATION_SEED + settings.seed + settings.val)
    model = model_recipe.build_model()
    if from_checkpoint is not None:
        raw = Path(from_checkpoint).read_bytes()
        state = torch.load(io.BytesIO(raw), weights_only=True)
        model.load_state_dict(state["state_dict"])
        training = state["training"]
        print(f"reloaded {from_checkpoint}; {len(val_seeds)} validation phantoms", flush=True)
        val_data = build_dataset(model_recipe, val_seeds, settings.cache, settings.workers)
        train_data: dict = {}
    else:
        train_seeds = range(settings.seed, settings.seed + settings.train)
        print(f"{model_recipe.model_id}: {len(train_seeds)} training, {len(val_seeds)} validation phantoms",
              flush=True)
        train_data = build_dataset(model_recipe, train_seeds, settings.cache, settings.workers)
        val_data = build_dataset(model_recipe, val_seeds, settings.cache, settings.workers)
        extra = model_recipe.fit(torch, model, train_data, val_data, settings)
        training = {
            "data": model_recipe.data,
            "train_seeds": [train_seeds.start, train_seeds.stop],
            "epochs": settings.epochs,
            "batch": settings.batch,
            "learning_rate": settings.lr,
            "seed": settings.seed,
            "torch": str(torch.__version__),
            **extra,
        }
        buffer = io.BytesIO()
        torch.save({"model_id": model_recipe.model_id, "version": model_recipe.version,
                    "state_dict": model.state_dict(), "training": training}, buffer)
        raw = buffer.getvalue()
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_bytes(raw)
    trained_s = time.perf_counter() - started
    checkpoint_sha256 = hashlib.sha256(raw).hexdigest()

    cal_data = (
        {name: values[:CALIBRATION_PHANTOMS] for name, values in train_data.items()}
        if from_checkpoint is None
        else build_dataset(model_recipe, range(settings.seed, settings.seed + CALIBRATION_PHANTOMS),
                           settings.cache, settings.workers)
    )
    manifest = recipe_manifest(model_recipe, model, val_data,
                               {"checkpoint_sha256": checkpoint_sha256, "checkpoint_format": "state_dict",
                                "training": training})
    report = export_bundle(model, manifest, out=out, validation=phantom_set(model_recipe, val_data, "validation"),
                           calibration=phantom_set(model_recipe, cal_data, "training"), precisions=precisions,
                           output_names=model_recipe.output_names)
    print(report.table(), flush=True)
    return {
        "model": model_recipe.model_id,
        "bundle": str(report.bundle),
        "precisions": {"written": report.written, "refused": report.refused},
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": checkpoint_sha256,
        "validation": report.document["validation"] | {"figures": manifest.provenance["validation"]},
        "operating_points": {rule.code: rule.operating_point for rule in manifest.flag_rules},
        "seconds": {"data_and_training": round(trained_s, 1), "total": round(time.perf_counter() - started, 1)},
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m radedge.export.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=sorted(RECIPES), help="model id")
    parser.add_argument("--out", default=None, help="bundle directory to write (default: the bundled model's)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint to write (default export/checkpoints/MODEL.pt)")
    parser.add_argument("--train", type=int, default=None, help="training phantoms (default: the recipe's)")
    parser.add_argument("--val", type=int, default=None, help="validation phantoms (operating points, progress)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes generating phantoms")
    parser.add_argument("--cache", default=None, help="directory to cache generated training tensors")
    parser.add_argument("--from-checkpoint", default=None, metavar="PT",
                        help="skip training: reload this checkpoint, re-choose the operating points and re-export")
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
                        help="precisions to export (default: all three)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe-specific option (e.g. tumor-cls: --set backbone_weights=resnet50.pt)")
    args = parser.parse_args(argv)
    model_recipe = recipe(args.model)
    options = dict(item.partition("=")[::2] for item in args.set)
    unknown = sorted(set(options) - set(model_recipe.options))
    if unknown or any("=" not in item for item in args.set):
        known = "; ".join(f"{name}: {text}" for name, text in model_recipe.options.items()) or "none"
        parser.error(f"--set takes KEY=VALUE with KEY one of {model_recipe.model_id}'s options ({known}); got {args.set}")
    plan = model_recipe.plan
    settings = Settings(
        train=plan.train if args.train is None else args.train,
        val=plan.val if args.val is None else args.val,
        epochs=plan.epochs if args.epochs is None else args.epochs,
        batch=plan.batch if args.batch is None else args.batch,
        lr=plan.lr if args.lr is None else args.lr,
        weight_decay=plan.weight_decay,
        seed=args.seed,
        workers=max(1, args.workers),
        cache=Path(args.cache) if args.cache else None,
        options=options,
    )
    try:
        summary = train(
            model_recipe, settings,
            out=Path(args.out) if args.out else model_recipe.bundle_path,
            checkpoint=Path(args.checkpoint) if args.checkpoint else model_recipe.checkpoint_path,
            from_checkpoint=Path(args.from_checkpoint) if args.from_checkpoint else None,
            threads=args.threads,
            precisions=tuple(args.precision),
        )
    except (ExportError, MissingDependencyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
