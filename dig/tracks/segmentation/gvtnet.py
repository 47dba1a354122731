"""GVTNet (Wang, Xie, Ji et al. 2021, "Global voxel transformer networks for augmented microscopy"): the U-Net
whose bottom block ends in a size-preserving global voxel transformer operator (attention over every voxel)
and whose deepest down- and up-sampling are GVTOs (``dig.nn.gvto``); trained by the shared segmentation loop.
Prediction on 128-pixel tiles (``tile``, overlap a quarter tile), as for denoising: global attention over a
whole large image costs the square of its voxel count. Tiled prediction is the reference code's own option
(GVTNets ``predict.py --cropped_prediction --patch_size --overlap``), not a variant."""

from __future__ import annotations

from torch import nn

from dig.nn.gvto import GVTNet
from dig.tracks.segmentation.learned import LearnedSegmenter


class GVTNetSegmenter(LearnedSegmenter):
    def build_network(self, dim: int, in_channels: int, classes: int, width: int, depth: int, norm: str) -> nn.Module:
        return GVTNet(dim=dim, in_channels=in_channels, out_channels=classes, width=width, depth=depth, norm=norm)
