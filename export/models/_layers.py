"""Layers the reference architectures share."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """Two 3 x 3 convolutions, each followed by batch norm and ReLU: a U-Net level."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def strided_stem(cin: int, cout: int) -> nn.Sequential:
    """A 4 x 4 convolution at stride 2 with batch norm and ReLU: the input at half resolution."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def unet_encoder(widths: tuple[int, ...]) -> nn.ModuleList:
    """The encoder levels of a U-Net after a stem of ``widths[0]`` channels, one per width."""
    return nn.ModuleList([double_conv(widths[0], widths[0])] + [
        double_conv(widths[i - 1], widths[i]) for i in range(1, len(widths))
    ])


def encode(stem: nn.Module, encoders: nn.ModuleList, image: torch.Tensor) -> list[torch.Tensor]:
    """The stem, then each encoder level after a 2 x 2 max pool (none before the first):
    every level's features, finest first (the skips of the decoders)."""
    x = stem(image)
    skips = []
    for index, encoder in enumerate(encoders):
        if index > 0:
            x = F.max_pool2d(x, 2)
        x = encoder(x)
        skips.append(x)
    return skips
