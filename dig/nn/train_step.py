"""One optimiser step shared by every trained method: a non-finite loss stops training with a message that
names the method, where it happened and the fix, instead of silently filling the weights with NaN."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def optimisation_step(method: nn.Module, optimizer: torch.optim.Optimizer, loss: Tensor, where: str,
                      inputs: str = "node features") -> float:
    """One Adam step on a finite loss; a NaN/inf loss stops training with the method, ``where`` it happened
    and the fix (check the ``inputs`` for NaN/inf, or lower the learning rate)."""
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"{type(method).__name__}: the training loss became {loss.item()} at {where}; check the {inputs} "
            f"for NaN/inf, or lower the learning rate ({optimizer.param_groups[0]['lr']})")
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
