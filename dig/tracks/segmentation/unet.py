"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015), 2D or 3D: dig's ``dig.nn.UNet`` trained by the shared
segmentation loop (``learned.py``)."""

from __future__ import annotations

from torch import nn

from dig.nn.unet import UNet
from dig.tracks.segmentation.learned import LearnedSegmenter


class UNetSegmenter(LearnedSegmenter):
    def build_network(self, dim: int, in_channels: int, classes: int, width: int, depth: int, norm: str) -> nn.Module:
        return UNet(dim=dim, in_channels=in_channels, out_channels=classes, width=width, depth=depth, norm=norm)
