"""A compact VGG-style CNN for small images (MNIST-like greyscale, CIFAR-size colour) on a CPU budget."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ml.backbones.base import Backbone


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    # bias=False: BatchNorm's shift makes a conv bias redundant.
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class CompactCNN(Backbone):
    """Four conv stages, each halving the resolution before it (28 -> 28, 14, 7, 4 px).

    The default widths (32, 64, 128, 256) give about 0.4M parameters and ~20M multiply-adds per 28 px
    image, which is what a 2-core CPU can pretrain usefully in a few minutes. The first stage has two
    convs because stroke-level detail is where greyscale images carry their information.

    Args:
        in_channels: 1 or 3.
        image_size: nominal input side (any side >= 8 works; pooling uses ceil mode).
        widths: channels of the four stages.
        first_convs: convs in stage 0 (later stages have one each).
    """

    name = "cnn"

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        widths: Sequence[int] = (32, 64, 128, 256),
        first_convs: int = 2,
    ) -> None:
        super().__init__(in_channels, image_size)
        cin = in_channels
        for i, w in enumerate(widths):
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            for _ in range(first_convs if i == 0 else 1):
                layers += _conv_bn_relu(cin, w)
                cin = w
            self.blocks.append(nn.Sequential(*layers))
            self.block_dims.append(w)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
