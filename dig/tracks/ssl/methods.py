"""Graph-level ssl methods as encoder x views x objective, and the two reference rows.

- ``GraphCL`` (You et al., NeurIPS 2020), as DIG's unsupervised example configures it: view 1 the graph
  itself, view 2 node dropping or subgraph chosen at random per graph ("random2"), ratio 0.2; a projection
  head MLP(d, d) on the graph embedding; ``nt_xent_graphcl`` at temperature 0.2; the head is dropped after
  pre-training.
- ``InfoGraph`` (Sun et al., ICLR 2020): node (local) and graph (global) embeddings through two 3-layer
  feed-forward discriminators with a linear shortcut, scored by ``jsd_local_global``; no prior term.
- ``MVGRLGraph`` (Hassani & Khasahmadi, ICML 2020, graph level): two ``GCNGraphEncoder``s, one on the
  normalised adjacency and one on the PPR diffusion (alpha 0.2); node embeddings go through one projection
  MLP, graph embeddings through another (3 PReLU layers + a linear shortcut each), and
  L = JSD(nodes of the adjacency view, graphs of the diffusion view) + JSD(nodes of diffusion, graphs of
  adjacency) (``jsd_local_global``); the embedding is the sum of the two views' graph embeddings.
- ``RandomEncoder``: the same encoder, never trained (batch norm in evaluation mode). Every method must be
  read against it: random GNN features are a strong baseline on small molecules.
- ``SupervisedGraph``: the same encoder plus a linear head trained end to end on the labels of each outer
  training fold of the probe's split (``probe.outer_splits``), its step chosen on a validation tenth of that
  fold, then scored once on the fold's test graphs: the reference row with labels, on the same folds.

GraphCL, InfoGraph, the random encoder and the supervised row share ``GINEncoder`` (3 layers x 128, sum
pooling: DIG's unsupervised GraphCL example); MVGRL has its own GCN encoders at the same width and depth. All
train with Adam for a fixed number of steps per budget (no selection on the probe's folds).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dig.nn.train_step import optimisation_step
from dig.tracks.ssl.encoders import GCNGraphEncoder, GINEncoder, xavier_init
from dig.tracks.ssl.graphs import GraphBatch, collate
from dig.tracks.ssl.objectives import jsd_local_global, nt_xent_graphcl
from dig.tracks.ssl.probe import ProbeScore, outer_splits, probe_metric
from dig.tracks.ssl.views import NodeDropping, Subgraph, batch_ppr_diffusion

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


class ShortcutMLP(nn.Module):
    """Three linear layers, each followed by ``activation``, plus a linear shortcut: ``in_dim`` -> ``out_dim``.
    InfoGraph's discriminators (ReLU) and MVGRL's projections (PReLU)."""

    def __init__(self, in_dim: int, out_dim: int, activation: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(in_dim, out_dim), activation(), nn.Linear(out_dim, out_dim), activation(),
                                   nn.Linear(out_dim, out_dim), activation())
        self.shortcut = nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x) + self.shortcut(x)


class InfoGraph(_Pretrainable):
    def __init__(self, in_features: int, **kwargs) -> None:
        super().__init__(in_features, **kwargs)
        d = self.encoder.out_features
        self.local_d, self.global_d = ShortcutMLP(d, d), ShortcutMLP(d, d)

    def loss(self, batch: GraphBatch, generator: torch.Generator) -> Tensor:
        graphs, nodes = self.encoder(batch)
        return jsd_local_global(self.local_d(nodes), self.global_d(graphs), batch.graph_of_node())


class RandomEncoder(_Pretrainable):
    def pretrain(self, graphs: Sequence[Graph], seed: int, on_epoch: EpochCallback | None = None) -> dict:
        self.initialise(seed)
        return {"epochs": 0, "steps": 0, "loss": []}


class MVGRLGraph(_Pretrainable):
    level = "graph"

    def __init__(self, in_features: int, hidden: int = 128, layers: int = 3, alpha: float = 0.2, **kwargs) -> None:
        super().__init__(in_features, hidden=hidden, layers=layers, **kwargs)
        self.encoder = GCNGraphEncoder(in_features, hidden, layers)  # the adjacency view
        self.diffusion_encoder = GCNGraphEncoder(in_features, hidden, layers)
        self.node_projection = ShortcutMLP(hidden, hidden, nn.PReLU)
        self.graph_projection = ShortcutMLP(hidden * layers, hidden, nn.PReLU)
        self.alpha = alpha

    def initialise(self, seed: int) -> None:
        super().initialise(seed)
        xavier_init(self.diffusion_encoder)

    def _views(self, batch: GraphBatch) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        diffusion_edges, diffusion_weight = batch_ppr_diffusion(batch, self.alpha)
        return self.encoder(batch), self.diffusion_encoder(batch, diffusion_edges, diffusion_weight)

    def loss(self, batch: GraphBatch, generator: torch.Generator) -> Tensor:
        (graphs_a, nodes_a), (graphs_d, nodes_d) = self._views(batch)
        graph_of = batch.graph_of_node()
        return (jsd_local_global(self.node_projection(nodes_a), self.graph_projection(graphs_d), graph_of)
                + jsd_local_global(self.node_projection(nodes_d), self.graph_projection(graphs_a), graph_of))

    @torch.no_grad()
    def embed(self, graphs: Sequence[Graph], batch_size: int = 512) -> np.ndarray:
        self.eval()
        out = []
        for start in range(0, len(graphs), batch_size):
            (graphs_a, _), (graphs_d, _) = self._views(collate(graphs[start:start + batch_size]))
            out.append(graphs_a + graphs_d)
        return torch.cat(out).numpy().astype(np.float64)


def _fold_score(predicted: np.ndarray, truth: np.ndarray, task: str) -> float:
    """Accuracy (classes) or mean absolute error (regression) of predictions on the label scale."""
    if task == "classification":
        return float((predicted == truth).mean())
    return float(np.abs(predicted - truth).mean())


class SupervisedGraph(_Pretrainable):
    """See the module docstring. ``steps`` Adam steps of ``batch_size`` training graphs per outer fold; every
    ``eval_every`` steps the validation tenth is scored (accuracy, or MAE on the original scale) and the best
    step's weights kept (ties: the earlier). Regression trains on standardised targets with the squared error."""

    uses_labels = True
    VALIDATION_FRACTION = 0.1

    def __init__(self, in_features: int, steps: int = 100, eval_every: int = 10, **kwargs) -> None:
        super().__init__(in_features, **kwargs)
        self.steps, self.eval_every = steps, eval_every
        self.head = nn.Linear(self.encoder.out_features, 1)  # resized to the task in ``cross_validate``

    def pretrain(self, graphs: Sequence[Graph], seed: int, on_epoch: EpochCallback | None = None) -> dict:
        raise TypeError("the supervised row trains on labels per outer fold: call cross_validate")

    def _predict(self, graphs: Sequence[Graph], rows: np.ndarray) -> Tensor:
        self.eval()
        with torch.no_grad():
            return self.head(self.encoder(collate([graphs[i] for i in rows]))[0])

    def _train_fold(self, graphs: Sequence[Graph], labels: np.ndarray, task: str, train: np.ndarray,
                    val: np.ndarray, seed: int) -> tuple[int, Callable[[np.ndarray], np.ndarray]]:
        """Fit on ``train``, choose the step on ``val``; returns (chosen step, predict(rows) on the label scale)."""
        self.initialise(seed)
        classes = task == "classification"
        if classes:
            target = torch.from_numpy(labels.astype(np.int64))
        else:
            mean, std = float(labels[train].mean()), float(labels[train].std()) or 1.0
            target = torch.from_numpy((labels - mean) / std).float()

        def to_labels(output: Tensor) -> np.ndarray:
            return output.argmax(-1).numpy() if classes else output[:, 0].double().numpy() * std + mean

        def score(rows: np.ndarray) -> float:  # higher is better
            value = _fold_score(to_labels(self._predict(graphs, rows)), labels[rows], task)
            return value if classes else -value

        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr)
        best, best_step, best_state, order, step = -np.inf, 0, None, [], 0
        while step < self.steps:
            if len(order) < self.batch_size:
                order += train[torch.randperm(len(train), generator=generator).numpy()].tolist()
            chunk, order = order[:self.batch_size], order[self.batch_size:]
            self.train()
            output = self.head(self.encoder(collate([graphs[i] for i in chunk]))[0])
            loss = F.cross_entropy(output, target[chunk]) if classes else F.mse_loss(output[:, 0], target[chunk])
            optimisation_step(self, optimizer, loss, f"step {step + 1}")
            step += 1
            if step % self.eval_every == 0 or step == self.steps:
                value = score(val)
                if value > best:
                    best, best_step, best_state = value, step, copy.deepcopy(self.state_dict())
        self.load_state_dict(best_state)
        return best_step, lambda rows: to_labels(self._predict(graphs, rows))

    def cross_validate(self, graphs: Sequence[Graph], labels: np.ndarray, task: str, seed: int, folds: int = 10,
                       unit: str = "", on_epoch: EpochCallback | None = None) -> ProbeScore:
        """Mean and std over the probe's outer folds of the test score of a model trained on the fold's
        training rows (a validation tenth held out of them); each test fold is predicted once."""
        outputs = int(labels.max()) + 1 if task == "classification" else 1
        self.head = nn.Linear(self.encoder.out_features, outputs)
        scores, chosen = [], []
        for k, (train, test) in enumerate(outer_splits(labels, task, seed, folds)):
            shuffled = np.random.RandomState(seed * 1000 + k).permutation(train)
            held = max(1, int(round(self.VALIDATION_FRACTION * len(train))))
            step, predict = self._train_fold(graphs, labels, task, np.sort(shuffled[held:]), np.sort(shuffled[:held]),
                                             seed * 1000 + k)
            scores.append(_fold_score(predict(test), labels[test], task))
            chosen.append(float(step))
            if on_epoch is not None:
                on_epoch(k + 1, folds, {"fold_score": scores[-1]})
        return ProbeScore(probe_metric(task, unit), float(np.mean(scores)), float(np.std(scores)), tuple(scores),
                          tuple(chosen))
