"""PyG's GNNExplainer and PGExplainer (``torch_geometric.explain``) behind dig's explainer contract.

Both run PyG's own code on a PyG mirror of the explained model (``dig_pyg.mirror``); their edge masks come back
in the instance's edge order and dig scores them on dig's model. Imported only when a job builds one of them:
importing PyG costs about 2 s, which every worker process would otherwise pay at plugin discovery.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.explain import Explainer, GNNExplainer, PGExplainer

from dig.tracks.xgraph.protocol import Explanation, Instance
from dig_pyg.mirror import to_pyg


def _model_config(instance: Instance) -> dict:
    return {"mode": "multiclass_classification", "task_level": "node" if instance.target is not None else "graph",
            "return_type": "raw"}


def _target(mirror: nn.Module, instance: Instance) -> Tensor:
    """The explained class where PyG reads it: every node's prediction (node task) or the graph's."""
    with torch.no_grad():
        prediction = mirror(instance.x, instance.edge_index).argmax(-1)
    if instance.target is not None:
        prediction[instance.target] = instance.label
        return prediction
    return torch.tensor([instance.label])


class PyGGNNExplainer:
    def __init__(self, epochs: int = 100, lr: float = 0.01) -> None:
        self.epochs, self.lr = epochs, lr

    def __call__(self, model: nn.Module, instance: Instance, seed: int) -> Explanation:
        mirror = to_pyg(model)
        explainer = Explainer(mirror, GNNExplainer(epochs=self.epochs, lr=self.lr), explanation_type="model",
                              edge_mask_type="object", node_mask_type=None, model_config=_model_config(instance))
        torch.manual_seed(seed)
        explanation = explainer(instance.x, instance.edge_index, index=instance.target)
        return Explanation(explanation.edge_mask.detach(), None, instance.target, instance.label)


class PyGPGExplainer:
    def __init__(self, epochs: int = 30, lr: float = 0.003) -> None:
        self.epochs, self.lr = epochs, lr
        self.explainer: Explainer | None = None

    def fit(self, model: nn.Module, instances: Sequence[Instance], seed: int) -> None:
        if not instances:
            raise ValueError("pyg-pgexplainer needs at least one training instance to fit")
        mirror = to_pyg(model)
        torch.manual_seed(seed)
        self.explainer = Explainer(mirror, PGExplainer(epochs=self.epochs, lr=self.lr),
                                   explanation_type="phenomenon", edge_mask_type="object",
                                   model_config=_model_config(instances[0]))
        targets = [_target(mirror, instance) for instance in instances]
        for epoch in range(self.epochs):
            for instance, target in zip(instances, targets, strict=True):
                self.explainer.algorithm.train(epoch, mirror, instance.x, instance.edge_index, target=target,
                                               index=instance.target)

    def __call__(self, model: nn.Module, instance: Instance, seed: int) -> Explanation:
        if self.explainer is None:
            raise RuntimeError("pyg-pgexplainer must be fitted before explaining")
        torch.manual_seed(seed)
        explanation = self.explainer(instance.x, instance.edge_index, target=_target(self.explainer.model, instance),
                                     index=instance.target)
        return Explanation(explanation.edge_mask.detach(), None, instance.target, instance.label)
