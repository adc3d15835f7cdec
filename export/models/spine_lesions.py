"""``spine-lesions``: abnormal / normal classifier and 7-class anchor-free detector, lateral lumbar spines.

After VinDr-SpineXR (Nguyen, Pham et al., MICCAI 2021): an image-level classifier beside a
lesion detector. Here one small encoder feeds both: a feature pyramid merged at stride 8
carries an FCOS-style dense level for the large findings (class logits and left / top /
right / bottom distances in strides), and a finer level at stride 4 - the stride-8 features
upsampled onto the encoder's stride-4 stage, one narrower convolution - for the small ones
(a spur or a focus is 5 to 15 input pixels: one or two stride-8 cells). The classifier reads
the pooled deepest features together with each class's strongest detection logit over both
levels. Sized to train on a 2-core CPU in minutes; vendors bring their own.

Input ``image`` float32[N, 1, 256, 256] (letterboxed, normalised). Outputs
``abnormal_logits`` float32[N, 2] (normal, abnormal), ``box_logits_4`` float32[N, 7, 64, 64],
``box_distances_4`` float32[N, 4, 64, 64], ``box_logits_8`` float32[N, 7, 32, 32] and
``box_distances_8`` float32[N, 4, 32, 32] (distances > 0, in strides of that level).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..phantoms.spine_lesions import FINDINGS

CLASSES = ("normal", "abnormal")
INPUT_SIZE = 256
STRIDES = (4, 8)  # the detection levels, finest first (the order of the outputs)
WIDTHS = (16, 24, 32, 48, 64)  # strides 2, 4, 8, 16, 32
NECK = 48
FINE = 32  # channels of the stride-4 level: 4x the cells of stride 8, so narrower
# Focal-loss prior: the detection logits start where a cell holds a finding 1 % of the time.
PRIOR = 0.01


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class SpineLesionNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = WIDTHS, findings: int = len(FINDINGS)):
        super().__init__()
        # One convolution at half resolution: the costliest level to train on a CPU, and the
        # detector reads stride 4 and coarser.
        stages = [_conv(1, widths[0], 2)]
        for cin, cout in zip(widths, widths[1:]):
            stages.append(nn.Sequential(_conv(cin, cout, 2), _conv(cout, cout)))
        self.stages = nn.ModuleList(stages)
        self.lateral = nn.ModuleList([nn.Conv2d(width, NECK, 1) for width in widths[2:]])
        self.tower = nn.Sequential(_conv(NECK, NECK), _conv(NECK, NECK))
        self.fine_lateral = nn.Conv2d(widths[1], NECK, 1)
        self.fine_tower = _conv(NECK, FINE)
        # One pair of heads per level of STRIDES: stride 4 on FINE channels, stride 8 on NECK.
        self.box_logits = nn.ModuleList([nn.Conv2d(width, findings, 3, padding=1) for width in (FINE, NECK)])
        self.box_distances = nn.ModuleList([nn.Conv2d(width, 4, 3, padding=1) for width in (FINE, NECK)])
        for logits, distances in zip(self.box_logits, self.box_distances):
            nn.init.normal_(logits.weight, std=0.01)
            nn.init.constant_(logits.bias, float(torch.log(torch.tensor(PRIOR / (1 - PRIOR)))))
            nn.init.normal_(distances.weight, std=0.01)
            nn.init.constant_(distances.bias, 0.5)
        self.classifier = nn.Sequential(
            nn.Linear(widths[-1] + findings, 32), nn.ReLU(inplace=True), nn.Dropout(0.2), nn.Linear(32, len(CLASSES))
        )

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = []
        x = image
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        pyramid = features[2:]
        merged = self.lateral[0](pyramid[0])
        for lateral, level in zip(self.lateral[1:], pyramid[1:]):
            merged = merged + F.interpolate(lateral(level), size=merged.shape[-2:], mode="nearest")
        coarse = self.tower(merged)
        fine = self.fine_tower(F.interpolate(coarse, scale_factor=2.0, mode="nearest") + self.fine_lateral(features[1]))
        levels = []
        for shared, logits_conv, distances_conv in zip((fine, coarse), self.box_logits, self.box_distances):
            # exp keeps distances positive; the clamp keeps an untrained head's boxes finite.
            levels += [logits_conv(shared), torch.exp(distances_conv(shared).clamp(-4.0, 4.0))]
        strongest = torch.maximum(levels[0].amax(dim=(2, 3)), levels[2].amax(dim=(2, 3)))
        abnormal_logits = self.classifier(torch.cat([features[-1].mean(dim=(2, 3)), strongest], dim=1))
        return (abnormal_logits, *levels)
