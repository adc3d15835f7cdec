"""What a model expects as its input tensor (the manifest's ``input`` and ``preprocessing``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

ResizeMode = Literal["stretch", "letterbox"]
OutputDtype = Literal["float32", "float16"]


@dataclass(frozen=True)
class PreprocessSpec:
    """What a model expects as input (the manifest's ``preprocessing``).

    ``height`` x ``width``: model input size in pixels. ``resize``: ``"stretch"`` fills the
    input, ``"letterbox"`` keeps the aspect ratio and centres the image, filling the rest
    with ``pad_value`` (a display-domain value in the LUT's [0, 1] range, normalised like
    the image). ``mean`` / ``std``: one value for every channel or one per channel;
    ``out = (value - mean[c]) / std[c]``. ``channels``: 1, or 3 (the grey image
    replicated). ``dtype``: of the input tensor.
    """

    height: int
    width: int
    resize: ResizeMode = "letterbox"
    pad_value: float = 0.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    channels: int = 1
    dtype: OutputDtype = "float32"

    def __post_init__(self) -> None:
        # Manifests arrive as JSON: accept lists and ints, store tuples of floats.
        object.__setattr__(self, "mean", tuple(float(v) for v in np.atleast_1d(self.mean)))
        object.__setattr__(self, "std", tuple(float(v) for v in np.atleast_1d(self.std)))
        object.__setattr__(self, "pad_value", float(self.pad_value))
        for name in ("height", "width", "channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"PreprocessSpec.{name} must be a positive integer; got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.resize not in ("stretch", "letterbox"):
            raise ValueError(f"PreprocessSpec.resize must be 'stretch' or 'letterbox'; got {self.resize!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"PreprocessSpec.channels must be 1 or 3 (grey replicated); got {self.channels}")
        if self.dtype not in ("float32", "float16"):
            raise ValueError(f"PreprocessSpec.dtype must be 'float32' or 'float16'; got {self.dtype!r}")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) not in (1, self.channels):
                raise ValueError(
                    f"PreprocessSpec.{name} needs 1 value (every channel) or {self.channels} (one per channel); "
                    f"got {len(values)}: {values}"
                )
            if not all(np.isfinite(values)):
                raise ValueError(f"PreprocessSpec.{name} must be finite; got {values}")
        if not all(v > 0 for v in self.std):
            raise ValueError(f"PreprocessSpec.std must be > 0 for every channel; got {self.std}")
        if not np.isfinite(self.pad_value):
            raise ValueError(f"PreprocessSpec.pad_value must be finite; got {self.pad_value}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image in the input tensor."""
        return (self.channels, self.height, self.width)
