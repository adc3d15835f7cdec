"""Checkpoints in, a PyTorch module in eval mode out, without running code from the file.

    checkpoint = load_checkpoint("bone-tumor.pt", recipe="bone-tumor")
    checkpoint = load_checkpoint("net.pt", factory="mypackage.models:build_net")
    checkpoint = load_checkpoint("net.torchscript.pt")       # the architecture is in the file
    checkpoint = load_checkpoint("net.pt2")                  # torch.export.save(...)
    onnx_bytes = OnnxFromTorch(checkpoint.module, (1, 1, 256, 256), ...)()

Three formats, told apart by the zip archive's members, not by the file name:

- a state_dict saved with ``torch.save`` (bare, or under ``"state_dict"`` or ``"model"`` in a
  dict): weights only, so the architecture comes from a recipe or a factory function;
- a TorchScript archive (``torch.jit.save``): read by TorchScript's own loader, which builds
  TorchScript types only;
- a ``torch.export`` program (``torch.export.save``, ``.pt2``): its graph is JSON; the
  archive is refused if any member is a pickle that ``weights_only`` loading would not take,
  since ``torch.export.load`` unpickles such members without that restriction.

Pickles go through ``torch.load(..., weights_only=True)`` only. A file that pickles Python
objects (``torch.save(model, path)``) is refused: unpickling it would run code the file
names.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import pickle
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radedge.errors import MissingDependencyError

from .loaders import ExportError, eval_mode

FORMATS = ("state_dict", "torchscript", "exported_program")

_SAVE_WEIGHTS_ONLY = (
    "Save the weights instead: torch.save(model.state_dict(), path), and give the architecture with "
    "--recipe NAME or --factory module:function; or save the whole model as TorchScript "
    "(torch.jit.save(torch.jit.script(model), path)) or as a torch.export program "
    "(torch.export.save(torch.export.export(model, (x,)), path))."
)


class CheckpointError(ExportError):
    """A checkpoint cannot be loaded safely, or does not fit the architecture it is given."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``module`` (a ``torch.nn.Module`` in eval mode), ``format`` (one
    of ``FORMATS``), ``sha256`` of the file's bytes (for the bundle's provenance),
    ``source`` (the path it came from) and ``metadata`` (the other entries of a dict that
    held a state_dict, such as ``model_id`` and ``training``)."""

    module: Any
    format: str
    sha256: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "Loading a PyTorch checkpoint") from None
    return torch


def load_checkpoint(path: str | Path, *, recipe: Any = None, factory: Callable[[], Any] | str | None = None) -> Checkpoint:
    """Load ``path`` as one of ``FORMATS``; see the module docstring.

    ``recipe``: a recipe object or a model id of ``radedge.export.recipes``; ``factory``: a
    function taking no arguments and returning a ``torch.nn.Module``, or its
    ``"package.module:function"``. One of them builds the architecture a state_dict's weights
    are loaded into, strictly; a TorchScript archive or an exported program carries its own,
    and both are then ignored. Raises ``CheckpointError`` saying what to do instead."""
    torch = _torch()
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}: check the path") from None
    except OSError as error:
        raise CheckpointError(f"cannot read the checkpoint {path}: {error}") from error
    digest = hashlib.sha256(raw).hexdigest()
    kind = _archive_kind(raw)
    if kind == "torchscript":
        try:
            module = torch.jit.load(io.BytesIO(raw), map_location="cpu")
        except Exception as error:
            raise CheckpointError(f"{path} looks like a TorchScript archive but does not load ({error}); "
                                  "it may be truncated: copy it again") from error
        return Checkpoint(eval_mode(module), "torchscript", digest, str(path))
    if kind == "exported_program":
        _refuse_pickles_in_program(torch, raw, path)
        try:
            program = torch.export.load(io.BytesIO(raw))
        except Exception as error:
            raise CheckpointError(f"{path} looks like a torch.export program but does not load ({error}); it may be "
                                  "truncated or come from a newer torch: re-save it with torch.export.save") from error
        return Checkpoint(eval_mode(program.module()), "exported_program", digest, str(path))
    state, metadata = _state_dict(torch, raw, path)
    module = _build(recipe, factory, metadata)
    _load_strictly(module, state, path)
    return Checkpoint(eval_mode(module), "state_dict", digest, str(path), metadata)


def _archive_kind(raw: bytes) -> str:
    """"torchscript", "exported_program" or "pickle" (a torch.save file, or not a checkpoint
    at all: torch.load tells), from the zip's member names below its one root folder."""
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        return "pickle"
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        members = {name.split("/", 1)[1] for name in archive.namelist() if "/" in name}
    if "archive_format" in members:
        return "exported_program"
    if "constants.pkl" in members or any(name.startswith("code/") for name in members):
        return "torchscript"
    return "pickle"


