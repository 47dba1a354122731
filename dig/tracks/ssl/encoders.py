"""Graph-level encoders of the ssl track, on ``dig.nn`` layers and ``dig.ops`` pooling.

``GINEncoder`` is the encoder of InfoGraph (Sun et al., ICLR 2020) and of GraphCL's unsupervised setting as
DIG's ``sslgraph.utils.Encoder(gnn="gin")`` builds it: L layers of GIN (Xu et al., ICLR 2019), each
h <- BatchNorm(ReLU(GIN(h))) with a 2-layer MLP, Xavier-uniform weights and zero biases; the graph
embedding concatenates every layer's sum (or mean) pooling: [G, hidden * L]; the node embedding is the
concatenation of the layers' node states: [N, hidden * L].
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dig.nn.conv import GCNConv, GINConv
from dig.ops import CSRGraph, segment, spmm
from dig.tracks.ssl.graphs import GraphBatch


def xavier_init(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every linear layer (DIG's sslgraph encoders)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class GINEncoder(nn.Module):
    def __init__(self, in_features: int, hidden: int = 128, layers: int = 3, pool: str = "sum") -> None:
        super().__init__()
        if pool not in ("sum", "mean"):
            raise ValueError(f"pool must be 'sum' or 'mean', got {pool!r}")
        self.convs = nn.ModuleList(
            GINConv(nn.Sequential(nn.Linear(in_features if k == 0 else hidden, hidden), nn.ReLU(),
                                  nn.Linear(hidden, hidden)))
            for k in range(layers)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.pool, self.hidden, self.layers = pool, hidden, layers
        self.out_features = hidden * layers
        xavier_init(self)

    def forward(self, batch: GraphBatch) -> tuple[Tensor, Tensor]:
        """(graph embeddings [G, hidden * L], node embeddings [N, hidden * L])."""
        graph, _ = CSRGraph.from_edge_index(batch.edge_index, batch.num_nodes)
        x, states = batch.x, []
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = norm(torch.relu(conv(x, graph)))
            states.append(x)
        nodes = torch.cat(states, dim=1)
        return segment(nodes, batch.ptr, self.pool), nodes


class GCNGraphEncoder(nn.Module):
    """MVGRL's graph-level encoder (Hassani & Khasahmadi, ICML 2020, graph code): L GCN layers, each
    h <- PReLU(M h W_k + b_k), where M is the normalised adjacency D̃^-1/2 (A + I) D̃^-1/2 or, given
    ``edge_weight``, the weighted edges as they are (the PPR diffusion view); the graph embedding concatenates
    every layer's sum pooling [G, hidden * L], the node embedding is the last layer's [N, hidden]."""

    def __init__(self, in_features: int, hidden: int = 128, layers: int = 3) -> None:
        super().__init__()
        self.convs = nn.ModuleList(GCNConv(in_features if k == 0 else hidden, hidden) for k in range(layers))
        self.acts = nn.ModuleList(nn.PReLU() for _ in range(layers))
        self.hidden, self.layers, self.out_features = hidden, layers, hidden * layers
        xavier_init(self)

    def forward(self, batch: GraphBatch, edge_index: Tensor | None = None,
                edge_weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(graph embeddings [G, hidden * L], node embeddings [N, hidden]) on the batch's own edges, or on
        ``edge_index`` with ``edge_weight`` taken as the propagation matrix's entries."""
        graph, perm = CSRGraph.from_edge_index(batch.edge_index if edge_index is None else edge_index, batch.num_nodes)
        weight = None if edge_weight is None else edge_weight[perm]
        x, pooled = batch.x, []
        for conv, act in zip(self.convs, self.acts, strict=True):
            if weight is None:
                x = act(conv(x, graph))
            else:  # the diffusion view: M = S as given, no self loops added, no degree normalisation
                x = act(spmm(graph, conv.lin(x), weight) + conv.bias)
            pooled.append(segment(x, batch.ptr, "sum"))
        return torch.cat(pooled, dim=1), x


class GCNNodeEncoder(nn.Module):
    """Node-level GCN encoder (Kipf & Welling, ICLR 2017) of DGI and GRACE: layer k is
    h <- act(Â h W_k + b_k) with output width ``widths[k]``; ``act`` is PReLU (DGI) or ReLU (GRACE on Cora).
    DGI on Cora: widths (512,); GRACE on Cora: widths (256, 128)."""

    def __init__(self, in_features: int, widths: tuple[int, ...] = (512,), activation: str = "prelu") -> None:
        super().__init__()
        if activation not in ("prelu", "relu"):
            raise ValueError(f"activation must be 'prelu' or 'relu', got {activation!r}")
        sizes = (in_features, *widths)
        self.convs = nn.ModuleList(GCNConv(sizes[k], sizes[k + 1]) for k in range(len(widths)))
        self.acts = nn.ModuleList(nn.PReLU() if activation == "prelu" else nn.ReLU() for _ in widths)
        self.out_features = widths[-1]

    def forward(self, x: Tensor, graph: CSRGraph) -> Tensor:
        for conv, act in zip(self.convs, self.acts, strict=True):
            x = act(conv(x, graph))
        return x
