"""Checkpoint intake: every format loads into an eval-mode module that computes what the saved
model computed, and every unsafe or broken file is refused with what to do instead."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.needs_torch

FACTORY = "tests.export.two_heads:build_two_head_net"


@pytest.fixture(scope="module")
def net():
    from tests.export.two_heads import build_two_head_net

    return build_two_head_net()


@pytest.fixture(scope="module")
def image():
    import torch

    return torch.from_numpy(np.random.default_rng(1).normal(size=(2, 1, 32, 32)).astype(np.float32))


def _same_outputs(module, reference, image):
    import torch

    with torch.no_grad():
        for got, expected in zip(module(image), reference(image)):
            np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)


def test_state_dict_with_a_factory_string(tmp_path: Path, net, image):
    import torch

    from radedge.export.intake import load_checkpoint

    path = tmp_path / "net.pt"
    # As DataParallel saves it, under "state_dict" next to what the trainer recorded.
    torch.save({"state_dict": {f"module.{key}": value for key, value in net.state_dict().items()}, "epoch": 3}, path)
    checkpoint = load_checkpoint(path, factory=FACTORY)
    assert checkpoint.format == "state_dict"
    assert checkpoint.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert checkpoint.source == str(path)
    assert checkpoint.metadata == {"epoch": 3}
    assert not checkpoint.module.training
    _same_outputs(checkpoint.module, net, image)


def test_bare_state_dict_with_a_factory_callable(tmp_path: Path, net, image):
    import torch

    from radedge.export.intake import load_checkpoint
    from tests.export.two_heads import TwoHeadNet

    path = tmp_path / "bare.pt"
    torch.save(net.state_dict(), path)
    checkpoint = load_checkpoint(path, factory=TwoHeadNet)
    _same_outputs(checkpoint.module, net, image)


def test_reference_checkpoint_through_its_recipe():
    import torch

    from radedge.export.intake import load_checkpoint
    from radedge.export.recipes import recipe

    model_recipe = recipe("bone-tumor")
    checkpoint = load_checkpoint(model_recipe.checkpoint_path, recipe="bone-tumor")
    assert checkpoint.format == "state_dict"
    assert checkpoint.metadata["model_id"] == "bone-tumor"
    saved = torch.load(model_recipe.checkpoint_path, weights_only=True)["state_dict"]
    loaded = checkpoint.module.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in saved.items())
    assert not checkpoint.module.training


def test_torchscript_archive(tmp_path: Path, net, image):
    import torch

    from radedge.export.intake import load_checkpoint

    path = tmp_path / "net.torchscript"
    torch.jit.save(torch.jit.script(net), path)
    checkpoint = load_checkpoint(path)
    assert checkpoint.format == "torchscript"
    assert isinstance(checkpoint.module, torch.jit.ScriptModule)
    _same_outputs(checkpoint.module, net, image)


def _save_program(net, path: Path) -> None:
    import torch

    example = torch.zeros(2, 1, 32, 32)
    torch.export.save(torch.export.export(net, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},)), path)


def test_exported_program(tmp_path: Path, net, image):
    from radedge.export.intake import load_checkpoint

    path = tmp_path / "net.pt2"
    _save_program(net, path)
    checkpoint = load_checkpoint(path)
    assert checkpoint.format == "exported_program"
    _same_outputs(checkpoint.module, net, image)


def test_exported_program_with_a_pickled_member_is_refused(tmp_path: Path, net):
    from radedge.export.intake import CheckpointError, load_checkpoint

    path = tmp_path / "net.pt2"
    _save_program(net, path)
    tampered = tmp_path / "tampered.pt2"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tampered, "w") as target:
        for member in source.infolist():
            data = source.read(member)
            if member.filename.endswith("weights_config.json"):
                config = json.loads(data)
                next(iter(config["config"].values()))["use_pickle"] = True
                data = json.dumps(config).encode()
            target.writestr(member, data)
    with pytest.raises(CheckpointError, match="pickled Python object.*run code"):
        load_checkpoint(tampered)


class _CreatesFile:
    """Unpickling it (without weights_only) creates ``path``: proof that code from a file ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_exported_program_with_a_code_running_sample_input_is_refused(tmp_path: Path, net):
    import torch

    from radedge.export.intake import CheckpointError, load_checkpoint

    path = tmp_path / "net.pt2"
    _save_program(net, path)
    ran = tmp_path / "ran"
    payload = io.BytesIO()
    torch.save(_CreatesFile(ran), payload)
    tampered = tmp_path / "tampered.pt2"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tampered, "w") as target:
        for member in source.infolist():
            data = source.read(member)
            target.writestr(member, payload.getvalue() if member.filename.endswith("sample_inputs/model.pt") else data)
    with pytest.raises(CheckpointError, match="does not load with weights_only=True.*running code"):
        load_checkpoint(tampered)
    assert not ran.exists()


def test_pickled_module_is_refused_without_running_it(tmp_path: Path, net):
    import torch

    from radedge.export.intake import CheckpointError, load_checkpoint

    path = tmp_path / "whole-model.pt"
    torch.save(net, path)
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(path, factory=FACTORY)
    message = str(raised.value)
    assert "pickles Python objects" in message and "TwoHeadNet" in message
    assert "run code from the file" in message
    assert "torch.save(model.state_dict(), path)" in message

    ran = tmp_path / "ran"
    torch.save({"state_dict": net.state_dict(), "hook": _CreatesFile(ran)}, path)
    with pytest.raises(CheckpointError, match="pickles Python objects"):
        load_checkpoint(path, factory=FACTORY)
    assert not ran.exists()


def test_state_dict_without_an_architecture_is_refused(tmp_path: Path, net):
    import torch

    from radedge.export.intake import CheckpointError, load_checkpoint

    path = tmp_path / "net.pt"
    torch.save({"model_id": "two-heads", "state_dict": net.state_dict()}, path)
    with pytest.raises(CheckpointError, match="give --recipe NAME or --factory module:function.*'two-heads'"):
        load_checkpoint(path)


def test_weights_of_another_architecture_list_the_keys(tmp_path: Path, net):
    import torch

    from radedge.export.intake import CheckpointError, load_checkpoint

    path = tmp_path / "net.pt"
    state = dict(net.state_dict())
    state["extra_head.weight"] = state.pop("class_head.weight")
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\) \['class_head.weight'\], 1 unexpected key\(s\) \['extra_head.weight'\]"):
        load_checkpoint(path, factory=FACTORY)


def test_truncated_missing_and_foreign_files_are_refused(tmp_path: Path, net):
    import torch

    from radedge.export.intake import CheckpointError, load_checkpoint

    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint, or it is truncated"):
        load_checkpoint(truncated, factory=FACTORY)
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_checkpoint(text, factory=FACTORY)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "absent.pt", factory=FACTORY)


def test_factories_that_do_not_exist_are_refused(tmp_path: Path, net):
    import torch

    from radedge.export.intake import CheckpointError, load_checkpoint

    path = tmp_path / "net.pt"
    torch.save(net.state_dict(), path)
    with pytest.raises(CheckpointError, match="cannot import 'no_such_package.models'"):
        load_checkpoint(path, factory="no_such_package.models:build")
    with pytest.raises(CheckpointError, match="has no function 'build_other_net'.*build_two_head_net"):
        load_checkpoint(path, factory="tests.export.two_heads:build_other_net")
    with pytest.raises(CheckpointError, match="package.module:function"):
        load_checkpoint(path, factory="tests.export.two_heads")
    with pytest.raises(CheckpointError, match="no recipe for model 'no-such-model'"):
        load_checkpoint(path, recipe="no-such-model")
