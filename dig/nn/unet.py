"""U-Net in 2D and 3D (Ronneberger, Fischer & Brox, MICCAI 2015), the image backbone two tracks share.

``depth`` down-samplings (2x max-pooling), ``width`` channels at full resolution doubled per level, two
``k``-wide convolutions per level each followed by the chosen normalisation and ReLU, transposed-convolution
up-sampling and skip connections by concatenation, then a 1x1 convolution to ``out_channels``. Inputs whose
sides are not divisible by ``2**depth`` are reflection-padded and the output cropped back, so every size works.

Subclasses change the three places GVTNet changes (``dig.nn.gvto``): the bottom block and the deepest
down- and up-sampling.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

NORMS = ("batch", "instance", "group", "none")


def conv_class(dim: int) -> type[nn.Module]:
    if dim not in (2, 3):
        raise ValueError(f"images are 2D or 3D; got dim={dim}")
    return nn.Conv2d if dim == 2 else nn.Conv3d


def norm_layer(kind: str, dim: int, channels: int) -> nn.Module:
    if kind == "batch":
        return (nn.BatchNorm2d if dim == 2 else nn.BatchNorm3d)(channels)
    if kind == "instance":
        return (nn.InstanceNorm2d if dim == 2 else nn.InstanceNorm3d)(channels, affine=True)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation {kind!r}; use one of {', '.join(NORMS)}")


class ConvBlock(nn.Sequential):
    """``convs`` x (conv k, normalisation, ReLU)."""

    def __init__(self, dim: int, in_channels: int, out_channels: int, norm: str = "batch", convs: int = 2,
                 kernel: int = 3) -> None:
        layers: list[nn.Module] = []
        for i in range(convs):
            layers += [conv_class(dim)(in_channels if i == 0 else out_channels, out_channels, kernel,
                                       padding=kernel // 2, bias=norm == "none"),
                       norm_layer(norm, dim, out_channels), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class UNet(nn.Module):
    def __init__(self, dim: int = 2, in_channels: int = 1, out_channels: int = 1, width: int = 32, depth: int = 2,
                 norm: str = "batch", convs: int = 2) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"a U-Net needs depth >= 1; got {depth}")
        self.dim, self.depth = dim, depth
        self.norm, self.convs = norm, convs
        widths = [width * 2 ** level for level in range(depth + 1)]
        self.widths = widths
        self.downs = nn.ModuleList()
        encoders, channels = [], in_channels
        for level in range(depth):
            encoders.append(ConvBlock(dim, channels, widths[level], norm, convs))
            down, channels = self.down_sampling(level, widths[level])
            self.downs.append(down)
        self.encoders = nn.ModuleList(encoders)
        self.bottom = self.bottom_block(channels, widths[depth])
        self.ups = nn.ModuleList([self.up_sampling(level, widths[level + 1], widths[level])
                                  for level in range(depth)])
        self.decoders = nn.ModuleList([ConvBlock(dim, 2 * widths[level], widths[level], norm, convs)
                                       for level in range(depth)])
        self.head = conv_class(dim)(widths[0], out_channels, 1)

    def down_sampling(self, level: int, channels: int) -> tuple[nn.Module, int]:
        """Level ``level`` -> ``level + 1``: 2x max-pooling (the next level's convolutions double the width);
        returns the module and its output channels."""
        return (nn.MaxPool2d(2) if self.dim == 2 else nn.MaxPool3d(2)), channels

    def bottom_block(self, in_channels: int, out_channels: int) -> nn.Module:
        return ConvBlock(self.dim, in_channels, out_channels, self.norm, self.convs)

    def up_sampling(self, level: int, in_channels: int, out_channels: int) -> nn.Module:
        """Level ``level + 1`` -> ``level``: a stride-2 transposed convolution."""
        transposed = nn.ConvTranspose2d if self.dim == 2 else nn.ConvTranspose3d
        return transposed(in_channels, out_channels, 2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != self.dim + 2:
            raise ValueError(f"a {self.dim}D U-Net takes [batch, channels, {'D, ' if self.dim == 3 else ''}H, W]; "
                             f"got shape {tuple(x.shape)}")
        sides = x.shape[2:]
        multiple = 2 ** self.depth
        pad = [(-s) % multiple for s in sides]
        if any(pad):
            flat = [p for amount in reversed(pad) for p in (0, amount)]
            mode = "reflect" if all(s > p for s, p in zip(sides, pad, strict=True)) else "replicate"
            x = F.pad(x, flat, mode=mode)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.bottom(x)
        for level in reversed(range(self.depth)):
            x = self.ups[level](x)
            x = self.decoders[level](torch.cat([x, skips[level]], dim=1))
        x = self.head(x)
        if any(pad):
            x = x[(..., *(slice(0, s) for s in sides))]
        return x
