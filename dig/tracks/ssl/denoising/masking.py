"""Pixel masks of the self-supervised denoisers, on batches ``[B, 1, *S]`` (2D or 3D).

- ``stratified_mask``: one pixel drawn uniformly in every box of side ``(100 / percent)^(1/dim)``
  (Noise2Void's and Noise2Same's sampling: ``percent`` % of the pixels, spread over the image).
- ``uniform_pixel_manipulation``: Noise2Void's masking; each masked pixel is replaced by a pixel drawn
  uniformly from its 5x5(x5) neighbourhood, the pixel itself excluded (a true blind spot).
- ``grid_mask`` and ``donut_fill``: Noise2Self's J-invariant partition; pixels whose coordinates are all
  congruent to ``phase`` modulo ``spacing`` form J, replaced by the mean of their 3^dim neighbours without
  the centre (the "donut").
- ``gaussian_fill``: Noise2Same's masking; masked pixels become N(0, sigma^2) noise (the input is
  normalised to zero mean and unit variance).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor
from torch.nn import functional as F


def stratified_mask(shape: torch.Size | tuple[int, ...], percent: float, generator: torch.Generator) -> Tensor:
    """A boolean mask of ``shape`` = [B, 1, *S] with one pixel per box of side ``(100/percent)^(1/dim)``."""
    spatial = tuple(shape[2:])
    box = max(1, round((100.0 / percent) ** (1.0 / len(spatial))))
    mask = torch.zeros(shape, dtype=torch.bool)
    starts = [torch.arange(0, side, box) for side in spatial]
    grid = torch.stack(torch.meshgrid(*starts, indexing="ij"), dim=-1).reshape(-1, len(spatial))
    for b in range(shape[0]):
        offsets = torch.randint(0, box, grid.shape, generator=generator)
        coords = grid + offsets
        inside = (coords < torch.tensor(spatial)).all(dim=1)
        coords = coords[inside]
        mask[(b, 0, *coords.T)] = True
    return mask


def uniform_pixel_manipulation(x: Tensor, mask: Tensor, generator: torch.Generator, radius: int = 2) -> Tensor:
    """``x`` with each masked pixel replaced by a uniformly drawn pixel of its (2r+1)^dim neighbourhood other
    than itself (positions outside the image are reflected back in)."""
    out = x.clone()
    index = mask.nonzero()
    spatial = torch.tensor(x.shape[2:])
    dim = spatial.numel()
    offsets = torch.tensor([o for o in itertools.product(range(-radius, radius + 1), repeat=dim) if any(o)])
    choice = offsets[torch.randint(0, len(offsets), (len(index),), generator=generator)]
    source = index[:, 2:] + choice
    source = source.abs()  # reflect below 0
    source = torch.where(source >= spatial, 2 * (spatial - 1) - source, source)  # reflect past the end
    out[mask] = x[(index[:, 0], index[:, 1], *source.T)]
    return out


def grid_mask(shape: torch.Size | tuple[int, ...], spacing: int, phase: int) -> Tensor:
    """Noise2Self's J: pixels whose every coordinate is congruent to (phase's digits) modulo ``spacing``;
    ``phase`` in [0, spacing^dim) picks one of the spacing^dim disjoint sets that partition the image."""
    spatial = tuple(shape[2:])
    digits = [(phase // spacing ** axis) % spacing for axis in range(len(spatial))]
    mask = torch.ones(spatial, dtype=torch.bool)
    for axis, (side, digit) in enumerate(zip(spatial, digits, strict=True)):
        keep = (torch.arange(side) % spacing) == digit
        view = [1] * len(spatial)
        view[axis] = side
        mask = mask & keep.view(view)
    return mask.expand(shape).clone()


def donut_fill(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` with masked pixels replaced by the mean of their 3^dim neighbours without the centre."""
    dim = x.dim() - 2
    kernel = torch.ones((3,) * dim, dtype=x.dtype)
    kernel[(1,) * dim] = 0
    kernel = (kernel / kernel.sum()).view(1, 1, *kernel.shape)
    padded = F.pad(x, [1] * (2 * dim), mode="reflect")
    mean = (F.conv2d if dim == 2 else F.conv3d)(padded, kernel)
    return torch.where(mask, mean, x)


def gaussian_fill(x: Tensor, mask: Tensor, generator: torch.Generator, sigma: float = 0.2) -> Tensor:
    """``x`` with masked pixels replaced by N(0, sigma^2) noise."""
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype) * sigma
    return torch.where(mask, noise, x)
