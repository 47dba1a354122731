"""Radius graph inside each molecule of a batch, in pure torch (no pyg-lib / torch-cluster)."""

from __future__ import annotations

import torch
from torch import Tensor

from dig.ops.graph import CSRGraph


def radius_graph(pos: Tensor, ptr: Tensor, cutoff: float, loop: bool = False) -> tuple[CSRGraph, Tensor]:
    """Edges j -> i between atoms of the same molecule with ``|pos_i - pos_j| < cutoff``.

    ``ptr`` [B+1] are the atom offsets of the molecules (atoms of one molecule are contiguous). All pairs
    inside each molecule are enumerated without Python loops: the cost is ``sum_b n_b^2``, right for
    molecules (tens of atoms) and not meant for large periodic systems.

    Returns ``(graph, distance)``: the ``CSRGraph`` (``graph.row`` = destination i, ``graph.col`` = source j) and
    ``distance`` [E] = ``|pos[row] - pos[col]|`` in Å, in graph order and differentiable in ``pos`` (so forces
    flow through it). No edge has zero length unless ``loop=True``.
    """
    if pos.dim() != 2 or pos.size(1) != 3:
        raise ValueError(f"pos must be [num_atoms, 3], got shape {list(pos.shape)}")
    if int(ptr[-1]) != pos.size(0):
        raise ValueError(f"ptr ends at {int(ptr[-1])} but pos has {pos.size(0)} atoms")
    if cutoff <= 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    device = pos.device
    sizes = ptr.diff()
    num_atoms = pos.size(0)
    molecule = torch.repeat_interleave(torch.arange(sizes.numel(), device=device), sizes)
    per_atom = sizes[molecule]
    row = torch.repeat_interleave(torch.arange(num_atoms, device=device), per_atom)
    first_pair = torch.cumsum(per_atom, 0) - per_atom
    offset = torch.arange(row.numel(), device=device) - torch.repeat_interleave(first_pair, per_atom)
    col = ptr[molecule[row]] + offset
    with torch.no_grad():
        dist2 = (pos[row] - pos[col]).pow(2).sum(-1)
        keep = dist2 < cutoff * cutoff
        if not loop:
            keep &= row != col
    row, col = row[keep], col[keep]
    distance = (pos[row] - pos[col]).norm(dim=-1)
    return CSRGraph.from_sorted(row, col, num_atoms), distance
