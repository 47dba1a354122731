"""Prediction on overlapping tiles, for networks whose cost grows faster than the image (GVTNet's global
attention) or whose memory does not fit a whole volume."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn


def tile_starts(side: int, tile: int, step: int) -> list[int]:
    """Origins of tiles of length ``tile`` every ``step`` along an axis of length ``side``, the last one flush
    with the end, so that every position is covered."""
    starts = list(range(0, max(side - tile, 0) + 1, step))
    if starts[-1] + tile < side:
        starts.append(side - tile)
    return starts


@torch.no_grad()
def predict_tiled(network: nn.Module, x: Tensor, tile: int) -> Tensor:
    """``network`` on overlapping tiles of side ``tile`` of ``x`` [B, C, *spatial] (overlap a quarter tile),
    outputs averaged where tiles overlap. Axes shorter than ``tile`` are taken whole."""
    step = tile - tile // 4
    starts = [tile_starts(side, tile, step) for side in x.shape[2:]]
    total = count = None
    for origin in itertools.product(*starts):
        window = tuple(slice(o, o + tile) for o in origin)
        out = network(x[(..., *window)])
        if total is None:
            total = x.new_zeros((x.size(0), out.size(1), *x.shape[2:]))
            count = x.new_zeros((1, 1, *x.shape[2:]))
        total[(..., *window)] += out
        count[(..., *window)] += 1
    return total / count
