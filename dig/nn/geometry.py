"""Angles that stay differentiable where they are degenerate.

Forces are -dE/dpos, so every geometric feature is differentiated twice in energy-and-force training. At a
degenerate configuration (a zero cross product, atan2(0, 0)) the textbook formulas have 0/0 derivatives and
turn the forces into NaN; these helpers return the same values with zero gradient there (the "double where":
the masked branch is fed a harmless input, so no NaN is ever formed).
"""

from __future__ import annotations

import torch
from torch import Tensor


def safe_norm(v: Tensor, dim: int = -1) -> Tensor:
    """|v| along ``dim``; its gradient is 0 (not NaN) where v = 0."""
    zero = (v == 0).all(dim=dim, keepdim=True)
    norm = torch.where(zero, torch.ones_like(v), v).norm(dim=dim, keepdim=True)
    return torch.where(zero, torch.zeros_like(norm), norm).squeeze(dim)


def safe_atan2(y: Tensor, x: Tensor, undefined: Tensor | None = None) -> Tensor:
    """atan2(y, x) with value 0 and zero gradient at y = x = 0 and wherever ``undefined`` (an angle the caller
    knows to be meaningless there, e.g. from a cross product that is rounding noise rather than exactly 0)."""
    origin = (x == 0) & (y == 0)
    if undefined is not None:
        origin = origin | undefined
    angle = torch.atan2(torch.where(origin, torch.zeros_like(y), y), torch.where(origin, torch.ones_like(x), x))
    return torch.where(origin, torch.zeros_like(angle), angle)


def angle_between(u: Tensor, v: Tensor, undefined: Tensor | None = None) -> Tensor:
    """The angle in [0, pi] between u and v, as atan2(|u x v|, u . v) (accurate near 0 and pi); 0 where
    ``undefined``."""
    return safe_atan2(safe_norm(torch.linalg.cross(u, v)), (u * v).sum(-1), undefined)
