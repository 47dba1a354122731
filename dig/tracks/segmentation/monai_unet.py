"""Reference row: MONAI's ``monai.networks.nets.UNet`` (the field's standard library; Kerfoot et al. 2018
residual units) at dig's width and depth (channels ``width * 2**level``, stride-2 down-samplings, 2 residual
units per level as in MONAI's tutorials, batch norm), trained by the same loop and budget as ``unet``.
MONAI's UNet needs sides divisible by 2**depth: inputs are reflection-padded and the output cropped back."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from dig.tracks.segmentation.learned import LearnedSegmenter


class PaddedMonaiUNet(nn.Module):
    def __init__(self, dim: int, in_channels: int, classes: int, width: int, depth: int, norm: str) -> None:
        super().__init__()
        from monai.networks.nets import UNet

        self.multiple = 2 ** depth
        self.network = UNet(spatial_dims=dim, in_channels=in_channels, out_channels=classes,
                            channels=tuple(width * 2 ** level for level in range(depth + 1)), strides=(2,) * depth,
                            num_res_units=2, norm=norm if norm != "none" else None)

    def forward(self, x: Tensor) -> Tensor:
        sides = x.shape[2:]
        pad = [(-side) % self.multiple for side in sides]
        if any(pad):
            padding = [amount for p in reversed(pad) for amount in (0, p)]
            x = F.pad(x, padding, mode="reflect" if all(p < s for p, s in zip(pad, sides, strict=True)) else "replicate")
        out = self.network(x)
        return out[(..., *(slice(0, side) for side in sides))]


class MonaiUNetSegmenter(LearnedSegmenter):
    def build_network(self, dim: int, in_channels: int, classes: int, width: int, depth: int, norm: str) -> nn.Module:
        return PaddedMonaiUNet(dim, in_channels, classes, width, depth, norm)
