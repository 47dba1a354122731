"""Weight initialisation shared by models."""

from __future__ import annotations

from torch import nn


def glorot_linear_init(module: nn.Module) -> None:
    """Every ``nn.Linear`` below ``module``: Glorot/Xavier-uniform weights, U(+-sqrt(6 / (fan_in + fan_out)))
    (Glorot & Bengio, AISTATS 2010), and zero biases; as in the reference implementations of SchNet, DimeNet++,
    SphereNet and ComENet. PyTorch's default, U(+-1 / sqrt(fan_in)), is sqrt(3) times narrower for square layers
    and trains these deep residual stacks measurably slower."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
