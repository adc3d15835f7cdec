"""What every reference model's recipe provides, and the training loop they share.

A recipe (one module per model id in ``radedge.export.recipes``) holds:

- the architecture factory (``build_model``) and its output tensor names;
- the phantom sampler (``sample``): one training example per seed, with every image taken
  through the product's own path (DICOM data set -> ``radedge.io.read_image`` -> lookup
  table -> native preprocess op), see ``model_input``;
- the loss (``loss``), optional augmentation (``augment``), the training settings
  (``plan``) and, where a model trains in stages, its own ``fit``;
- the metrics on the validation phantoms (``validation_metrics``) and the choice of each
  flag's operating point there (``operating_points``);
- the manifest, built with ``radedge.spec`` classes (``manifest``);
- the held-out evaluation through the SDK, end to end (``evaluate``).

``radedge.export.train`` and ``radedge.export.evaluate`` run any of them.
"""

from __future__ import annotations

import hashlib
import io
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from radedge import __version__
from radedge.bundle import bundled_models_path
from radedge.intensity import build_lut
from radedge.io import read_image
from radedge.ops.preprocess import preprocess
from radedge.spec import Manifest, ModelLicense, PreprocessSpec

from .. import phantoms

# Seeds: training from 0 up, validation (operating points) from VALIDATION_SEED up, the
# held-out evaluation from HELD_OUT_SEED up, so no phantom is ever in two sets.
#: The terms every reference model is distributed under, written into its manifest.
REFERENCE_LICENSE = ModelLicense(
    "Apache-2.0",
    "A demonstration model of the radedge SDK, trained on synthetic phantoms only; not for clinical use.",
)
VALIDATION_SEED = 500_000
HELD_OUT_SEED = 1_000_000
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
_IDENTITY_01 = np.array([0.0, 1.0], dtype=np.float32)


@dataclass(frozen=True)
class TrainingPlan:
    """How many phantoms, epochs, the batch size and peak learning rate of the committed model."""

    train: int
    val: int
    epochs: int
    batch: int
    lr: float
    weight_decay: float = 1e-4


