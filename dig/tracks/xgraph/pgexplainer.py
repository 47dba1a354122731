"""PGExplainer (Luo et al., "Parameterized Explainer for Graph Neural Network", NeurIPS 2020).

One explainer network for all instances: an MLP reads the explained model's node embeddings z and gives every
edge (u -> v) a logit omega_uv = MLP([z_u || z_v]) for graphs, MLP([z_u || z_v || z_t]) for a target node t.
Training samples a relaxed Bernoulli (binary concrete) mask per edge,

    m_uv = sigmoid((log eps - log(1 - eps) + omega_uv) / tau),  eps ~ U(b, 1 - b),

with the temperature annealed tau_e = tau_0 (tau_1 / tau_0)^(e / epochs), and minimises
-log p_c(m) + a * sum(m) + b_H * mean(H(m)) over the training instances (p_c the explained class's probability,
H the binary entropy). An explanation is sigmoid(omega) without sampling. Settings are PyG's
``PGExplainer`` defaults (30 epochs, lr 0.003, a = 0.05, b_H = 1.0, tau 5 -> 2, b = 0.01; hidden 64), which
follow the authors' code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dig.tracks.xgraph.explainers import class_probability
from dig.tracks.xgraph.protocol import Explanation, Instance


class PGExplainer:
    def __init__(self, epochs: int = 30, lr: float = 0.003, size_weight: float = 0.05, entropy_weight: float = 1.0,
                 temperature: tuple[float, float] = (5.0, 2.0), bias: float = 0.01, hidden: int = 64) -> None:
        self.epochs, self.lr, self.size_weight, self.entropy_weight = epochs, lr, size_weight, entropy_weight
        self.temperature, self.bias, self.hidden = tuple(temperature), bias, hidden
        self.mlp: nn.Module | None = None

    @staticmethod
    def _embeddings(model: nn.Module, instance: Instance) -> Tensor:
        if not hasattr(model, "embed"):
            raise TypeError(f"pgexplainer needs the explained model's node embeddings: give {type(model).__name__} "
                            "an embed(x, graph, edge_weight=None) -> [N, D] method")
        with torch.no_grad():
            return model.embed(instance.x, instance.graph).detach()

    def _edge_inputs(self, model: nn.Module, instance: Instance) -> Tensor:
        z = self._embeddings(model, instance)
        src, dst = instance.edge_index
        parts = [z[src], z[dst]]
        if instance.target is not None:
            parts.append(z[instance.target].expand(src.numel(), -1))
        return torch.cat(parts, dim=-1)

    def _logits(self, inputs: Tensor) -> Tensor:
        return self.mlp(inputs).squeeze(-1)

    def fit(self, model: nn.Module, instances: Sequence[Instance], seed: int) -> None:
        if not instances:
            raise ValueError("pgexplainer needs at least one training instance to fit")
        torch.manual_seed(seed)
        inputs = [self._edge_inputs(model, instance) for instance in instances]
        self.mlp = nn.Sequential(nn.Linear(inputs[0].size(-1), self.hidden), nn.ReLU(), nn.Linear(self.hidden, 1))
        optimizer = torch.optim.Adam(self.mlp.parameters(), lr=self.lr)
        generator = torch.Generator().manual_seed(seed)
        start, end = self.temperature
        for epoch in range(self.epochs):
            tau = start * (end / start) ** (epoch / self.epochs)
            optimizer.zero_grad()
            total = torch.zeros(())
            for instance, edge_inputs in zip(instances, inputs, strict=True):
                eps = torch.rand(instance.num_edges, generator=generator) * (1 - 2 * self.bias) + self.bias
                mask = torch.sigmoid((eps.log() - (1 - eps).log() + self._logits(edge_inputs)) / tau)
                probability = class_probability(model, instance, mask)
                entropy = -(mask * (mask + 1e-15).log() + (1 - mask) * (1 - mask + 1e-15).log())
                total = total + (-(probability + 1e-15).log() + self.size_weight * mask.sum()
                                 + self.entropy_weight * entropy.mean())
            (total / len(instances)).backward()
            optimizer.step()

    def __call__(self, model: nn.Module, instance: Instance, seed: int) -> Explanation:
        if self.mlp is None:
            raise RuntimeError("pgexplainer must be fitted (fit(model, training instances, seed)) before explaining")
        with torch.no_grad():
            mask = torch.sigmoid(self._logits(self._edge_inputs(model, instance)))
        return Explanation(mask, None, instance.target, instance.label)


def build_pgexplainer(**hparams) -> PGExplainer:
    return PGExplainer(**hparams)
