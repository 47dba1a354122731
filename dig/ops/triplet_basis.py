"""The fused triplet-basis aggregation of DimeNet++ (Gasteiger et al. 2020), one op with its own backward.

DimeNet++'s interaction sums, over the triplets t = (k -> j -> i) of every edge e = (j -> i),

    out[e] = sum_{t -> e} x[kj_t] * (W s_t)        x [E, C], s [T, B] (the basis after its first
                                                    projection, B = basis_emb), W [C, B]

Unfused, that is three [T, C] tensors (the projected basis W s, the gather x[kj] and their product) and a
scatter, and as many again in the backward (T ~ 15 E on QM9). Fused, per edge e:

    Y[e] = sum_{t -> e} s_t x[kj_t]^T   [B, C],     out[e, c] = sum_b W[c, b] Y[e, b, c]

and the backward walks the triplets twice: in the edge's order for dL/ds_t[b] = sum_c G[e, b, c] x[kj_t, c]
(G[e, b, c] = dL/dout[e, c] W[c, b]), in the order of k -> j for dL/dx[k] = sum_{t: kj_t = k} sum_b s_t[b]
G[e_t, b]; dL/dW[c, b] = sum_e dL/dout[e, c] Y[e, b, c] comes from the Y saved by the forward. No [T, C] tensor
is ever built. Every output element is summed by one thread in a fixed order: the same numbers on every run.

CPU: the compiled kernels of ``csrc/triplet_basis.cpp`` (``dig.ops._cpp``). CUDA (and a CPU without a compiler):
W s by one matrix product, then ``gather_mul_scatter``, which is Triton's fused gather-multiply-scatter on GPU.
Second derivatives (forces training differentiates the backward): the backward switches to the unfused formula
in differentiable torch ops whenever autograd records it (``create_graph``), so they are exact there too.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dig.ops._cpp import triplet_basis_kernels
from dig.ops.functional import _transpose_if_needed, gather_mul_scatter
from dig.ops.graph import CSRGraph


def triplet_basis_aggregate(edge_graph: CSRGraph, x: Tensor, basis: Tensor, weight: Tensor) -> Tensor:
    """``out[e] = sum_{t -> e} x[kj_t] * (weight @ basis[t])`` over the edge graph of the triplets (its
    destinations are the edges j -> i, its sources the edges k -> j, its edges the triplets).

    ``x`` [E_src, C], ``basis`` [T, B], ``weight`` [C, B] (a bias-free ``Linear(B, C)``'s weight). Equal to
    ``gather_mul_scatter(edge_graph, x, basis @ weight.T)``, without its [T, C] tensors (module docstring).
    """
    for name, tensor in (("x", x), ("basis", basis), ("weight", weight)):
        if not isinstance(tensor, Tensor) or not tensor.is_floating_point() or tensor.dim() != 2:
            raise TypeError(f"{name} must be a 2-D floating-point tensor, got {getattr(tensor, 'shape', type(tensor))}")
        if tensor.dtype != x.dtype or tensor.device != edge_graph.device:
            raise ValueError(f"{name} is {tensor.dtype} on {tensor.device}; x is {x.dtype} and the graph is on "
                             f"{edge_graph.device}: use one dtype and the graph's device")
    if x.size(0) != edge_graph.num_src_nodes:
        raise ValueError(f"x has {x.size(0)} rows but the edge graph has {edge_graph.num_src_nodes} source edges")
    if basis.size(0) != edge_graph.num_edges:
        raise ValueError(f"basis has {basis.size(0)} rows but the edge graph has {edge_graph.num_edges} triplets")
    if weight.shape != (x.size(1), basis.size(1)):
        raise ValueError(f"weight must be [{x.size(1)}, {basis.size(1)}] (features x basis), got {list(weight.shape)}")
    kernels = None if x.is_cuda else triplet_basis_kernels()
    if kernels is None:
        return gather_mul_scatter(edge_graph, x, basis @ weight.t())
    colptr, _, perm = _transpose_if_needed(edge_graph, x, basis, weight)  # only the backward reads it
    return _triplet_basis_op(edge_graph.rowptr, edge_graph.col, edge_graph.row, colptr, perm,
                             x.contiguous(), basis.contiguous(), weight.contiguous())[0]


@torch.library.custom_op("dig::triplet_basis", mutates_args=())
def _triplet_basis_op(rowptr: Tensor, kj: Tensor, ji: Tensor, colptr: Tensor, perm: Tensor, x: Tensor,
                      basis: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    out, y = triplet_basis_kernels().forward(rowptr, kj, x, basis, weight)
    return out, y


@_triplet_basis_op.register_fake
def _(rowptr, kj, ji, colptr, perm, x, basis, weight):
    rows = rowptr.size(0) - 1
    return x.new_empty(rows, x.size(1)), x.new_empty(rows, basis.size(1), x.size(1))


def _setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs, output[1])


def _backward(ctx, grad_out: Tensor, _grad_y: Tensor):
    rowptr, kj, ji, colptr, perm, x, basis, weight, y = ctx.saved_tensors
    needs_x, needs_basis, needs_weight = ctx.needs_input_grad[5:8]
    grad_x = grad_basis = grad_weight = None
    if torch.is_grad_enabled():  # create_graph: the unfused formula, in ops autograd can differentiate again
        if needs_x:  # sum over the triplets of each edge k -> j: the transposed edge graph
            transposed = CSRGraph(colptr, ji.index_select(0, perm), rowptr.numel() - 1)
            grad_x = gather_mul_scatter(transposed, grad_out, (basis @ weight.t()).index_select(0, perm))
        if needs_basis or needs_weight:
            h = grad_out.index_select(0, ji) * x.index_select(0, kj)
            grad_basis = h @ weight if needs_basis else None
            grad_weight = h.t() @ basis if needs_weight else None
        return None, None, None, None, None, grad_x, grad_basis, grad_weight
    kernels = triplet_basis_kernels()
    grad_out = grad_out.contiguous()
    per_basis = (grad_out.unsqueeze(1) * weight.t().unsqueeze(0)).contiguous()  # G [E, B, C]
    if needs_x:
        grad_x = kernels.grad_x(colptr, perm, ji, basis, per_basis)
    if needs_basis:
        grad_basis = kernels.grad_s(rowptr, kj, x, per_basis)
    if needs_weight:
        grad_weight = (grad_out.unsqueeze(1) * y).sum(0).t()
    return None, None, None, None, None, grad_x, grad_basis, grad_weight


_triplet_basis_op.register_autograd(_backward, setup_context=_setup)
