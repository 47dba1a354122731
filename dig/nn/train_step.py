"""One optimiser step shared by every trained method: a non-finite loss stops training with a message that
names the method, where it happened and the fix, instead of silently filling the weights with NaN."""

from __future__ import annotations

import copy

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


class BestCheckpoint:
    """The state of ``model`` at its best validation score so far (``higher_is_better`` or lower), and the step
    it was seen at; ``restore`` loads it back (validation-only model selection)."""

    def __init__(self, model: nn.Module, higher_is_better: bool) -> None:
        self.model, self.higher_is_better = model, higher_is_better
        self.score = -float("inf") if higher_is_better else float("inf")
        self.step, self._state = 0, None

    def offer(self, score: float, step: int) -> None:
        if score > self.score if self.higher_is_better else score < self.score:
            self.score, self.step, self._state = score, step, copy.deepcopy(self.model.state_dict())

    def restore(self) -> None:
        if self._state is not None:
            self.model.load_state_dict(self._state)
