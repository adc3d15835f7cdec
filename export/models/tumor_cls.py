"""``tumor-cls``: a ResNet50 benign / malignant classifier of a bone lesion's region, with its
class activation map computed inside the graph.

After the multi-centre bone tumour study (2026) that fine-tunes ResNet50 from RadImageNet
or ImageNet weights on the tumour's bounding box and shows Grad-CAM maps. The topology is
torchvision's ``resnet50`` (a 7 x 7 stem, bottleneck blocks 3-4-6-3, expansion 4, the
stride on the 3 x 3 convolution) with the same parameter names, so a vendor's full-width
weights load by name (``load_backbone``). ``width`` scales every channel count: 1.0 is
ResNet50 itself (2048 features), the committed demonstration uses 1/8 to stay small.

The classifier is a 1 x 1 convolution of the last feature map, giving one map per class
(``malignancy_cam``, float32[N, 2, H/32, W/32]); the logits (``malignancy``, float32[N, 2])
are those maps' spatial averages. Global average pooling followed by a linear layer is the
same function, so this is the usual ResNet50 head, and the map the console draws is
exactly what the logits are the mean of (Zhou et al.'s CAM; Grad-CAM of the last block is
the same map times a positive constant, without the bias, clipped at zero).

Input ``image`` float32[N, 1, H, W]: the region around the lesion, letterboxed and
normalised (one grey channel; see ``load_backbone`` for three-channel weights).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

LABELS = ("benign", "malignant")
LAYERS = (3, 4, 6, 3)  # ResNet50's bottleneck blocks per stage
EXPANSION = 4
BASE_PLANES = (64, 128, 256, 512)
STEM_WIDTH = 64


def _channels(count: int, width: float) -> int:
    return max(4, int(round(count * width)))


class Bottleneck(nn.Module):
    """torchvision's ResNet50 block (v1.5: the stride on ``conv2``), its parameter names included."""

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class TumorClsNet(nn.Module):
    """ResNet50 (``width`` 1.0) or a uniformly narrowed copy, with a CAM classifier.

    ``forward(image float32[N, 1, H, W]) -> (malignancy float32[N, K], malignancy_cam float32[N, K, H/32, W/32])``
    with ``malignancy == malignancy_cam.mean((2, 3))``.
    """

    def __init__(self, width: float = 1.0, num_classes: int = len(LABELS), in_channels: int = 1):
        super().__init__()
        self.width = float(width)
        stem = _channels(STEM_WIDTH, width)
        self.conv1 = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = stem
        stages = []
        for index, (blocks, base) in enumerate(zip(LAYERS, BASE_PLANES)):
            planes = _channels(base, width)
            stride = 1 if index == 0 else 2
            downsample = None
            if stride != 1 or inplanes != planes * EXPANSION:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes * EXPANSION, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes * EXPANSION),
                )
            stage = [Bottleneck(inplanes, planes, stride, downsample)]
            inplanes = planes * EXPANSION
            stage += [Bottleneck(inplanes, planes, 1, None) for _ in range(1, blocks)]
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.features = inplanes
        self.classifier = nn.Conv2d(inplanes, num_classes, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for module in self.modules():
            # Each residual branch starts as the identity (Goyal et al.), which trains a deep
            # net from scratch on a few hundred crops far more steadily.
            if isinstance(module, Bottleneck):
                nn.init.zeros_(module.bn3.weight)

    def backbone(self, image: torch.Tensor) -> torch.Tensor:
        """The last feature map, float32[N, features, H/32, W/32]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(image))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cam = self.classifier(self.backbone(image))
        return cam.mean(dim=(2, 3)), cam


def backbone_keys(model: TumorClsNet) -> list[str]:
    """The state_dict keys a torchvision-style ResNet50 file provides for ``model``: everything
    but the classifier."""
    return [key for key in model.state_dict() if not key.startswith("classifier.")]


def load_backbone(model: TumorClsNet, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Copy a torchvision-style ResNet50 state_dict (``conv1.weight``, ``layer1.0.conv1.weight``,
    ..., as torchvision, timm and the RadImageNet release name them) into ``model``'s
    backbone; its own classifier (``fc.*``) is not used. Returns the keys loaded.

    A three-channel ``conv1.weight`` is summed over its input channels: the same as feeding
    the grey image in all three channels. Raises ValueError naming what does not fit: a
    missing key, or a shape that differs (a narrowed model, another ResNet depth).
    """
    state = {key.removeprefix("module."): value for key, value in state.items()}
    own = model.state_dict()
    expected = backbone_keys(model)
    missing = [key for key in expected if key not in state and not key.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(
            f"the backbone weights lack {len(missing)} of ResNet50's {len(expected)} entries, e.g. "
            f"{', '.join(missing[:3])}; give a torchvision-style ResNet50 state_dict (conv1.weight, "
            "layer1.0.conv1.weight, ...)"
        )
    loaded: dict[str, torch.Tensor] = {}
    mismatched = []
    for key in expected:
        if key not in state:
            continue
        value = torch.as_tensor(state[key])
        if key == "conv1.weight" and value.ndim == 4 and value.shape[1] != own[key].shape[1] and own[key].shape[1] == 1:
            value = value.sum(dim=1, keepdim=True)
        if tuple(value.shape) != tuple(own[key].shape):
            mismatched.append(f"{key} {tuple(value.shape)} (the model has {tuple(own[key].shape)})")
            continue
        loaded[key] = value.to(own[key].dtype)
    if mismatched:
        hint = (
            f" This model has width {model.width:g}; vendor weights need the full-width ResNet50 (width 1)."
            if model.width != 1.0
            else " Is it a ResNet50 (bottlenecks 3-4-6-3, 2048 features)?"
        )
        raise ValueError(
            f"{len(mismatched)} backbone weights have the wrong shape, e.g. {'; '.join(mismatched[:3])}.{hint}"
        )
    model.load_state_dict(loaded, strict=False)
    return sorted(loaded)
