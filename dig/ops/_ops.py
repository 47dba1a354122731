"""The ops as ``torch.library`` custom ops: one device-dispatching implementation, a fake (meta) version so
``torch.compile`` can trace models that use them, and the gradient.

Backend: the Triton kernels when the tensors are on CUDA and Triton imports; the torch path otherwise. Setting
``DIG_OPS_BACKEND=triton`` (with ``TRITON_INTERPRET=1`` before triton is imported) runs the kernels on CPU
tensors through Triton's interpreter, which is how the tests check them on a machine without a GPU.
"""

import os

import torch
from torch import Tensor

from dig.ops import _torch, _triton


def _no_arg(device: torch.device) -> Tensor:
    return torch.empty(0, dtype=torch.long, device=device)


def triton_enabled(tensor: Tensor) -> bool:
    if not _triton.AVAILABLE:
        return False
    if tensor.is_cuda:
        return True
    if os.environ.get("DIG_OPS_BACKEND", "") != "triton":
        return False
    if os.environ.get("TRITON_INTERPRET", "") != "1":
        raise RuntimeError(
            f"DIG_OPS_BACKEND=triton was asked for a {tensor.device.type} tensor, which Triton runs only through "
            "its interpreter: set TRITON_INTERPRET=1 before triton is imported, or move the tensors to CUDA")
    return True


def _aggregate_impl(rowptr, col, x, weight, num_dst, reduce):
    if triton_enabled(x):
        kernel_reduce = "sum" if reduce == "mean" else reduce
        out, arg = _triton.aggregate(rowptr, col, x, weight, num_dst, kernel_reduce)
    elif reduce in ("sum", "mean"):
        out, arg = _torch.aggregate(rowptr, col, x, weight, num_dst), None
    else:
        message = x.index_select(0, col)
        if weight is not None:
            message = message * (weight if weight.dim() == 2 else weight.unsqueeze(-1))
        out, arg = _torch.segment_extreme(message, rowptr, reduce)
    if reduce == "mean":
        out = out / rowptr.diff().clamp(min=1).unsqueeze(-1).to(out.dtype)
    return out, arg


@torch.library.custom_op("dig::aggregate", mutates_args=())
def aggregate_op(
    rowptr: Tensor, col: Tensor, x: Tensor, weight: Tensor | None, colptr: Tensor, t_row: Tensor,
    t_perm: Tensor, num_dst: int, reduce: str,
) -> tuple[Tensor, Tensor]:
    out, arg = _aggregate_impl(rowptr, col, x, weight, num_dst, reduce)
    return out, (arg if arg is not None else _no_arg(x.device))


@aggregate_op.register_fake
def _(rowptr, col, x, weight, colptr, t_row, t_perm, num_dst, reduce):
    out = x.new_empty(num_dst, x.size(1))
    arg = x.new_empty((num_dst, x.size(1)) if reduce in ("max", "min") else (0,), dtype=torch.long)
    return out, arg


def _aggregate_setup(ctx, inputs, output):
    rowptr, col, x, weight, colptr, t_row, t_perm, num_dst, reduce = inputs
    ctx.save_for_backward(rowptr, col, x, weight, colptr, t_row, t_perm, output[1])
    ctx.reduce = reduce


def _aggregate_backward(ctx, grad_out, _grad_arg):
    rowptr, col, x, weight, colptr, t_row, t_perm, arg = ctx.saved_tensors
    reduce = ctx.reduce
    grad_x = grad_w = None
    if reduce in ("max", "min"):
        valid = arg >= 0
        edge = arg.clamp(min=0)
        picked = grad_out * valid
        if weight is None:
            picked_w = picked
        elif weight.dim() == 2:
            picked_w = torch.gather(weight, 0, edge) * picked
        else:
            picked_w = weight.index_select(0, edge.reshape(-1)).view_as(edge) * picked
        if ctx.needs_input_grad[2]:
            grad_x = torch.zeros_like(x).scatter_add_(0, col.index_select(0, edge.reshape(-1)).view_as(edge), picked_w)
        if weight is not None and ctx.needs_input_grad[3]:
            contribution = picked * torch.gather(x, 0, col.index_select(0, edge.reshape(-1)).view_as(edge))
            full = torch.zeros(col.numel(), x.size(1), dtype=x.dtype, device=x.device).scatter_add_(0, edge, contribution)
            grad_w = full if weight.dim() == 2 else full.sum(-1)
        return None, None, grad_x, grad_w, None, None, None, None, None
    if reduce == "mean":
        grad_out = grad_out / rowptr.diff().clamp(min=1).unsqueeze(-1).to(grad_out.dtype)
    if ctx.needs_input_grad[2]:
        if colptr.numel() == 0:
            colptr, t_row, t_perm = _torch.transpose(rowptr, col, x.size(0))
        t_weight = None if weight is None else weight.index_select(0, t_perm)
        # through the op itself, so that a second derivative (forces training) has its own gradient formula
        grad_x, _ = aggregate_op(colptr, t_row, grad_out.contiguous(), t_weight, _no_arg(x.device), _no_arg(x.device),
                                 _no_arg(x.device), x.size(0), "sum")
    if weight is not None and ctx.needs_input_grad[3]:
        if weight.dim() == 1 and torch.is_grad_enabled():  # create_graph: the differentiable formula
            rows = _torch.edge_rows(rowptr, col.numel())
            grad_w = (grad_out.index_select(0, rows) * x.index_select(0, col)).sum(-1)
        elif weight.dim() == 1:
            if triton_enabled(x):
                grad_w = _triton.sddmm(_torch.edge_rows(rowptr, col.numel()), col, grad_out, x)
            else:
                grad_w = _torch.sddmm(rowptr, col, grad_out.contiguous(), x)
        else:
            rows = _torch.edge_rows(rowptr, col.numel())
            grad_w = grad_out.index_select(0, rows).mul_(x.index_select(0, col))
    return None, None, grad_x, grad_w, None, None, None, None, None