def _refuse_pickles_in_program(torch: Any, raw: bytes, path: Path) -> None:
    """``torch.export.load`` unpickles weights and constants that its configs mark
    ``use_pickle``, custom and opaque objects, and retries ``.pt`` members (sample inputs,
    older layouts) with ``weights_only=False`` when the restricted load fails. Refuse every
    one of those before it can."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        for name in archive.namelist():
            inner = name.split("/", 1)[-1]
            if inner.startswith("data/aotinductor/"):
                raise CheckpointError(
                    f"{path} holds an AOTInductor-compiled library ({inner}), native code that loading would run; "
                    "save the program without it: torch.export.save(program, path)"
                )
            if inner.endswith("_config.json") and inner.startswith(("data/weights/", "data/constants/")):
                config = json.loads(archive.read(name)).get("config", {})
                for fqn, entry in config.items():
                    pickled = entry.get("use_pickle") or not str(entry.get("path_name", "")).startswith(("weight_", "tensor_"))
                    if pickled:
                        raise CheckpointError(
                            f"{path} stores {fqn!r} as a pickled Python object, and loading it would run code from "
                            f"the file. {_SAVE_WEIGHTS_ONLY}"
                        )
            elif inner.endswith(".pt"):
                try:
                    torch.load(io.BytesIO(archive.read(name)), weights_only=True)
                except Exception as error:
                    raise CheckpointError(
                        f"{path} holds {inner}, which does not load with weights_only=True ({_reason(error)}); "
                        f"torch.export.load would then unpickle it without restriction, running code from the file. "
                        f"{_SAVE_WEIGHTS_ONLY}"
                    ) from error


def _reason(error: BaseException) -> str:
    """The line of torch's message that says what went wrong: its weights_only messages
    open with advice to load without the restriction, which is what this module refuses."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Check the documentation")]
    return lines[-1] if lines else type(error).__name__


def _state_dict(torch: Any, raw: bytes, path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the state_dict with any DataParallel "module." prefix removed, the other entries)."""
    try:
        loaded = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "GLOBAL" in str(error):
            raise CheckpointError(
                f"{path} pickles Python objects, not only tensors ({_unsupported_global(error)}), and loading it would "
                f"run code from the file. {_SAVE_WEIGHTS_ONLY}"
            ) from error
        raise _not_a_checkpoint(path, raw, error) from error
    except Exception as error:
        raise _not_a_checkpoint(path, raw, error) from error
    if not isinstance(loaded, Mapping):
        raise CheckpointError(f"{path} holds a {type(loaded).__name__}, not a state_dict. {_SAVE_WEIGHTS_ONLY}")
    metadata: dict[str, Any] = {}
    state = loaded
    for key in ("state_dict", "model"):
        if isinstance(loaded.get(key), Mapping):
            state = loaded[key]
            metadata = {name: value for name, value in loaded.items() if name != key}
            break
    if not state or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise CheckpointError(
            f"{path} holds a dict with keys {sorted(map(str, loaded))[:8]} but no state_dict: expected tensors by "
            "parameter name, bare or under 'state_dict' or 'model'"
        )
    if all(str(key).startswith("module.") for key in state):
        state = {str(key)[len("module."):]: value for key, value in state.items()}
    return dict(state), metadata


def _unsupported_global(error: BaseException) -> str:
    """What the pickle names, without torch's advice to allowlist it."""
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    return f"it references {found.group(1)}" if found else _reason(error)


def _not_a_checkpoint(path: Path, raw: bytes, error: BaseException) -> CheckpointError:
    return CheckpointError(
        f"{path} ({len(raw)} bytes) is not a PyTorch checkpoint, or it is truncated ({type(error).__name__}: "
        f"{_reason(error)}). Copy it again, or give a file written by torch.save, torch.jit.save or "
        "torch.export.save."
    )


def _build(recipe: Any, factory: Callable[[], Any] | str | None, metadata: Mapping[str, Any]) -> Any:
    torch = _torch()
    if recipe is not None and factory is not None:
        raise CheckpointError("give either --recipe or --factory, not both: each builds the architecture")
    if recipe is None and factory is None:
        named = f" (this one names model_id {metadata['model_id']!r})" if isinstance(metadata.get("model_id"), str) else ""
        raise CheckpointError(
            f"a state_dict holds only weights: give --recipe NAME or --factory module:function{named}"
        )
    if recipe is not None:
        if isinstance(recipe, str):
            from .recipes import recipe as find_recipe

            try:
                recipe = find_recipe(recipe)
            except ValueError as error:
                raise CheckpointError(str(error)) from None
        build, what = recipe.build_model, f"recipe {getattr(recipe, 'model_id', recipe)!r}"
    else:
        build, what = _factory(factory), f"factory {factory!r}"
    try:
        module = build()
    except Exception as error:
        raise CheckpointError(f"{what} raised {type(error).__name__}: {error}") from error
    if not isinstance(module, torch.nn.Module):
        raise CheckpointError(f"{what} returned a {type(module).__name__}, not a torch.nn.Module")
    return module


def _factory(factory: Callable[[], Any] | str) -> Callable[[], Any]:
    if callable(factory):
        return factory
    module_name, _, function_name = str(factory).partition(":")
    if not module_name or not function_name or ":" in function_name:
        raise CheckpointError(
            f"--factory takes package.module:function (a function with no arguments returning the model), "
            f"e.g. mypackage.models:build_net; got {factory!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise CheckpointError(
            f"cannot import {module_name!r} for --factory {factory!r} ({error}): install the package that defines "
            "the model, or run from the folder that holds it"
        ) from error
    function = getattr(module, function_name, None)
    if not callable(function):
        available = sorted(name for name, value in vars(module).items() if callable(value) and not name.startswith("_"))
        raise CheckpointError(
            f"module {module_name!r} has no function {function_name!r} for --factory; it has {available[:12]}"
        )
    return function


def _load_strictly(module: Any, state: Mapping[str, Any], path: Path) -> None:
    expected = set(module.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not fit the architecture given: {len(missing)} missing key(s) {missing[:8]}, "
            f"{len(unexpected)} unexpected key(s) {unexpected[:8]}. Give the recipe or factory (and its options, "
            "such as a width) the checkpoint was trained with."
        )
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            f"{path} does not fit the architecture given: {error}. Give the recipe or factory (and its options, "
            "such as a width) the checkpoint was trained with."
        ) from error


__all__ = ["FORMATS", "Checkpoint", "CheckpointError", "load_checkpoint"]
