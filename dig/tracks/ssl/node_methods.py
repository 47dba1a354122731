"""Node-level ssl methods on one graph, full batch, with the GCN encoder of ``encoders.GCNNodeEncoder``.

- ``DGI`` (Veličković et al., ICLR 2019): the corruption shuffles the rows of X; the summary is
  s = sigmoid(mean_i h_i); a bilinear discriminator D(h, s) = h^T W s scores real nodes against corrupted ones
  with binary cross-entropy. Cora's settings: one GCN layer of 512 with PReLU, Adam 1e-3, early stopping on
  the training loss with patience 20 (labels are never read).
- ``GRACE`` (Zhu et al., 2020): two views by edge removing and feature masking (rates 0.2/0.4 and 0.3/0.4
  on Cora), a 2-layer GCN (256, 128, ReLU), a projection head Linear-ELU-Linear, ``nt_xent_grace`` at
  tau 0.4, Adam 5e-4 with weight decay 1e-5, 200 epochs.
- ``MVGRLNode`` (Hassani & Khasahmadi, ICML 2020): adjacency and PPR-diffusion views, cross-view DGI-style
  discrimination (see the class).
- ``RandomNodeEncoder``: DGI's encoder, never trained (the "random-init" row of the DGI paper).
- ``SupervisedNodeEncoder``: DGI's encoder plus a linear head trained on the training nodes' labels with
  cross-entropy (dropout 0.5 before the head, Adam 1e-2, weight decay 5e-4, as Kipf & Welling), the epoch
  kept by validation accuracy: the ceiling, probed like every other row.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dig.nn.conv import GCNConv
from dig.nn.train_step import optimisation_step
from dig.ops import CSRGraph
from dig.tracks.ssl.encoders import GCNNodeEncoder, xavier_init
from dig.tracks.ssl.graphs import GraphBatch
from dig.tracks.ssl.methods import EpochCallback, Graph
from dig.tracks.ssl.objectives import nt_xent_grace
from dig.tracks.ssl.protocol import Supervision
from dig.tracks.ssl.views import EdgeRemoving, FeatureMasking, ppr_diffusion


def _one_graph(graphs: Sequence[Graph]) -> tuple[Tensor, Tensor]:
    if len(graphs) != 1:
        raise ValueError(f"a node-level method takes one graph, got {len(graphs)}; is this a graph-level dataset?")
    return graphs[0]


def _csr(edge_index: Tensor, nodes: int) -> CSRGraph:
    graph, _ = CSRGraph.from_edge_index(edge_index, nodes)
    return graph


class _NodePretrainable(nn.Module):
    """Shared full-batch loop: Adam, a fixed number of epochs, optionally early stopping on the training
    loss (DGI) with the best weights restored."""

    level = "node"

    def __init__(self, in_features: int, widths: tuple[int, ...] = (512,), activation: str = "prelu",
                 epochs: int = 300, lr: float = 1e-3, weight_decay: float = 0.0, patience: int | None = None) -> None:
        super().__init__()
        self.encoder = GCNNodeEncoder(in_features, tuple(widths), activation)
        self.epochs, self.lr, self.weight_decay, self.patience = epochs, lr, weight_decay, patience
        self._graph_of: tuple[Tensor, CSRGraph] | None = None

    def _graph(self, edge_index: Tensor, nodes: int) -> CSRGraph:
        """The task's CSR graph, built once per ``edge_index`` tensor (and with it GCN's cached
        normalisation) rather than once per epoch."""
        if self._graph_of is None or self._graph_of[0] is not edge_index:
            self._graph_of = (edge_index, _csr(edge_index, nodes))
        return self._graph_of[1]

    def initialise(self, seed: int) -> None:
        torch.manual_seed(seed)
        for module in self.modules():
            if module is not self and callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()
            if isinstance(module, GCNConv) and module.bias is not None:
                nn.init.zeros_(module.bias)
        xavier_init(self)

    def loss(self, x: Tensor, edge_index: Tensor, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def pretrain(self, graphs: Sequence[Graph], seed: int, on_epoch: EpochCallback | None = None,
                 supervision: Supervision | None = None) -> dict:
        x, edge_index = _one_graph(graphs)
        self.initialise(seed)
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        history, best, best_state, waited = [], float("inf"), None, 0
        self.train()
        for epoch in range(self.epochs):
            history.append(optimisation_step(self, optimizer, self.loss(x, edge_index, generator), f"epoch {epoch + 1}"))
            if on_epoch is not None:
                on_epoch(epoch + 1, self.epochs, {"pretrain_loss": history[-1]})
            if self.patience is not None:
                if history[-1] < best:
                    best, best_state, waited = history[-1], copy.deepcopy(self.state_dict()), 0
                else:
                    waited += 1
                    if waited >= self.patience:
                        break
        if best_state is not None:
            self.load_state_dict(best_state)
        return {"epochs": len(history), "steps": len(history), "loss": history}

    @torch.no_grad()
    def embed(self, graphs: Sequence[Graph]) -> np.ndarray:
        x, edge_index = _one_graph(graphs)
        self.eval()
        return self.encoder(x, self._graph(edge_index, x.size(0))).numpy().astype(np.float64)


class DGI(_NodePretrainable):
    def __init__(self, in_features: int, hidden: int = 512, **kwargs) -> None:
        kwargs.setdefault("patience", 20)
        super().__init__(in_features, widths=(hidden,), activation="prelu", **kwargs)
        self.discriminator = nn.Bilinear(hidden, hidden, 1)

    def loss(self, x: Tensor, edge_index: Tensor, generator: torch.Generator) -> Tensor:
        graph = self._graph(edge_index, x.size(0))
        real = self.encoder(x, graph)
        corrupted = self.encoder(x[torch.randperm(x.size(0), generator=generator)], graph)
        summary = torch.sigmoid(real.mean(0))
        # D(h, s) = h^T W s + b for every row against one summary: W s once instead of nn.Bilinear's per-row
        # product (the same numbers, N times fewer multiplications)
        projected = self.discriminator.weight[0] @ summary
        logits = torch.cat([real @ projected, corrupted @ projected]) + self.discriminator.bias
        target = torch.cat([torch.ones(x.size(0)), torch.zeros(x.size(0))])
        return F.binary_cross_entropy_with_logits(logits, target)


class GRACE(_NodePretrainable):
    def __init__(self, in_features: int, hidden: int = 128, temperature: float = 0.4,
                 edge_rates: tuple[float, float] = (0.2, 0.4), feature_rates: tuple[float, float] = (0.3, 0.4),
                 **kwargs) -> None:
        kwargs.setdefault("lr", 5e-4)
        kwargs.setdefault("weight_decay", 1e-5)
        kwargs.setdefault("epochs", 200)
        super().__init__(in_features, widths=(2 * hidden, hidden), activation="relu", **kwargs)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, hidden))
        self.temperature = temperature
        self.views = tuple((EdgeRemoving(e), FeatureMasking(f)) for e, f in zip(edge_rates, feature_rates, strict=True))

    def loss(self, x: Tensor, edge_index: Tensor, generator: torch.Generator) -> Tensor:
        batch = GraphBatch(x, edge_index, torch.tensor([0, x.size(0)]))
        projected = []
        for remove_edges, mask_features in self.views:
            view = mask_features(remove_edges(batch, generator), generator)
            projected.append(self.head(self.encoder(view.x, _csr(view.edge_index, x.size(0)))))
        return nt_xent_grace(projected[0], projected[1], self.temperature)


class RandomNodeEncoder(_NodePretrainable):
    def __init__(self, in_features: int, hidden: int = 512, **kwargs) -> None:
        super().__init__(in_features, widths=(hidden,), activation="prelu", **kwargs)

    def pretrain(self, graphs: Sequence[Graph], seed: int, on_epoch: EpochCallback | None = None,
                 supervision: Supervision | None = None) -> dict:
        _one_graph(graphs)
        self.initialise(seed)
        return {"epochs": 0, "steps": 0, "loss": []}


class SupervisedNodeEncoder(_NodePretrainable):
    uses_labels = True

    def __init__(self, in_features: int, hidden: int = 512, dropout: float = 0.5, **kwargs) -> None:
        kwargs.setdefault("lr", 1e-2)
        kwargs.setdefault("weight_decay", 5e-4)
        kwargs.setdefault("epochs", 200)
        super().__init__(in_features, widths=(hidden,), activation="prelu", **kwargs)
        self.hidden, self.dropout = hidden, dropout

    def pretrain(self, graphs: Sequence[Graph], seed: int, on_epoch: EpochCallback | None = None,
                 supervision: Supervision | None = None) -> dict:
        if supervision is None:
            raise ValueError("SupervisedNodeEncoder needs the training and validation labels (supervision=...)")
        x, edge_index = _one_graph(graphs)
        seen = np.concatenate([supervision.labels[supervision.train], supervision.labels[supervision.val]])
        if seen.min() < 0:
            raise ValueError("a training or validation node has no label (< 0)")
        self.head = nn.Sequential(nn.Dropout(self.dropout), nn.Linear(self.hidden, int(seen.max()) + 1))
        self.initialise(seed)
        graph = self._graph(edge_index, x.size(0))
        labels = torch.as_tensor(supervision.labels, dtype=torch.long)
        train, val = torch.as_tensor(supervision.train), torch.as_tensor(supervision.val)
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        history, best, best_state, best_epoch = [], -1.0, None, 0
        for epoch in range(self.epochs):
            self.train()
            logits = self.head(self.encoder(x, graph))
            history.append(optimisation_step(self, optimizer, F.cross_entropy(logits[train], labels[train]),
                                             f"epoch {epoch + 1}"))
            self.eval()
            with torch.no_grad():
                val_accuracy = float((self.head(self.encoder(x, graph))[val].argmax(1) == labels[val]).float().mean())
            if on_epoch is not None:
                on_epoch(epoch + 1, self.epochs, {"train_loss": history[-1], "val_accuracy_frac": val_accuracy})
            if val_accuracy > best:
                best, best_state, best_epoch = val_accuracy, copy.deepcopy(self.state_dict()), epoch + 1
        if best_state is not None:
            self.load_state_dict(best_state)
        return {"epochs": len(history), "steps": len(history), "loss": history, "best_epoch": best_epoch,
                "best_val_accuracy_frac": best}


class MVGRLNode(_NodePretrainable):
    """MVGRL, node level (Hassani & Khasahmadi, ICML 2020): two GCN encoders of 512 with PReLU, one on the
    normalised adjacency (dig.ops) and one on the dense PPR diffusion (alpha 0.2); each view's nodes are scored
    against the other view's summary sigmoid(mean h) by a shared bilinear discriminator, real against
    row-shuffled features, with binary cross-entropy. The embedding is h_adjacency + h_diffusion. Adam 1e-3,
    early stopping on the training loss (patience 20). Full graph, no sub-sampling (the paper samples
    subgraphs only to fit large graphs in memory)."""

    def __init__(self, in_features: int, hidden: int = 512, alpha: float = 0.2, **kwargs) -> None:
        kwargs.setdefault("patience", 20)
        super().__init__(in_features, widths=(hidden,), activation="prelu", **kwargs)
        self.diffusion_lin = nn.Linear(in_features, hidden, bias=False)
        self.diffusion_bias = nn.Parameter(torch.zeros(hidden))
        self.diffusion_act = nn.PReLU()
        self.discriminator = nn.Bilinear(hidden, hidden, 1)
        self.alpha = alpha
        self._diffusion: tuple[Tensor, Tensor] | None = None

    def initialise(self, seed: int) -> None:
        super().initialise(seed)
        nn.init.zeros_(self.diffusion_bias)

    def _views(self, x: Tensor, edge_index: Tensor) -> tuple[CSRGraph, Tensor]:
        if self._diffusion is None or self._diffusion[0] is not edge_index:
            self._diffusion = (edge_index, ppr_diffusion(edge_index, x.size(0), self.alpha))
        return self._graph(edge_index, x.size(0)), self._diffusion[1]

    def _encode(self, x: Tensor, graph: CSRGraph, diffusion: Tensor) -> tuple[Tensor, Tensor]:
        # (S X) W rather than S (X W): the same product, with the dense n x n multiply on F columns, not hidden
        on_diffusion = self.diffusion_act(self.diffusion_lin(diffusion @ x) + self.diffusion_bias)
        return self.encoder(x, graph), on_diffusion

    def loss(self, x: Tensor, edge_index: Tensor, generator: torch.Generator) -> Tensor:
        graph, diffusion = self._views(x, edge_index)
        real_a, real_d = self._encode(x, graph, diffusion)
        fake_a, fake_d = self._encode(x[torch.randperm(x.size(0), generator=generator)], graph, diffusion)
        summary_a, summary_d = torch.sigmoid(real_a.mean(0)), torch.sigmoid(real_d.mean(0))
        weight, bias = self.discriminator.weight[0], self.discriminator.bias
        # D(h, s) = h^T W s + b: nodes of each view against the other view's summary
        scores_against_d, scores_against_a = weight @ summary_d, weight @ summary_a
        logits = torch.cat([real_a @ scores_against_d, real_d @ scores_against_a,
                            fake_a @ scores_against_d, fake_d @ scores_against_a]) + bias
        target = torch.cat([torch.ones(2 * x.size(0)), torch.zeros(2 * x.size(0))])
        return F.binary_cross_entropy_with_logits(logits, target)

    @torch.no_grad()
    def embed(self, graphs: Sequence[Graph]) -> np.ndarray:
        x, edge_index = _one_graph(graphs)
        self.eval()
        on_adjacency, on_diffusion = self._encode(x, *self._views(x, edge_index))
        return (on_adjacency + on_diffusion).numpy().astype(np.float64)
