"""``vcf``: a small multitask U-Net for vertebral compression fractures on lateral lumbar radiographs.

After the paper's design: one encoder shared by two decoders, a fracture decoder (one
heatmap per Genant grade 1 / 2 / 3, trained on the 4-point trapezoid of each fractured
vertebral body) and a vertebral-level decoder (one heatmap per level L1-L5, peaking at the
body's centre). Sized to train on a 2-core CPU in minutes on phantoms; vendors bring their
own weights and widths.

Input ``image`` float32[N, 1, 256, 256] (letterboxed, normalised). Outputs
``fracture`` float32[N, 3, 64, 64] and ``levels`` float32[N, 5, 64, 64], logits at a
quarter of the input resolution (a lumbar body is about 5 cells high there; the heatmap
decode refines peaks to sub-cell positions in source pixels).

The fracture decoder predicts, per cell, whether it lies on a fractured body and, apart
from that, which grade the fracture has; ``fracture`` is the logit of their product,
p(fracture of grade g) = p(fracture) * p(grade g | fracture). The three channels then
sum to p(fracture), and one fracture lights the channel of its most likely grade instead
of all three.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ._layers import double_conv, encode, strided_stem, unet_encoder

LEVELS = ("L1", "L2", "L3", "L4", "L5")
GRADES = (1, 2, 3)
INPUT_SIZE = 256
OUTPUT_STRIDE = 4
WIDTHS = (16, 24, 40, 64, 96)


class _Decoder(nn.Module):
    """Upsampling path from the deepest encoder level to the stride-4 level, with skips."""

    def __init__(self, widths: tuple[int, ...], out_channels: int):
        super().__init__()
        # Encoder levels run at strides 2, 4, 8, 16, 32; decoding stops at stride 4.
        self.blocks = nn.ModuleList(
            [double_conv(widths[i] + widths[i - 1], widths[i - 1]) for i in range(len(widths) - 1, 1, -1)]
        )
        self.head = nn.Conv2d(widths[1], out_channels, 1)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        x = skips[-1]
        for block, skip in zip(self.blocks, reversed(skips[1:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


class VcfNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        self.stem = strided_stem(1, widths[0])
        self.encoders = unet_encoder(widths)
        self.fracture_decoder = _Decoder(widths, 1 + len(GRADES))
        self.level_decoder = _Decoder(widths, len(LEVELS))
        # Rare positives: start the fracture maps near "no fracture" (sigmoid 0.01) so the
        # first steps are not spent unlearning a 0.5 prior everywhere.
        nn.init.constant_(self.fracture_decoder.head.bias[:1], -4.6)
        nn.init.constant_(self.level_decoder.head.bias, -4.6)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skips = encode(self.stem, self.encoders, image)
        return fracture_logits(self.fracture_decoder(skips)), self.level_decoder(skips)


def fracture_logits(decoded: torch.Tensor) -> torch.Tensor:
    """float32[N, 1 + G, h, w] (fracture logit, then grade logits) -> float32[N, G, h, w],
    the logit of p(fracture) * p(grade g | fracture)."""
    log_probability = _log_sigmoid(decoded[:, :1]) + F.log_softmax(decoded[:, 1:], dim=1)
    # logit = log p - log(1 - p); the clamp keeps log(1 - p) finite where p rounds to 1.
    probability = torch.exp(log_probability).clamp(max=1.0 - 1e-6)
    return log_probability - torch.log(1.0 - probability)


def _log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(x)) = -softplus(-x), written out: ``F.logsigmoid`` exports to ONNX as
    Log(Sigmoid(x)), which is -inf wherever the sigmoid underflows (x below about -88)."""
    return -(F.relu(-x) + torch.log(1.0 + torch.exp(-x.abs())))
