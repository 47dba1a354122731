"""CPU (and fallback) implementations of the ops in plain torch: the fastest torch path measured here.

All functions work on a destination-sorted CSR structure (``rowptr`` [N+1], ``col`` [E]) and take no autograd
responsibility: ``dig.ops._ops`` wraps them as custom ops with their gradients.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor


def csr_tensor(rowptr: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """A torch sparse CSR tensor, without torch's "beta" warning (the invariants are ours by construction)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(rowptr, col, values, shape, check_invariants=False)


def edge_rows(rowptr: Tensor, num_edges: int) -> Tensor:
    return torch.repeat_interleave(torch.arange(rowptr.numel() - 1, device=rowptr.device), rowptr.diff(),
                                   output_size=num_edges)


def stable_sort(index: Tensor, upper: int) -> tuple[Tensor, Tensor]:
    """``torch.sort(index, stable=True)`` as (int64 values, permutation), on int32 keys when every value fits:
    torch's CPU radix sort then makes half the passes (measured 2.2x faster on 1M keys)."""
    if upper < 2**31:
        values, perm = torch.sort(index.int(), stable=True)
        return values.long(), perm
    values, perm = torch.sort(index.long(), stable=True)
    return values, perm


def transpose(rowptr: Tensor, col: Tensor, num_src: int) -> tuple[Tensor, Tensor, Tensor]:
    """Source-sorted view of a destination-sorted CSR: (colptr, destination of each edge, edge permutation)."""
    perm = stable_sort(col, num_src)[1]
    colptr = torch.zeros(num_src + 1, dtype=torch.long, device=col.device)
    colptr[1:] = torch.bincount(col, minlength=num_src).cumsum(0)
    return colptr, edge_rows(rowptr, col.numel()).index_select(0, perm), perm


def aggregate(rowptr: Tensor, col: Tensor, x: Tensor, weight: Tensor | None, num_dst: int) -> Tensor:
    """out[i] = sum_{e in row i} w_e * x[col_e]; ``weight`` None (1), [E] or [E, F] (per-feature)."""
    num_edges = col.numel()
    if num_edges == 0 or x.size(1) == 0:
        return x.new_zeros(num_dst, x.size(1))
    if weight is None or weight.dim() == 1:
        values = torch.ones(num_edges, dtype=x.dtype, device=x.device) if weight is None else weight
        return torch.sparse.mm(csr_tensor(rowptr, col, values, (num_dst, x.size(0))), x)
    message = x.index_select(0, col)
    return segment_sum(message.mul_(weight), rowptr)


def segment_sum(src: Tensor, ptr: Tensor) -> Tensor:
    flat = src.reshape(src.size(0), math.prod(src.shape[1:]))
    num = ptr.numel() - 1
    if flat.size(0) == 0 or flat.size(1) == 0:
        return src.new_zeros((num, *src.shape[1:]))
    ones = torch.ones(flat.size(0), dtype=src.dtype, device=src.device)
    matrix = csr_tensor(ptr, torch.arange(flat.size(0), device=src.device), ones, (num, flat.size(0)))
    return torch.sparse.mm(matrix, flat.contiguous()).reshape(num, *src.shape[1:])


def segment_extreme_values(src: Tensor, ptr: Tensor, reduce: str) -> Tensor:
    """Per-segment max or min alone (empty segments give 0): what a forward pass without gradient needs."""
    num = ptr.numel() - 1
    if src.size(0) == 0:
        return src.new_zeros((num, *src.shape[1:]))
    values = torch.segment_reduce(src, "max" if reduce == "max" else "min", offsets=ptr, axis=0, unsafe=True)
    empty = (ptr.diff() == 0).view(-1, *([1] * (src.dim() - 1)))
    return values.masked_fill_(empty, 0.0)


def segment_extreme(src: Tensor, ptr: Tensor, reduce: str) -> tuple[Tensor, Tensor]:
    """Per-segment max or min and the position of the first element attaining it (-1 for empty segments);
    empty segments give 0."""
    num, length = ptr.numel() - 1, src.size(0)
    counts = ptr.diff()
    if length == 0:
        return src.new_zeros((num, *src.shape[1:])), torch.full((num, *src.shape[1:]), -1, dtype=torch.long,
                                                                 device=src.device)
    values = torch.segment_reduce(src, "max" if reduce == "max" else "min", offsets=ptr, axis=0, unsafe=True)
    rows = edge_rows(ptr, length)
    rows_b = rows.view(-1, *([1] * (src.dim() - 1)))
    hit = src == values.index_select(0, rows)
    positions = torch.arange(length, device=src.device).view(-1, *([1] * (src.dim() - 1))).expand_as(src)
    candidates = torch.where(hit, positions, torch.full_like(positions, length))
    arg = torch.full_like(values, length, dtype=torch.long).scatter_reduce_(
        0, rows_b.expand_as(src), candidates, "amin", include_self=True
    )
    empty = (counts == 0).view(-1, *([1] * (src.dim() - 1)))
    values = torch.where(empty, torch.zeros_like(values), values)
    arg = torch.where(empty | (arg == length), torch.full_like(arg, -1), arg)
    return values, arg


def edge_softmax(rowptr: Tensor, scores: Tensor) -> Tensor:
    """softmax of ``scores`` [E] or [E, H] over the edges of each destination row."""
    if scores.size(0) == 0:
        return scores.clone()
    rows = edge_rows(rowptr, scores.size(0))
    peak = torch.segment_reduce(scores, "max", offsets=rowptr, axis=0, unsafe=True)
    exp = (scores - peak.index_select(0, rows)).exp_()
    total = segment_sum(exp, rowptr)
    return exp.div_(total.index_select(0, rows))


def sddmm(rowptr: Tensor, col: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """out[e] = <a[row_e], b[col_e]> (sampled dense-dense product, the gradient of edge weights)."""
    if col.numel() == 0:
        return a.new_zeros(0)
    if a.dtype in (torch.float32, torch.float64) and not a.is_cuda:
        pattern = csr_tensor(rowptr, col, torch.zeros(col.numel(), dtype=a.dtype), (a.size(0), b.size(0)))
        return torch.sparse.sampled_addmm(pattern, a, b.t(), beta=0.0).values()
    rows = edge_rows(rowptr, col.numel())
    return (a.index_select(0, rows) * b.index_select(0, col)).sum(-1)
