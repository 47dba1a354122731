"""Model selection of the generation track's likelihood models on the validation split."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from dig.errors import TrainingError


class BestValidationEpoch:
    """After every epoch: record the training and validation NLL (per ``unit``: token, character), keep a copy of
    the weights of the lowest validation NLL and report the epoch to ``on_epoch``; ``restore`` loads that copy."""

    def __init__(self, model: str, net: nn.Module, epochs: int, unit: str,
                 on_epoch: Callable[[int, int, Mapping[str, float]], None] | None = None) -> None:
        self.model, self.net, self.epochs, self.unit, self.on_epoch = model, net, epochs, unit, on_epoch
        self.best, self.best_epoch, self.best_state = math.inf, 0, None
        self.history: list[dict[str, float]] = []

    def end_epoch(self, epoch: int, train_nll: float, valid_nll: float) -> None:
        if not math.isfinite(valid_nll):
            raise TrainingError(f"{self.model}: validation NLL is {valid_nll} at epoch {epoch}")
        if valid_nll < self.best:
            self.best, self.best_epoch, self.best_state = valid_nll, epoch, copy.deepcopy(self.net.state_dict())
        record = {"epoch": epoch, f"train_nll_per_{self.unit}": train_nll, f"valid_nll_per_{self.unit}": valid_nll}
        self.history.append(record)
        if self.on_epoch is not None:
            self.on_epoch(epoch, self.epochs, record)

    def restore(self) -> dict[str, Any]:
        """Load the best weights; return the history's summary (epochs run, best epoch, per-epoch records)."""
        if self.best_state is not None:
            self.net.load_state_dict(self.best_state)
        return {"epochs": len(self.history), "best_epoch": self.best_epoch, "history": self.history}
