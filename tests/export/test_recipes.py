"""Every reference model's recipe and committed weights: the bundle is what its checkpoint exports."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

from radedge.bundle import bundled_bundle_paths, load_bundle

BUNDLED = {load_bundle(path).manifest.model_id: path for path in bundled_bundle_paths()}


def test_auroc_counts_pairs_and_ties():
    from radedge.export.metrics import auroc

    assert auroc(np.array([0.9, 0.8, 0.1]), np.array([True, True, False])) == 1.0
    assert auroc(np.array([0.1, 0.8, 0.9]), np.array([True, True, False])) == 0.0
    assert auroc(np.array([0.5, 0.5]), np.array([True, False])) == 0.5
    # 2 positives x 2 negatives: (0.7 > 0.6), (0.7 > 0.2), (0.4 < 0.6), (0.4 > 0.2) -> 3 / 4
    assert auroc(np.array([0.7, 0.4, 0.6, 0.2]), np.array([True, True, False, False])) == 0.75
    assert auroc(np.array([0.7]), np.array([True])) is None


def test_rates():
    from radedge.export.metrics import rates

    figures = rates(np.array([1, 1, 0, 0, 1], bool), np.array([1, 0, 0, 1, 1], bool))
    assert figures == {"accuracy": 0.6, "sensitivity": round(2 / 3, 4), "specificity": 0.5, "count": 5}


@pytest.mark.needs_torch  # the recipes import their architectures
def test_every_recipe_names_its_model_and_the_bundled_ones_have_one():
    from radedge.export.recipes import RECIPES, recipe

    for model_id in BUNDLED:
        assert model_id in RECIPES, f"bundled model {model_id} has no recipe"
    for model_id in BUNDLED:
        assert recipe(model_id).model_id == model_id
    with pytest.raises(ValueError, match="known: bone-tumor"):
        recipe("no-such-model")


@pytest.mark.needs_torch
def test_train_refuses_an_option_the_recipe_does_not_take(capsys):
    from radedge.export import train

    with pytest.raises(SystemExit) as exit_:
        train.main(["bone-tumor", "--set", "backbone_weights=x.pt"])
    assert exit_.value.code == 2
    assert "bone-tumor's options (none)" in capsys.readouterr().err


@pytest.mark.needs_torch
@pytest.mark.parametrize("model_id", sorted(BUNDLED))
def test_bundle_is_its_checkpoint_exported(model_id: str):
    """The committed checkpoint loads without executing pickled code, the bundle records its
    sha256, and ONNX Runtime on the bundle reproduces PyTorch on the checkpoint head by head
    (within 1e-4 plus 1e-3 of the output's largest magnitude: the export gate), on inputs
    made by the recipe's own sampler."""
    import torch

    from radedge.export.loaders import check_onnx_against_torch
    from radedge.export.recipes import recipe
    from radedge.export.recipes.base import HELD_OUT_SEED

    model_recipe = recipe(model_id)
    raw = model_recipe.checkpoint_path.read_bytes()
    bundle = load_bundle(BUNDLED[model_id])
    assert bundle.manifest.provenance["checkpoint_sha256"] == hashlib.sha256(raw).hexdigest()
    state = torch.load(io.BytesIO(raw), weights_only=True)
    model = model_recipe.build_model()
    model.load_state_dict(state["state_dict"])
    images = np.stack([model_recipe.sample(HELD_OUT_SEED + offset)["image"] for offset in range(2)])
    report = check_onnx_against_torch(model, bundle.read("model.onnx"), images, model_recipe.input_name,
                                      model_recipe.output_names)
    assert set(report.max_abs_difference) == set(model_recipe.output_names)
    assert report.within(atol=1e-4, rtol=1e-3), report.max_abs_difference