aggregate_op.register_autograd(_aggregate_backward, setup_context=_aggregate_setup)


@torch.library.custom_op("dig::segment_reduce", mutates_args=())
def segment_op(src: Tensor, ptr: Tensor, reduce: str) -> tuple[Tensor, Tensor]:
    if triton_enabled(src):
        out, arg = _triton.segment_reduce(src, ptr, "sum" if reduce == "mean" else reduce)
    elif reduce in ("sum", "mean"):
        out, arg = _torch.segment_sum(src, ptr), None
    else:
        out, arg = _torch.segment_extreme(src, ptr, reduce)
    if reduce == "mean":
        out = out / ptr.diff().clamp(min=1).view(-1, *([1] * (src.dim() - 1))).to(out.dtype)
    return out, (arg if arg is not None else _no_arg(src.device))


def segment_values(src: Tensor, ptr: Tensor, reduce: str) -> Tensor:
    """``segment_op``'s output alone. For max/min on the torch path with no gradient recorded, it skips the
    position of each extreme, which only the backward pass reads (that search was half of a pooled GIN's
    inference time)."""
    if reduce in ("max", "min") and not (torch.is_grad_enabled() and src.requires_grad) and not triton_enabled(src):
        return _torch.segment_extreme_values(src, ptr, reduce)
    return segment_op(src, ptr, reduce)[0]


@segment_op.register_fake
def _(src, ptr, reduce):
    shape = (ptr.size(0) - 1, *src.shape[1:])
    return src.new_empty(shape), src.new_empty(shape if reduce in ("max", "min") else (0,), dtype=torch.long)


def _segment_setup(ctx, inputs, output):
    src, ptr, reduce = inputs
    ctx.save_for_backward(ptr, output[1])
    ctx.reduce, ctx.length = reduce, src.size(0)


def _segment_backward(ctx, grad_out, _grad_arg):
    ptr, arg = ctx.saved_tensors
    counts = ptr.diff()
    if ctx.reduce in ("max", "min"):
        grad = grad_out.new_zeros((ctx.length, *grad_out.shape[1:]))
        if ctx.length == 0:  # every segment empty: nothing to route the gradient to
            return grad, None, None
        return grad.scatter_add_(0, arg.clamp(min=0), grad_out * (arg >= 0)), None, None
    if ctx.reduce == "mean":
        grad_out = grad_out / counts.clamp(min=1).view(-1, *([1] * (grad_out.dim() - 1))).to(grad_out.dtype)
    return torch.repeat_interleave(grad_out, counts, dim=0, output_size=ctx.length), None, None


segment_op.register_autograd(_segment_backward, setup_context=_segment_setup)


@torch.library.custom_op("dig::edge_softmax", mutates_args=())
def edge_softmax_op(rowptr: Tensor, scores: Tensor) -> Tensor:
    if triton_enabled(scores):
        return _triton.edge_softmax(rowptr, scores)
    return _torch.edge_softmax(rowptr, scores)


@edge_softmax_op.register_fake
def _(rowptr, scores):
    return torch.empty_like(scores)


def _softmax_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[0], output)


def _softmax_backward(ctx, grad_out):
    rowptr, y = ctx.saved_tensors
    weighted = grad_out * y
    total, _ = segment_op(weighted, rowptr, "sum")
    rows = _torch.edge_rows(rowptr, y.size(0))
    return None, weighted - y * total.index_select(0, rows)


edge_softmax_op.register_autograd(_softmax_backward, setup_context=_softmax_setup)
