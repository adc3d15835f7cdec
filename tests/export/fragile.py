"""A deliberately fragile model for the accuracy gate's refusal: its two logits are 4096 f and
4097 f, f the mean of the input, so the decision rests on a weight difference of 1 part in
4096. FP16 has 11 bits of mantissa: 4097 rounds to 4096, both logits become equal, and every
probability collapses to 0.5."""

from __future__ import annotations


def build():
    import torch

    class Fragile(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Conv2d(1, 1, 3, padding=1)
            self.head = torch.nn.Linear(1, 2)
            with torch.no_grad():
                self.features.weight.zero_()
                self.features.weight[0, 0, 1, 1] = 1.0
                self.features.bias.zero_()
                self.head.weight.copy_(torch.tensor([[4096.0], [4097.0]]))
                self.head.bias.zero_()

        def forward(self, image):
            mean = torch.relu(self.features(image)).mean(dim=(1, 2, 3))
            return self.head(mean[:, None])

    return Fragile().eval()
