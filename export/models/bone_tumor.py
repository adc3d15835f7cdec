"""``bone-tumor``: a small multitask U-Net for bone lesions on radiographs.

After von Schacky et al. (Radiology 2021): one encoder shared by a lesion segmentation
decoder and a no-tumour / benign / malignant classifier. Sized to train on a 2-core CPU
in minutes on phantoms; vendors bring their own weights and widths.

Input ``image`` float32[N, 1, 256, 256] (letterboxed, normalised). Outputs
``lesion_logits`` float32[N, 1, 128, 128] (half the input resolution; radedge upsamples
logits to the source image) and ``tumor_logits`` float32[N, 3].
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ._layers import double_conv, encode, strided_stem, unet_encoder

LABELS = ("no_tumour", "benign", "malignant")
INPUT_SIZE = 256
WIDTHS = (16, 24, 40, 64, 96)


class BoneTumorNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = WIDTHS, num_classes: int = len(LABELS)):
        super().__init__()
        # A strided stem: the mask is decoded at half the input resolution, which the
        # bilinear upsampling to the source image makes up for, at a quarter of the cost.
        self.stem = strided_stem(1, widths[0])
        self.encoders = unet_encoder(widths)
        self.decoders = nn.ModuleList(
            [double_conv(widths[i] + widths[i - 1], widths[i - 1]) for i in range(len(widths) - 1, 0, -1)]
        )
        self.mask_head = nn.Conv2d(widths[0], 1, 1)
        # Lesion size and extent (2), mask-weighted features of the decoder and of the
        # two middle encoder levels, and the deepest level pooled over the whole image.
        pooled = 2 + widths[0] + widths[2] + widths[3] + widths[-1]
        self.class_head = nn.Sequential(
            nn.Linear(pooled, 64),
            nn.ReLU(inplace=True),
            nn.Dropout(0.2),
            nn.Linear(64, num_classes),
        )

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skips = encode(self.stem, self.encoders, image)
        x = skips[-1]
        for decoder, skip in zip(self.decoders, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = decoder(torch.cat([x, skip], dim=1))
        lesion_logits = self.mask_head(x)
        tumor_logits = self.class_head(self._lesion_features(lesion_logits, x, skips))
        return lesion_logits, tumor_logits

    @staticmethod
    def _lesion_features(lesion_logits: torch.Tensor, decoded: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """Classify what the mask points at: a benign lesion may cover 0.1 % of the image,
        too little to move a global average, so features are pooled under the predicted
        mask. The mask and the decoder features are read, not trained, by the classifier
        (detached): the classification loss shapes only the shared encoder."""
        attention = torch.sigmoid(lesion_logits).detach()
        decoded = decoded.detach()
        features = [
            torch.log1p(attention.sum(dim=(2, 3))),
            attention.amax(dim=(2, 3)),
        ]
        for level in (decoded, skips[2], skips[3]):
            weights = F.adaptive_avg_pool2d(attention, level.shape[-2:])
            features.append((level * weights).sum(dim=(2, 3)) / (weights.sum(dim=(2, 3)) + 1e-3))
        features.append(skips[-1].mean(dim=(2, 3)))
        return torch.cat(features, dim=1)
