"""Global voxel transformation operators and GVTNet (Wang, Xie & Ji, "Global voxel transformer networks for
augmented microscopy", Nature Machine Intelligence 2021).

A GVTO is attention over every voxel of its input: queries Q, keys K and values V come from convolutions,
each output voxel i is ``sum_j softmax_j(Q_i . K_j / sqrt(c)) V_j`` over ALL input voxels j, so one voxel
of the input can change every voxel of the output (a convolution reaches only its receptive field). The
queries fix the output grid, which gives the three operators:
- size-preserving: Q, K, V by 1x1 convolutions (C channels), output ``x + attention``;
- down-sampling: Q by a 3x3 stride-2 convolution (2C), K and V by 1x1 convolutions (2C), output at half
  resolution, plus a 3x3 stride-2 convolution of x as the shortcut;
- up-sampling: Q by a stride-2 transposed convolution (C/2), K and V by 1x1 convolutions (C/2), output at
  twice the resolution, plus a stride-2 transposed convolution of x as the shortcut.
GVTNet is a U-Net whose bottom block ends in a size-preserving GVTO and (optionally) whose deepest down- and
up-sampling are the down- and up-sampling GVTOs.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from dig.nn.unet import ConvBlock, UNet, conv_class


def global_attention(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """Scaled dot-product attention of every query voxel over every key voxel.

    ``query`` [B, C, *Sq], ``key`` [B, C, *Sk], ``value`` [B, Cv, *Sk] -> [B, Cv, *Sq]."""
    batch = query.size(0)
    q = query.flatten(2).transpose(1, 2).unsqueeze(1)
    k = key.flatten(2).transpose(1, 2).unsqueeze(1)
    v = value.flatten(2).transpose(1, 2).unsqueeze(1)
    out = F.scaled_dot_product_attention(q, k, v).squeeze(1)
    return out.transpose(1, 2).reshape(batch, value.size(1), *query.shape[2:])


def _transposed(dim: int) -> type[nn.Module]:
    return nn.ConvTranspose2d if dim == 2 else nn.ConvTranspose3d


class SizePreservingGVTO(nn.Module):
    def __init__(self, dim: int, channels: int) -> None:
        super().__init__()
        conv = conv_class(dim)
        self.query, self.key, self.value = (conv(channels, channels, 1) for _ in range(3))

    def forward(self, x: Tensor) -> Tensor:
        return x + global_attention(self.query(x), self.key(x), self.value(x))


class DownSamplingGVTO(nn.Module):
    def __init__(self, dim: int, channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        conv, out = conv_class(dim), out_channels or 2 * channels
        self.query = conv(channels, out, 3, stride=2, padding=1)
        self.key, self.value = conv(channels, out, 1), conv(channels, out, 1)
        self.shortcut = conv(channels, out, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + global_attention(self.query(x), self.key(x), self.value(x))


class UpSamplingGVTO(nn.Module):
    def __init__(self, dim: int, channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        conv, out = conv_class(dim), out_channels or channels // 2
        self.query = _transposed(dim)(channels, out, 2, stride=2)
        self.key, self.value = conv(channels, out, 1), conv(channels, out, 1)
        self.shortcut = _transposed(dim)(channels, out, 2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + global_attention(self.query(x), self.key(x), self.value(x))


class GVTNet(UNet):
    """U-Net (``dig.nn.unet``) with a size-preserving GVTO closing the bottom block and, with ``resampling``,
    the deepest down-sampling (max-pooling) and up-sampling (transposed convolution) replaced by GVTOs."""

    def __init__(self, dim: int = 2, in_channels: int = 1, out_channels: int = 1, width: int = 32, depth: int = 2,
                 norm: str = "batch", convs: int = 2, resampling: bool = True) -> None:
        self.resampling = resampling
        super().__init__(dim, in_channels, out_channels, width, depth, norm, convs)

    def down_sampling(self, level: int, channels: int) -> tuple[nn.Module, int]:
        if self.resampling and level == self.depth - 1:
            return DownSamplingGVTO(self.dim, channels), 2 * channels
        return super().down_sampling(level, channels)

    def bottom_block(self, in_channels: int, out_channels: int) -> nn.Module:
        return nn.Sequential(ConvBlock(self.dim, in_channels, out_channels, self.norm, self.convs),
                             SizePreservingGVTO(self.dim, out_channels))

    def up_sampling(self, level: int, in_channels: int, out_channels: int) -> nn.Module:
        if self.resampling and level == self.depth - 1:
            return UpSamplingGVTO(self.dim, in_channels, out_channels)
        return super().up_sampling(level, in_channels, out_channels)
