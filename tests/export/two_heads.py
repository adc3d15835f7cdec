"""A tiny two-head network for the export-step tests: a pooled classifier and a
segmentation map upsampled with interpolate (an ONNX Resize feeding a graph output, the case
FP16 converters leave float16). Imports torch: import it only from tests marked needs_torch."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

INPUT_SHAPE = (1, 1, 32, 32)
OUTPUT_NAMES = ("mask_logits", "class_logits")


class TwoHeadNet(nn.Module):
    """image float32[N, 1, 32, 32] -> (mask_logits float32[N, 2, 32, 32], class_logits float32[N, 3])."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.mask_head = nn.Conv2d(16, 2, 1)
        self.class_head = nn.Linear(16, 3)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.down(self.stem(image))
        mask_logits = F.interpolate(self.mask_head(features), scale_factor=2.0, mode="bilinear", align_corners=False)
        class_logits = self.class_head(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))
        return mask_logits, class_logits


def build_two_head_net() -> TwoHeadNet:
    """Seeded, so a state_dict saved in one test loads into the same numbers in another."""
    torch.manual_seed(0)
    return TwoHeadNet().eval()
