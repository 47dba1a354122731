"""The public ops. Each validates its inputs and calls one custom op (Triton on CUDA, torch on CPU).

Conventions: a ``CSRGraph`` holds edges j -> i sorted by destination i; per-edge tensors are in that order.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dig.ops._ops import aggregate_op, edge_softmax_op, segment_values
from dig.ops._torch import stable_sort
from dig.ops.graph import CSRGraph

REDUCTIONS = ("sum", "mean", "max", "min")


def _check_float(name: str, tensor: Tensor) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {tensor.dtype}")


def _check_reduce(reduce: str) -> None:
    if reduce not in REDUCTIONS:
        raise ValueError(f"unknown reduce {reduce!r}; use one of {', '.join(REDUCTIONS)}")


def _check_same_device(graph: CSRGraph, *tensors: tuple[str, Tensor]) -> None:
    for name, tensor in tensors:
        if tensor.device != graph.device:
            raise ValueError(f"{name} is on {tensor.device} but the graph is on {graph.device}; move one of them")


def _check_nodes(graph: CSRGraph, x: Tensor) -> None:
    _check_float("x", x)
    if x.dim() != 2:
        raise ValueError(f"x must be [num_nodes, features], got shape {list(x.shape)}")
    if x.size(0) != graph.num_src_nodes:
        raise ValueError(f"x has {x.size(0)} rows but the graph has {graph.num_src_nodes} source nodes")


def _transpose_if_needed(graph: CSRGraph, *tensors: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return graph.transposed()
    empty = graph.col.new_empty(0)
    return empty, empty, empty


def spmm(graph: CSRGraph, x: Tensor, edge_weight: Tensor | None = None, reduce: str = "sum") -> Tensor:
    """Weighted sparse-dense product over the graph: ``out[i] = reduce_{e=(j->i)} w_e * x[j]``.

    With ``reduce="sum"`` and GCN weights w_ij = 1/sqrt(d_i d_j) this is the propagation Â·X of Kipf & Welling
    (2017); ``mean``/``max`` are GraphSAGE aggregators (Hamilton et al. 2017). Nodes without in-edges get 0.
    """
    _check_nodes(graph, x)
    _check_reduce(reduce)
    if edge_weight is not None:
        _check_float("edge_weight", edge_weight)
        if edge_weight.dim() != 1 or edge_weight.size(0) != graph.num_edges:
            raise ValueError(f"edge_weight must be [{graph.num_edges}], got shape {list(edge_weight.shape)}")
        if edge_weight.dtype != x.dtype:
            raise TypeError(f"edge_weight ({edge_weight.dtype}) and x ({x.dtype}) must have the same dtype")
        _check_same_device(graph, ("edge_weight", edge_weight))
    _check_same_device(graph, ("x", x))
    colptr, t_row, t_perm = _transpose_if_needed(graph, x, edge_weight)
    out, _ = aggregate_op(graph.rowptr, graph.col, x, edge_weight, colptr, t_row, t_perm, graph.num_dst_nodes, reduce)
    return out


def gather_mul_scatter(graph: CSRGraph, x: Tensor, weight: Tensor) -> Tensor:
    """Fused message passing with per-edge filters: ``out[i] = sum_{e=(j->i)} x[j] * weight[e]`` (elementwise).

    The continuous-filter convolution of SchNet (Schütt et al. 2017) and the interaction sums of DimeNet /
    SphereNet. ``weight`` is [E, F] (or [E] / [E, 1] for one scalar per edge). The Triton kernel never builds
    the [E, F] message; the CPU path builds it once and does not keep it for the backward pass.
    """
    _check_nodes(graph, x)
    _check_float("weight", weight)
    if weight.size(0) != graph.num_edges:
        raise ValueError(f"weight has {weight.size(0)} rows but the graph has {graph.num_edges} edges")
    if weight.dim() == 2 and weight.size(1) == 1:
        weight = weight.squeeze(1)
    if weight.dim() not in (1, 2) or (weight.dim() == 2 and weight.size(1) != x.size(1)):
        raise ValueError(f"weight must be [E], [E, 1] or [E, {x.size(1)}], got shape {list(weight.shape)}")
    if x.dtype != weight.dtype:
        raise TypeError(f"x ({x.dtype}) and weight ({weight.dtype}) must have the same dtype")
    _check_same_device(graph, ("x", x), ("weight", weight))
    colptr, t_row, t_perm = _transpose_if_needed(graph, x, weight)
    out, _ = aggregate_op(graph.rowptr, graph.col, x, weight, colptr, t_row, t_perm, graph.num_dst_nodes, "sum")
    return out


def segment(src: Tensor, ptr: Tensor, reduce: str = "sum") -> Tensor:
    """Reduce contiguous segments: ``out[i] = reduce(src[ptr[i]:ptr[i+1]])`` (sum, mean, max or min).

    Empty segments give 0. The gradient of max/min goes to the first element attaining the extreme.
    """
    _check_float("src", src)
    _check_reduce(reduce)
    if not isinstance(ptr, Tensor) or ptr.dim() != 1 or ptr.numel() < 1 or ptr.is_floating_point():
        raise ValueError("ptr must be a 1-D integer tensor of segment offsets (length num_segments + 1)")
    if not torch.compiler.is_compiling():  # value checks read the tensor, which a traced graph cannot
        if int(ptr[0]) != 0 or int(ptr[-1]) != src.size(0):
            raise ValueError(f"ptr must start at 0 and end at len(src)={src.size(0)}, got {int(ptr[0])}..{int(ptr[-1])}")
        if ptr.numel() > 1 and bool((ptr.diff() < 0).any()):
            raise ValueError("ptr must be non-decreasing")
    if ptr.device != src.device:
        raise ValueError(f"ptr is on {ptr.device} but src on {src.device}")
    return segment_values(src, ptr.long(), reduce)


def scatter(src: Tensor, index: Tensor, num_segments: int, reduce: str = "sum") -> Tensor:
    """``out[k] = reduce_{n: index[n] = k} src[n]`` for an unsorted ``index`` (sorted once, then ``segment``)."""
    _check_float("src", src)
    if index.dim() != 1 or index.size(0) != src.size(0) or index.is_floating_point():
        raise ValueError(f"index must be a 1-D integer tensor of length {src.size(0)}, got {list(index.shape)}")
    if not torch.compiler.is_compiling() and index.numel() and (int(index.min()) < 0 or int(index.max()) >= num_segments):
        raise IndexError(f"index values must lie in [0, {num_segments}), got [{int(index.min())}, {int(index.max())}]")
    ptr = torch.zeros(num_segments + 1, dtype=torch.long, device=src.device)
    grouped = not torch.compiler.is_compiling() and (index.numel() < 2 or bool((index[1:] >= index[:-1]).all()))
    _check_reduce(reduce)
    if grouped:  # already sorted (a batch vector): no sort, no copy
        ptr[1:] = torch.bincount(index, minlength=num_segments).cumsum(0)
        return segment_values(src, ptr, reduce)
    values, perm = stable_sort(index, num_segments)
    ptr[1:] = torch.bincount(values, minlength=num_segments).cumsum(0)
    return segment_values(src.index_select(0, perm), ptr, reduce)  # ptr is valid by construction


def edge_softmax(graph: CSRGraph, scores: Tensor) -> Tensor:
    """Softmax of edge scores over the in-edges of each destination (GAT attention, Veličković et al. 2018):
    ``alpha_e = exp(s_e) / sum_{e' -> same i} exp(s_e')``; ``scores`` is [E] or [E, heads]."""
    _check_float("scores", scores)
    if scores.size(0) != graph.num_edges or scores.dim() not in (1, 2):
        raise ValueError(f"scores must be [{graph.num_edges}] or [{graph.num_edges}, heads], got {list(scores.shape)}")
    _check_same_device(graph, ("scores", scores))
    return edge_softmax_op(graph.rowptr, scores.contiguous())
