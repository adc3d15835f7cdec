"""``spine-lesions``: abnormal / normal classifier and 7-class anchor-free detector, lateral lumbar spines.

After VinDr-SpineXR (Nguyen, Pham et al., MICCAI 2021): an image-level classifier beside a
lesion detector. Here one small encoder feeds both: a feature pyramid merged at stride 8
carries one FCOS-style dense level (class logits and left / top / right / bottom distances in
strides), and the classifier reads the pooled deepest features together with each class's
strongest detection logit. Sized to train on a 2-core CPU in minutes; vendors bring their own.

Input ``image`` float32[N, 1, 256, 256] (letterboxed, normalised). Outputs
``abnormal_logits`` float32[N, 2] (normal, abnormal), ``box_logits`` float32[N, 7, 32, 32]
and ``box_distances`` float32[N, 4, 32, 32] (> 0, in strides of 8 input pixels).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

FINDINGS = (
    "osteophytes",
    "disc space narrowing",
    "surgical implant",
    "foraminal stenosis",
    "spondylolisthesis",
    "vertebral collapse",
    "other lesions",
)
CLASSES = ("normal", "abnormal")
INPUT_SIZE = 256
STRIDE = 8
WIDTHS = (16, 24, 32, 48, 64)  # strides 2, 4, 8, 16, 32
NECK = 48
# Focal-loss prior: the detection logits start where a cell holds a finding 1 % of the time.
PRIOR = 0.01


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class SpineLesionNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = WIDTHS, findings: int = len(FINDINGS)):
        super().__init__()
        # One convolution at half resolution: the costliest level to train on a CPU, and the
        # detector reads stride 8 and coarser.
        stages = [_conv(1, widths[0], 2)]
        for cin, cout in zip(widths, widths[1:]):
            stages.append(nn.Sequential(_conv(cin, cout, 2), _conv(cout, cout)))
        self.stages = nn.ModuleList(stages)
        self.lateral = nn.ModuleList([nn.Conv2d(width, NECK, 1) for width in widths[2:]])
        self.tower = nn.Sequential(_conv(NECK, NECK), _conv(NECK, NECK))
        self.box_logits = nn.Conv2d(NECK, findings, 3, padding=1)
        self.box_distances = nn.Conv2d(NECK, 4, 3, padding=1)
        nn.init.normal_(self.box_logits.weight, std=0.01)
        nn.init.constant_(self.box_logits.bias, float(torch.log(torch.tensor(PRIOR / (1 - PRIOR)))))
        nn.init.normal_(self.box_distances.weight, std=0.01)
        nn.init.constant_(self.box_distances.bias, 0.5)
        self.classifier = nn.Sequential(
            nn.Linear(widths[-1] + findings, 32), nn.ReLU(inplace=True), nn.Dropout(0.2), nn.Linear(32, len(CLASSES))
        )

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = []
        x = image
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        pyramid = features[2:]
        merged = self.lateral[0](pyramid[0])
        for lateral, level in zip(self.lateral[1:], pyramid[1:]):
            merged = merged + F.interpolate(lateral(level), size=merged.shape[-2:], mode="nearest")
        shared = self.tower(merged)
        box_logits = self.box_logits(shared)
        # exp keeps distances positive; the clamp keeps an untrained head's boxes finite.
        box_distances = torch.exp(self.box_distances(shared).clamp(-4.0, 4.0))
        strongest = box_logits.amax(dim=(2, 3))
        abnormal_logits = self.classifier(torch.cat([features[-1].mean(dim=(2, 3)), strongest], dim=1))
        return abnormal_logits, box_logits, box_distances
