"""``bone-quality``: blastic? lytic? and normal / blastic / lytic / mixed on axial CT slices.

After the learning-based bone quality classification for spinal metastasis (arXiv 2024):
bone quality is split into two binary sub-tasks, blastic and lytic, and a small
multi-layer perceptron combines their two logits into the four classes (mixed = both),
inside the network, so the exported graph carries all three heads. Sized to train on a
2-core CPU in minutes on phantoms; vendors bring their own trunk and widths.

Input ``image`` float32[N, 1, 128, 128] (a bone-windowed slice, letterboxed, normalised).
Outputs ``blastic_logits`` float32[N, 1], ``lytic_logits`` float32[N, 1] and
``quality_logits`` float32[N, 4] (``QUALITY_LABELS`` order).
"""

from __future__ import annotations

import torch
from torch import nn

from ._layers import double_conv

QUALITY_LABELS = ("normal", "blastic", "lytic", "mixed")
INPUT_SIZE = 128
WIDTHS = (16, 24, 48, 64, 96)


def _binary_head(features: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(features, 32), nn.ReLU(inplace=True), nn.Dropout(0.1), nn.Linear(32, 1))


class BoneQualityNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        self.stages = nn.ModuleList([double_conv(widths[i - 1], widths[i]) for i in range(1, len(widths))])
        # Average and maximum over the deepest level, and the maximum over the level above
        # (16 x 16): a lesion covers a fraction of a percent of the slice, too little to move
        # an average, and a few pixels of the finer level.
        pooled = 2 * widths[-1] + widths[-2]
        self.blastic_head = _binary_head(pooled)
        self.lytic_head = _binary_head(pooled)
        # The paper's combination: the four classes from the two sub-task logits only.
        self.quality_mlp = nn.Sequential(nn.Linear(2, 16), nn.ReLU(inplace=True), nn.Linear(16, len(QUALITY_LABELS)))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.stem(image)
        finer = x
        for index, stage in enumerate(self.stages):
            if index > 0:
                finer = x
                x = nn.functional.max_pool2d(x, 2)
            x = stage(x)
        features = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3)), finer.amax(dim=(2, 3))], dim=1)
        blastic_logits = self.blastic_head(features)
        lytic_logits = self.lytic_head(features)
        quality_logits = self.quality_mlp(torch.cat([blastic_logits, lytic_logits], dim=1))
        return blastic_logits, lytic_logits, quality_logits