class Recipe(ABC):
    """One reference model, from phantoms to a bundle. Subclasses set the class attributes
    and implement the abstract methods; a recipe missing one cannot be instantiated."""

    model_id: ClassVar[str]
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str]
    data: ClassVar[str]  # what it is trained on, for the provenance
    output_names: ClassVar[tuple[str, ...]]
    spec: ClassVar[PreprocessSpec]
    plan: ClassVar[TrainingPlan]
    input_name: ClassVar[str] = "image"
    license: ClassVar[ModelLicense] = REFERENCE_LICENSE
    #: Recipe-specific training options (``--set KEY=VALUE``): name -> what it does.
    options: ClassVar[dict[str, str]] = {}

    # -- architecture and data --------------------------------------------------------
    def with_options(self, options: Mapping[str, str]) -> Recipe:
        """The recipe as ``options`` (``--set KEY=VALUE``) configure it, for options that
        change the architecture ``build_model`` makes (a width); the default: itself."""
        return self

    @abstractmethod
    def build_model(self) -> Any:
        """A fresh ``torch.nn.Module`` whose forward returns the outputs in ``output_names`` order."""

    @abstractmethod
    def sample(self, seed: int) -> dict[str, np.ndarray]:
        """One training example: ``"image"`` float32[C, H, W] (through ``model_input``) and the targets."""

    def augment(self, torch: Any, batch: dict[str, Any], generator: Any) -> dict[str, Any]:
        """Random changes to a training batch (tensors keyed like ``sample``); none by default."""
        return batch

    @abstractmethod
    def loss(self, torch: Any, outputs: dict[str, Any], batch: dict[str, Any], progress: float) -> Any:
        """The scalar training loss; ``progress`` runs from 0 to 1 over training (self-paced
        schedules, curricula)."""

    # -- choosing and measuring --------------------------------------------------------
    @abstractmethod
    def validation_metrics(self, outputs: dict[str, np.ndarray], data: dict[str, np.ndarray]) -> dict[str, Any]:
        """Figures on the validation set from the network's raw outputs (printed every epoch)."""

    def class_labels(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The true class of each classification head on a data set: head name -> bool[N, L],
        one column per head label. The accuracy gate measures AUC drops with them; a recipe
        without classification heads has none."""
        return {}

    @abstractmethod
    def operating_points(self, outputs: dict[str, np.ndarray], data: dict[str, np.ndarray]) -> dict[str, dict]:
        """Each flag's operating point, chosen on the validation set: flag code -> a dict
        with at least ``threshold``."""

    @abstractmethod
    def manifest(self, operating_points: dict[str, dict], provenance: dict[str, Any]) -> Manifest:
        """The bundle's manifest, built with ``radedge.spec`` classes."""

    @abstractmethod
    def evaluate(self, bundle: str | None, count: int, seed: int, threads: int = 0) -> dict[str, Any]:
        """Figures on ``count`` held-out phantoms from ``seed``, each written as DICOM and run
        through the SDK (``bundle`` None: the bundled model)."""

    # -- training ---------------------------------------------------------------------
    def fit(self, torch: Any, model: Any, train: dict[str, np.ndarray], val: dict[str, np.ndarray],
            settings: Settings) -> dict[str, Any]:
        """Train ``model`` in place; returns what the provenance should record about it."""
        fit_loop(torch, model, train, val, settings, loss=self.loss, augment=self.augment,
                 report=lambda outputs: self.validation_metrics(outputs, val), output_names=self.output_names)
        return {}

    # -- defaults ---------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return CHECKPOINTS / f"{self.model_id}.pt"

    @property
    def bundle_path(self) -> Path:
        return bundled_models_path() / self.model_id


@dataclass(frozen=True)
class Settings:
    """One training run: the plan's figures, possibly overridden on the command line."""

    train: int
    val: int
    epochs: int
    batch: int
    lr: float
    weight_decay: float
    seed: int
    workers: int
    cache: Path | None
    options: Mapping[str, str] = field(default_factory=dict)  # recipe-specific, ``--set KEY=VALUE``


# -- the product's own input path -------------------------------------------------------


def model_input(dataset: Any, spec: PreprocessSpec, *, crop: Any = None, voi: Any = "file",
                voi_index: int = 0) -> tuple[np.ndarray, Any]:
    """A DICOM data set (or bytes, or a path) as the network sees it at the console:
    ``read_image`` -> ``build_lut`` -> the native preprocess op. Returns (float32[C, H, W],
    the geometry that maps the input back to the source image)."""
    image = read_image(dataset)
    lut = build_lut(image, voi=voi, voi_index=voi_index)
    tensor, geometry = preprocess(image.pixels, lut.table, lut.first_stored_value, spec, threads=1, crop=crop)
    return tensor[0], geometry


def mask_input(mask: np.ndarray, spec: PreprocessSpec, *, crop: Any = None) -> np.ndarray:
    """A 0/1 mask at the source geometry resampled exactly as the image is (same op, an
    identity table over {0, 1}, no normalisation): float32[H, W] fractions."""
    plain = PreprocessSpec(spec.height, spec.width, resize=spec.resize, pad_value=0.0)
    tensor, _ = preprocess(np.ascontiguousarray(mask, dtype=np.uint16), _IDENTITY_01, 0, plain, threads=1, crop=crop)
    return tensor[0, 0]


def dicom_bytes(phantom: phantoms.Phantom) -> bytes:
    """A phantom as the bytes of a DICOM file, as a console receives it."""
    import pydicom

    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, phantoms.to_dataset(phantom), enforce_file_format=True)
    return buffer.getvalue()


# -- data sets --------------------------------------------------------------------------


def build_dataset(recipe: Recipe, seeds: range, cache: Path | None, workers: int) -> dict[str, np.ndarray]:
    """``recipe.sample`` for every seed, stacked per key (and ``"seeds"``); cached as .npz
    keyed by the seeds, the recipe and the phantom generator's version."""
    key = hashlib.sha256(
        f"{recipe.model_id}:{recipe.version}:{seeds.start}:{seeds.stop}:{recipe.spec}:{__version__}:"
        f"{phantoms.GENERATOR_VERSION}".encode()
    ).hexdigest()[:16]
    path = cache / f"{recipe.model_id}_{seeds.start}_{seeds.stop}_{key}.npz" if cache else None
    if path is not None and path.exists():
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    started = time.perf_counter()
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            samples = list(pool.map(recipe.sample, seeds, chunksize=4))
    else:
        samples = [recipe.sample(seed) for seed in seeds]
    data = {name: np.stack([s[name] for s in samples]) for name in samples[0]}
    data["seeds"] = np.array(list(seeds), dtype=np.int64)
    print(f"  {len(seeds)} phantoms in {time.perf_counter() - started:.0f} s", flush=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **data)
    return data


