"""PyG mirrors of dig's explained GNNs: the same parameters in PyG layers, so that PyG's explainers (which put
their masks on ``MessagePassing`` modules) can run on the model dig trained.

- ``GCNNodeClassifier`` -> PyG ``GCNConv(add_self_loops=False, normalize=False)`` per layer, the same per-layer
  L2 normalisation and ReLU, the same head.
- ``GINGraphClassifier`` -> PyG ``GINConv`` with the same MLPs, sum and max pooling per layer, the same head.
Parameter names match dig's (``convs.k.lin.weight``, ``convs.k.bias``, ``convs.k.nn.*``, ``head.*``), so the
mirror loads dig's state dict as is.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch_geometric.nn import GCNConv, GINConv, global_add_pool, global_max_pool

from dig.tracks.xgraph.models import GCNNodeClassifier, GINGraphClassifier


class PyGGCN(nn.Module):
    def __init__(self, model: GCNNodeClassifier) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            GCNConv(conv.lin.in_features, conv.lin.out_features, add_self_loops=False, normalize=False)
            for conv in model.convs)
        self.head = copy.deepcopy(model.head)
        self.num_layers = model.num_layers
        self.load_state_dict(model.state_dict())

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor | None = None) -> Tensor:
        outputs = []
        for k, conv in enumerate(self.convs):
            x = nn.functional.normalize(conv(x, edge_index), p=2.0, dim=-1)
            if k < self.num_layers - 1:
                x = torch.relu(x)
            outputs.append(x)
        return self.head(torch.cat(outputs, dim=-1))


class PyGGIN(nn.Module):
    def __init__(self, model: GINGraphClassifier) -> None:
        super().__init__()
        self.convs = nn.ModuleList(GINConv(copy.deepcopy(conv.nn), eps=float(conv.eps), train_eps=False)
                                   for conv in model.convs)
        self.head = copy.deepcopy(model.head)
        self.load_state_dict(model.state_dict())

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor | None = None) -> Tensor:
        if batch is None:
            batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        pooled = []
        for conv in self.convs:
            x = torch.relu(conv(x, edge_index))
            pooled += [global_add_pool(x, batch), global_max_pool(x, batch)]
        return self.head(torch.cat(pooled, dim=-1))


def to_pyg(model: nn.Module) -> nn.Module:
    """The PyG mirror of one of dig's explained GNNs (eval mode, no gradients on its parameters)."""
    if isinstance(model, GCNNodeClassifier):
        mirror = PyGGCN(model)
    elif isinstance(model, GINGraphClassifier):
        mirror = PyGGIN(model)
    else:
        raise TypeError(f"dig-pyg mirrors dig's GCNNodeClassifier and GINGraphClassifier, not {type(model).__name__}; "
                        "a plugin model needs its own PyG mirror to be explained by PyG's explainers")
    for parameter in mirror.parameters():
        parameter.requires_grad_(False)
    return mirror.eval()
