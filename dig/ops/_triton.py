"""Triton kernels for the ops (GPU; on CPU only under ``TRITON_INTERPRET=1``, which the tests use).

One program handles one destination row and one block of features, walking that row's edges in blocks:
no atomics, no [E, F] message tensor in memory, each output element written once.

- ``_csr_aggregate``: out[i] = reduce_{e in row i} w_e * x[col_e] with w absent, scalar [E] or vector [E, F];
  reduce sum (mean is sum / degree), max or min (also writes the arg position, for the gradient).
- ``_edge_softmax``: three passes over a row's edges (max, sum of exp, normalise), one head block at a time.
- ``_sddmm``: out[e] = <a[row_e], b[col_e]>, one block of edges per program.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl

    AVAILABLE = True
except ImportError:  # the package works without Triton: CPU paths only
    AVAILABLE = False

WEIGHT_NONE, WEIGHT_SCALAR, WEIGHT_VECTOR = 0, 1, 2
REDUCE_SUM, REDUCE_MAX, REDUCE_MIN = 0, 1, 2
_REDUCE_CODES = {"sum": REDUCE_SUM, "max": REDUCE_MAX, "min": REDUCE_MIN}


def _acc(dtype: torch.dtype):
    """Accumulate in float64 for float64 inputs, in float32 otherwise (half precision included)."""
    return tl.float64 if dtype == torch.float64 else tl.float32


def _block(n: int, low: int = 16, high: int = 128) -> int:
    return max(low, min(high, triton.next_power_of_2(max(int(n), 1))))


if AVAILABLE:

    @triton.jit
    def _csr_aggregate(
        rowptr, col, x, weight, out, arg, num_features, stride_x, stride_w, stride_out,
        WEIGHT: tl.constexpr, REDUCE: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_F: tl.constexpr,
        ACC: tl.constexpr,
    ):
        row = tl.program_id(0)
        offs_f = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
        mask_f = offs_f < num_features
        start = tl.load(rowptr + row)
        end = tl.load(rowptr + row + 1)
        if REDUCE == 0:
            acc = tl.zeros((BLOCK_F,), dtype=ACC)
        elif REDUCE == 1:
            acc = tl.full((BLOCK_F,), float("-inf"), dtype=ACC)
        else:
            acc = tl.full((BLOCK_F,), float("inf"), dtype=ACC)
        best = tl.full((BLOCK_F,), -1, dtype=tl.int64)
        for first in range(start, end, BLOCK_E):
            offs_e = first + tl.arange(0, BLOCK_E)
            mask_e = offs_e < end
            src = tl.load(col + offs_e, mask=mask_e, other=0).to(tl.int64)
            mask = mask_e[:, None] & mask_f[None, :]
            values = tl.load(x + src[:, None] * stride_x + offs_f[None, :], mask=mask, other=0.0).to(ACC)
            if WEIGHT == 1:
                w = tl.load(weight + offs_e, mask=mask_e, other=0.0).to(ACC)
                values = values * w[:, None]
            elif WEIGHT == 2:
                w = tl.load(weight + offs_e[:, None].to(tl.int64) * stride_w + offs_f[None, :], mask=mask, other=0.0)
                values = values * w.to(ACC)
            if REDUCE == 0:
                acc += tl.sum(values, axis=0)
            else:
                if REDUCE == 1:
                    values = tl.where(mask, values, float("-inf"))
                    block_best = tl.max(values, axis=0)
                    better = block_best > acc
                else:
                    values = tl.where(mask, values, float("inf"))
                    block_best = tl.min(values, axis=0)
                    better = block_best < acc
                hit = (values == block_best[None, :]) & mask
                position = tl.where(hit, offs_e[:, None].to(tl.int64), 2**62)
                block_arg = tl.min(position, axis=0)
                best = tl.where(better, block_arg, best)
                acc = tl.where(better, block_best, acc)
        if REDUCE != 0:
            acc = tl.where(best < 0, 0.0, acc)
            tl.store(arg + row.to(tl.int64) * stride_out + offs_f, best, mask=mask_f)
        tl.store(out + row.to(tl.int64) * stride_out + offs_f, acc.to(out.dtype.element_ty), mask=mask_f)

    @triton.jit
    def _edge_softmax(rowptr, scores, out, num_heads, BLOCK_E: tl.constexpr, BLOCK_H: tl.constexpr, ACC: tl.constexpr):
        row = tl.program_id(0)
        offs_h = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
        mask_h = offs_h < num_heads
        start = tl.load(rowptr + row)
        end = tl.load(rowptr + row + 1)
        peak = tl.full((BLOCK_H,), float("-inf"), dtype=ACC)
        for first in range(start, end, BLOCK_E):
            offs_e = (first + tl.arange(0, BLOCK_E)).to(tl.int64)
            mask = (offs_e < end)[:, None] & mask_h[None, :]
            s = tl.load(scores + offs_e[:, None] * num_heads + offs_h[None, :], mask=mask, other=float("-inf"))
            peak = tl.maximum(peak, tl.max(s.to(ACC), axis=0))
        peak = tl.where(mask_h, peak, 0.0)
        total = tl.zeros((BLOCK_H,), dtype=ACC)
        for first in range(start, end, BLOCK_E):
            offs_e = (first + tl.arange(0, BLOCK_E)).to(tl.int64)
            mask = (offs_e < end)[:, None] & mask_h[None, :]
            s = tl.load(scores + offs_e[:, None] * num_heads + offs_h[None, :], mask=mask, other=float("-inf"))
            total += tl.sum(tl.where(mask, tl.exp(s.to(ACC) - peak[None, :]), 0.0), axis=0)
        total = tl.where(mask_h, total, 1.0)
        for first in range(start, end, BLOCK_E):
            offs_e = (first + tl.arange(0, BLOCK_E)).to(tl.int64)
            mask = (offs_e < end)[:, None] & mask_h[None, :]
            s = tl.load(scores + offs_e[:, None] * num_heads + offs_h[None, :], mask=mask, other=0.0)
            y = tl.exp(s.to(ACC) - peak[None, :]) / total[None, :]
            tl.store(out + offs_e[:, None] * num_heads + offs_h[None, :], y.to(out.dtype.element_ty), mask=mask)

    @triton.jit
    def _sddmm(row, col, a, b, out, num_edges, num_features, stride_a, stride_b,
               BLOCK_E: tl.constexpr, BLOCK_F: tl.constexpr, ACC: tl.constexpr):
        offs_e = tl.program_id(0) * BLOCK_E + tl.arange(0, BLOCK_E)
        mask_e = offs_e < num_edges
        r = tl.load(row + offs_e, mask=mask_e, other=0).to(tl.int64)
        c = tl.load(col + offs_e, mask=mask_e, other=0).to(tl.int64)
        acc = tl.zeros((BLOCK_E,), dtype=ACC)
        for first in range(0, num_features, BLOCK_F):
            offs_f = first + tl.arange(0, BLOCK_F)
            mask = mask_e[:, None] & (offs_f < num_features)[None, :]
            va = tl.load(a + r[:, None] * stride_a + offs_f[None, :], mask=mask, other=0.0).to(ACC)
            vb = tl.load(b + c[:, None] * stride_b + offs_f[None, :], mask=mask, other=0.0).to(ACC)
            acc += tl.sum(va * vb, axis=1)
        tl.store(out + offs_e, acc.to(out.dtype.element_ty), mask=mask_e)


SKEWED_DEGREE = 1_000


def launch_shape(num_features: int, max_degree: int = 0) -> tuple[int, int, int]:
    """(BLOCK_E, BLOCK_F, num_warps) for ``_csr_aggregate``, one warp.

    Rows of ordinary degree: a whole feature row per program (up to 256 columns, so a row's column indices are
    read once) and about 1,024 tile elements per edge block. A row far longer (in-degree > ``SKEWED_DEGREE``,
    a hub) is walked by one program while the others are done: there, feature blocks of at most 32 (more
    programs share a hub's row) and edge blocks of 64 (fewer serial steps). Swept on an H100 (5 uniform random
    graphs, mean degree 5-100, and 5 skewed ones: Zipf in-degrees and planted hubs; F = 16-256): this rule was
    1.00-1.16x the best of 80 shapes on the uniform graphs and 1.00-1.77x on the skewed ones, where one rule
    without the degree was up to 7.8x slower. The sweep is ``benchmarks/test_bench_triton_gpu.py::
    test_gpu_aggregate_launch_shapes``."""
    block_f = _block(num_features, 4, 256)
    if max_degree > SKEWED_DEGREE:
        return 64, min(block_f, 32), 1
    return max(4, min(64, 1024 // block_f)), block_f, 1


def _max_degree(rowptr: Tensor, num_edges: int) -> int:
    """The longest row (one device sync), skipped where no row can be a hub and while a CUDA graph captures."""
    if num_edges <= SKEWED_DEGREE or rowptr.numel() < 2:
        return 0
    if rowptr.is_cuda and torch.cuda.is_current_stream_capturing():
        return 0
    return int(rowptr.diff().max())


def aggregate(rowptr: Tensor, col: Tensor, x: Tensor, weight: Tensor | None, num_dst: int,
              reduce: str = "sum", shape: tuple[int, int, int] | None = None) -> tuple[Tensor, Tensor | None]:
    """``shape`` overrides :func:`launch_shape` (the benchmarks sweep it)."""
    x = x.contiguous()
    num_features = x.size(1)
    out = torch.empty(num_dst, num_features, dtype=x.dtype, device=x.device)
    arg = torch.empty(num_dst, num_features, dtype=torch.long, device=x.device) if reduce != "sum" else None
    if num_dst == 0 or num_features == 0:
        return out, arg
    mode = WEIGHT_NONE if weight is None else WEIGHT_SCALAR if weight.dim() == 1 else WEIGHT_VECTOR
    weight = weight.contiguous() if weight is not None else None
    block_e, block_f, num_warps = shape or launch_shape(num_features, _max_degree(rowptr, col.numel()))
    grid = (num_dst, triton.cdiv(num_features, block_f))
    _csr_aggregate[grid](
        rowptr, col, x, weight, out, arg, num_features, x.stride(0),
        weight.stride(0) if mode == WEIGHT_VECTOR else 0, out.stride(0),
        WEIGHT=mode, REDUCE=_REDUCE_CODES[reduce], BLOCK_E=block_e, BLOCK_F=block_f, ACC=_acc(x.dtype),
        num_warps=num_warps,
    )
    return out, arg


def segment_reduce(src: Tensor, ptr: Tensor, reduce: str) -> tuple[Tensor, Tensor | None]:
    """Contiguous segments are a CSR whose column of edge e is e itself."""
    flat = src.reshape(src.size(0), math.prod(src.shape[1:]))
    edges = torch.arange(flat.size(0), device=src.device)
    out, arg = aggregate(ptr, edges, flat, None, ptr.numel() - 1, reduce)
    shape = (ptr.numel() - 1, *src.shape[1:])
    return out.reshape(shape), None if arg is None else arg.reshape(shape)


def edge_softmax(rowptr: Tensor, scores: Tensor) -> Tensor:
    flat = scores.reshape(scores.size(0), math.prod(scores.shape[1:])).contiguous()
    out = torch.empty_like(flat)
    num_rows, heads = rowptr.numel() - 1, flat.size(1)
    if num_rows and heads and flat.size(0):
        block_h = _block(heads, 1, 16)
        _edge_softmax[(num_rows, triton.cdiv(heads, block_h))](rowptr, flat, out, heads, BLOCK_E=32, BLOCK_H=block_h, ACC=_acc(flat.dtype)
        )
    return out.reshape(scores.shape)


def sddmm(row: Tensor, col: Tensor, a: Tensor, b: Tensor) -> Tensor:
    a, b = a.contiguous(), b.contiguous()
    num_edges = col.numel()
    out = torch.empty(num_edges, dtype=a.dtype, device=a.device)
    if num_edges:
        block_e = 64
        _sddmm[(triton.cdiv(num_edges, block_e),)](
            row, col, a, b, out, num_edges, a.size(1), a.stride(0), b.stride(0),
            BLOCK_E=block_e, BLOCK_F=_block(a.size(1), 16, 64), ACC=_acc(a.dtype),
        )
    return out
