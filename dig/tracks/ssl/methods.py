"""Graph-level ssl methods as encoder x views x objective, and the two reference rows.

- ``GraphCL`` (You et al., NeurIPS 2020), as DIG's unsupervised example configures it: view 1 the graph
  itself, view 2 node dropping or subgraph chosen at random per graph ("random2"), ratio 0.2; a projection
  head MLP(d, d) on the graph embedding; ``nt_xent_graphcl`` at temperature 0.2; the head is dropped after
  pre-training.
- ``InfoGraph`` (Sun et al., ICLR 2020): node (local) and graph (global) embeddings through two 3-layer
  feed-forward discriminators with a linear shortcut, scored by ``jsd_local_global``; no prior term.
- ``RandomEncoder``: the same encoder, never trained (batch norm in evaluation mode). Every method must be
  read against it: random GNN features are a strong baseline on small molecules.

All use the same ``GINEncoder`` (3 layers x 128, sum pooling: DIG's unsupervised GraphCL example), Adam, and a
fixed number of epochs per budget (no selection on the probe's folds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from dig.nn.train_step import optimisation_step
from dig.tracks.ssl.encoders import GINEncoder, xavier_init
from dig.tracks.ssl.graphs import GraphBatch, collate
from dig.tracks.ssl.objectives import jsd_local_global, nt_xent_graphcl
from dig.tracks.ssl.views import NodeDropping, Subgraph

Graph = tuple[Tensor, Tensor]  # (node features [n, F], edge_index [2, e])
EpochCallback = Callable[[int, int, Mapping[str, float]], None]


def merge_per_graph(candidates: Sequence[GraphBatch], choice: Tensor) -> GraphBatch:
    """Graph g of the result is graph g of ``candidates[choice[g]]`` (all candidates views of one batch)."""
    parts = []
    for k, batch in enumerate(candidates):
        graph = batch.graph_of_node()
        parts.append(batch.subgraph(choice[graph] == k))
    graph_of = torch.cat([p.graph_of_node() for p in parts])
    order = torch.argsort(graph_of, stable=True)
    position = torch.empty_like(order)
    position[order] = torch.arange(order.numel())
    offsets = torch.cumsum(torch.tensor([0] + [p.num_nodes for p in parts[:-1]]), 0)
    edges = torch.cat([position[p.edge_index + offsets[k]] for k, p in enumerate(parts)], dim=1)
    sizes = torch.stack([p.sizes() for p in parts]).sum(0)
    ptr = torch.zeros(sizes.numel() + 1, dtype=torch.long)
    ptr[1:] = sizes.cumsum(0)
    return GraphBatch(torch.cat([p.x for p in parts])[order], edges, ptr)


class _Pretrainable(nn.Module):
    """Shared loop: shuffled mini-batches of graphs, Adam, a fixed number of epochs."""

    def __init__(self, in_features: int, hidden: int = 128, layers: int = 3, epochs: int = 20,
                 batch_size: int = 128, lr: float = 0.01, max_steps: int | None = None) -> None:
        super().__init__()
        self.in_features = in_features
        self.encoder = GINEncoder(in_features, hidden, layers)
        self.epochs, self.batch_size, self.lr, self.max_steps = epochs, batch_size, lr, max_steps

    def loss(self, batch: GraphBatch, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def initialise(self, seed: int) -> None:
        """Every weight drawn again from ``seed``: the same seed gives the same model however it was built."""
        torch.manual_seed(seed)
        for module in self.modules():
            if module is not self and callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()
        xavier_init(self.encoder)

    def pretrain(self, graphs: Sequence[Graph], seed: int, on_epoch: EpochCallback | None = None) -> dict:
        self.initialise(seed)
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr)
        history, steps = [], 0
        self.train()
        for epoch in range(self.epochs):
            order = torch.randperm(len(graphs), generator=generator).tolist()
            total, count = 0.0, 0
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                if len(chunk) < 2:
                    continue
                loss = optimisation_step(self, optimizer, self.loss(collate([graphs[i] for i in chunk]), generator),
                                         f"epoch {epoch + 1}, step {steps + 1}")
                total, count, steps = total + loss * len(chunk), count + len(chunk), steps + 1
                if self.max_steps is not None and steps >= self.max_steps:
                    break
            history.append(total / max(count, 1))
            if on_epoch is not None:
                on_epoch(epoch + 1, self.epochs, {"pretrain_loss": history[-1]})
            if self.max_steps is not None and steps >= self.max_steps:
                break
        return {"epochs": len(history), "steps": steps, "loss": history}

    @torch.no_grad()
    def embed(self, graphs: Sequence[Graph], batch_size: int = 512) -> np.ndarray:
        self.eval()
        out = [self.encoder(collate(graphs[i:i + batch_size]))[0] for i in range(0, len(graphs), batch_size)]
        return torch.cat(out).numpy().astype(np.float64)


class GraphCL(_Pretrainable):
    def __init__(self, in_features: int, temperature: float = 0.2, ratio: float = 0.2, **kwargs) -> None:
        super().__init__(in_features, **kwargs)
        d = self.encoder.out_features
        self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.temperature = temperature
        self.views = (NodeDropping(ratio), Subgraph(ratio))

    def loss(self, batch: GraphBatch, generator: torch.Generator) -> Tensor:
        choice = torch.randint(0, len(self.views), (batch.num_graphs,), generator=generator)
        augmented = merge_per_graph([view(batch, generator) for view in self.views], choice)
        z1 = self.head(self.encoder(batch)[0])
        z2 = self.head(self.encoder(augmented)[0])
        return nt_xent_graphcl(z1, z2, self.temperature)


class FeedForward(nn.Module):
    """InfoGraph's discriminator: 3 ReLU layers plus a linear shortcut."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(),
                                   nn.Linear(dim, dim), nn.ReLU())
        self.shortcut = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x) + self.shortcut(x)


class InfoGraph(_Pretrainable):
    def __init__(self, in_features: int, **kwargs) -> None:
        super().__init__(in_features, **kwargs)
        d = self.encoder.out_features
        self.local_d, self.global_d = FeedForward(d), FeedForward(d)

    def loss(self, batch: GraphBatch, generator: torch.Generator) -> Tensor:
        graphs, nodes = self.encoder(batch)
        return jsd_local_global(self.local_d(nodes), self.global_d(graphs), batch.graph_of_node())


class RandomEncoder(_Pretrainable):
    def pretrain(self, graphs: Sequence[Graph], seed: int, on_epoch: EpochCallback | None = None) -> dict:
        self.initialise(seed)
        return {"epochs": 0, "steps": 0, "loss": []}
