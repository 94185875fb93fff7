"""torchvision ResNet-18 adapted to 32-96 px images (3x3 stem, no max-pool), trained from scratch."""

from __future__ import annotations

import torchvision
from torch import nn

from ml.backbones.base import Backbone


class SmallImageResNet18(Backbone):
    """ResNet-18 whose 7x7/stride-2 stem and max-pool are replaced by one 3x3/stride-1 conv.

    The ImageNet stem divides resolution by 4 at once, which leaves a 32 px CIFAR image 1x1 by layer4;
    the CIFAR variant (He et al. 2016, SimCLR's CIFAR setup) keeps 32 -> 32, 16, 8, 4 px. Never loads
    downloaded weights: everything here is learned from the project's own images.

    Blocks: [stem + layer1, layer2, layer3, layer4] with widths 64, 128, 256, 512.

    Args:
        in_channels: input channels.
        image_size: nominal input side (32-96 px intended).
    """

    name = "resnet18"

    def __init__(self, in_channels: int, image_size: int) -> None:
        super().__init__(in_channels, image_size)
        net = torchvision.models.resnet18(weights=None)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.blocks.append(nn.Sequential(stem, net.layer1))
        self.blocks.extend([net.layer2, net.layer3, net.layer4])
        self.block_dims = [64, 128, 256, 512]