def run_model(torch: Any, model: Any, data: Mapping[str, np.ndarray], output_names: tuple[str, ...],
              batch: int = 32) -> dict[str, np.ndarray]:
    """The model's raw outputs over ``data["image"]`` in eval mode, keyed by output name."""
    model.eval()
    collected: dict[str, list[np.ndarray]] = {name: [] for name in output_names}
    with torch.no_grad():
        for start in range(0, len(data["image"]), batch):
            outputs = model(torch.from_numpy(np.ascontiguousarray(data["image"][start : start + batch])))
            if not isinstance(outputs, (tuple, list)):
                outputs = (outputs,)
            for name, value in zip(output_names, outputs):
                collected[name].append(value.numpy())
    return {name: np.concatenate(values) for name, values in collected.items()}


def fit_loop(
    torch: Any,
    model: Any,
    train: dict[str, np.ndarray],
    val: dict[str, np.ndarray],
    settings: Settings,
    *,
    loss: Callable[..., Any],
    output_names: tuple[str, ...],
    augment: Callable[..., dict[str, Any]] | None = None,
    report: Callable[[dict[str, np.ndarray]], dict[str, Any]] | None = None,
    epochs: int | None = None,
    lr: float | None = None,
) -> None:
    """AdamW with a one-cycle learning rate over ``epochs`` (default ``settings.epochs``);
    batches drawn by a generator seeded from ``settings.seed``; ``report`` prints validation
    figures after every epoch."""
    epochs = settings.epochs if epochs is None else epochs
    lr = settings.lr if lr is None else lr
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=settings.weight_decay)
    count = len(train["image"])
    steps_per_epoch = max(1, count // settings.batch)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15
    )
    generator = torch.Generator().manual_seed(settings.seed)
    tensors = {name: torch.from_numpy(values) for name, values in train.items() if name != "seeds"}
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(count, generator=generator)
        seen, loss_sum = 0, 0.0
        for step in range(steps_per_epoch):
            index = order[step * settings.batch : (step + 1) * settings.batch]
            batch = {name: values[index] for name, values in tensors.items()}
            if augment is not None:
                batch = augment(torch, batch, generator)
            outputs = model(batch["image"])
            if not isinstance(outputs, (tuple, list)):
                outputs = (outputs,)
            progress = (epoch * steps_per_epoch + step) / max(1, epochs * steps_per_epoch - 1)
            value = loss(torch, dict(zip(output_names, outputs)), batch, progress)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            scheduler.step()
            seen += len(index)
            loss_sum += float(value.detach()) * len(index)
        figures = report(run_model(torch, model, val, output_names)) if report else {}
        shown = "  ".join(f"{name} {value:.3f}" for name, value in figures.items() if isinstance(value, float))
        print(f"epoch {epoch + 1:2d}/{epochs}  loss {loss_sum / max(seen, 1):.3f}  {shown}  "
              f"({time.perf_counter() - started:.0f} s)", flush=True)


# -- operating points and metrics ----------------------------------------------------------


def choose_threshold(scores: np.ndarray, positive: np.ndarray, target_sensitivity: float,
                     chosen_on: str = "validation phantoms") -> dict[str, Any]:
    """The highest threshold whose sensitivity on ``positive`` cases is >= the target (a
    flag at acquisition should rarely miss), with the sensitivity and specificity there."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    ranked = np.sort(scores[positive])[::-1]
    if len(ranked) == 0:
        raise ValueError("no positive case in the validation set: cannot choose an operating point")
    needed = max(1, int(np.ceil(target_sensitivity * len(ranked))))
    # Rounded down so that the recorded threshold still flags every case it counted.
    threshold = float(np.floor(float(ranked[needed - 1]) * 1e4) / 1e4)
    flagged = scores >= threshold
    return {
        "threshold": threshold,
        "sensitivity": round(float(flagged[positive].mean()), 4),
        "specificity": round(float((~flagged[~positive]).mean()), 4) if (~positive).any() else None,
        "target_sensitivity": target_sensitivity,
        "chosen_on": chosen_on,
    }
