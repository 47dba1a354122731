"""Graph convolution layers from the seed lecture, on ``dig.ops``. Parameters are laid out like their PyG
counterparts (same names and shapes), so the same weights give the same outputs.

Every layer takes node features and a ``CSRGraph`` (edges j -> i sorted by destination). Build the graph once
per graph or batch; normalised structures (GCN weights, self loops) are cached on it and reused by every
layer and every forward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dig.ops import CSRGraph, edge_softmax, spmm


def with_self_loops(graph: CSRGraph) -> CSRGraph:
    """The graph with exactly one self loop per node (cached): Ã = A_offdiag + I, as PyG's
    ``add_remaining_self_loops`` / GAT's remove-then-add (a loop the graph already has is not doubled).

    Built from the destination-sorted edges in O(E) without sorting again: the kept (non-loop) edges keep their
    order, and node i's loop goes last among its in-edges."""
    key = "with_self_loops"
    if key not in graph._cache:
        n = graph.num_dst_nodes
        if graph.num_src_nodes != n:
            raise ValueError("self loops need a square graph (as many source as destination nodes)")
        keep = graph.col != graph.row
        kept_row, kept_col = graph.row[keep], graph.col[keep]
        counts = torch.bincount(kept_row, minlength=n) + 1
        rowptr = torch.zeros(n + 1, dtype=torch.long, device=graph.device)
        rowptr[1:] = counts.cumsum(0)
        col = torch.empty(int(rowptr[-1]), dtype=torch.long, device=graph.device)
        # a kept edge moves down by one slot per loop placed before it (one per earlier destination)
        positions = torch.arange(kept_col.numel(), device=graph.device) + kept_row
        col[positions] = kept_col
        loops = torch.arange(n, device=graph.device)
        col[rowptr[1:] - 1] = loops
        looped = CSRGraph(rowptr, col, n)
        looped._cache["row"] = torch.repeat_interleave(loops, counts)
        graph._cache[key] = looped
    return graph._cache[key]


def gcn_norm(graph: CSRGraph, add_self_loops: bool = True) -> tuple[CSRGraph, Tensor]:
    """Symmetric normalisation of Kipf & Welling (2017): Â = D̃^{-1/2} Ã D̃^{-1/2}, with D̃ the in-degree of
    Ã (destination side, as PyG). Returns the graph Â lives on and its edge weights; cached on ``graph``."""
    key = ("gcn_norm", add_self_loops)
    if key not in graph._cache:
        target = with_self_loops(graph) if add_self_loops else graph
        degree = target.in_degree().to(torch.get_default_dtype())
        inv_sqrt = degree.pow(-0.5).masked_fill_(degree == 0, 0.0)
        weight = inv_sqrt[target.col] * inv_sqrt[target.row]
        graph._cache[key] = (target, weight)
    return graph._cache[key]


def gcn_split_norm(graph: CSRGraph, normalize: bool = True) -> tuple[Tensor, Tensor]:
    """GCN's Â = D̃^{-1/2} (A_offdiag + I) D̃^{-1/2} split into its off-diagonal part, on ``graph``'s own edges
    (weight 0 on a self loop the graph already has, since PyG's ``add_remaining_self_loops`` replaces it), and
    its diagonal, one weight per node: Â X = spmm(graph, X, weight) + loop_weight ⊙ X. The same operator as
    ``gcn_norm`` without building the looped graph, which is what a new graph per batch pays for (the cold
    path). With ``normalize=False`` the weights are 1 off the diagonal (0 on existing loops) and 1 on it.
    Cached on ``graph``."""
    key = ("gcn_split_norm", normalize)
    if key not in graph._cache:
        if graph.num_src_nodes != graph.num_dst_nodes:
            raise ValueError("self loops need a square graph (as many source as destination nodes)")
        off_diagonal = graph.col != graph.row
        has_loops = not bool(off_diagonal.all())
        dtype = torch.get_default_dtype()
        if normalize:
            degree = graph.in_degree() + 1  # D̃_i = |non-loop in-edges of i| + 1
            if has_loops:
                degree -= torch.bincount(graph.row[~off_diagonal], minlength=graph.num_dst_nodes)
            inv_sqrt = degree.to(dtype).pow_(-0.5)
            weight = inv_sqrt[graph.col] * inv_sqrt[graph.row]
            loop_weight = inv_sqrt.square()
        else:
            weight = torch.ones(graph.num_edges, dtype=dtype, device=graph.device)
            loop_weight = torch.ones(graph.num_dst_nodes, dtype=dtype, device=graph.device)
        if has_loops:
            weight = weight * off_diagonal
        graph._cache[key] = (weight, loop_weight)
    return graph._cache[key]


class GCNConv(nn.Module):
    """GCN layer (Kipf & Welling, ICLR 2017): X' = Â X W + b. With ``normalize=False``, Â = Ã = A + I with unit
    weights (a sum over the neighbours and the node itself, as in GNNExplainer's reference GCN: with constant
    node features the symmetric normalisation makes Â·1 ≈ 1 and erases the degrees the synthetic benchmarks
    are about); unlike PyG's ``normalize=False``, the self loops are still added."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True, add_self_loops: bool = True,
                 normalize: bool = True) -> None:
        super().__init__()
        self.add_self_loops, self.normalize = add_self_loops, normalize
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.xavier_uniform_(self.lin.weight)

    def forward(self, x: Tensor, graph: CSRGraph, edge_weight: Tensor | None = None) -> Tensor:
        """``edge_weight`` [E] (in ``graph``'s edge order) multiplies each edge's normalised message, as PyG's
        explain masks do; the normalisation itself and the self loops are unweighted."""
        if edge_weight is not None and edge_weight.shape != (graph.num_edges,):
            raise ValueError(f"edge_weight must be [{graph.num_edges}] (one per edge of the graph), "
                             f"got {list(edge_weight.shape)}")
        h = self.lin(x)
        if self.add_self_loops:
            weight, loop_weight = gcn_split_norm(graph, self.normalize)
            weight = weight.to(x.dtype) if edge_weight is None else weight.to(x.dtype) * edge_weight.to(x.dtype)
            out = spmm(graph, h, weight).addcmul_(h, loop_weight.to(x.dtype).unsqueeze(1))
        else:
            weight = gcn_norm(graph, False)[1].to(x.dtype) if self.normalize else None
            if edge_weight is not None:
                weight = edge_weight.to(x.dtype) if weight is None else weight * edge_weight.to(x.dtype)
            out = spmm(graph, h, weight)
        return out.add_(self.bias) if self.bias is not None else out  # in place: one [N, F] buffer per call


class SGConv(nn.Module):
    """Simplified graph convolution (Wu et al., ICML 2019): X' = Â^K X W + b. The K-hop propagation has no
    parameters; with ``cached=True`` it is computed on the first call and reused (transductive training, as
    PyG's ``cached``); call ``reset_cache()`` when the graph or features change."""

    def __init__(self, in_channels: int, out_channels: int, K: int = 2, bias: bool = True, cached: bool = False) -> None:
        super().__init__()
        self.K, self.cached = K, cached
        self.lin = nn.Linear(in_channels, out_channels, bias=bias)
        self._propagated: Tensor | None = None

    def reset_cache(self) -> None:
        self._propagated = None

    def propagate(self, x: Tensor, graph: CSRGraph) -> Tensor:
        """Â^K X."""
        target, weight = gcn_norm(graph, True)
        weight = weight.to(x.dtype)
        for _ in range(self.K):
            x = spmm(target, x, weight)
        return x

    def forward(self, x: Tensor, graph: CSRGraph) -> Tensor:
        if self._propagated is None or not self.cached:
            features = self.propagate(x, graph)
            if self.cached:
                self._propagated = features.detach()
        else:
            features = self._propagated
        return self.lin(features)


class GINConv(nn.Module):
    """Graph isomorphism network layer (Xu et al., ICLR 2019): h_i' = MLP((1 + eps) h_i + sum_j h_j)."""

    def __init__(self, mlp: nn.Module, eps: float = 0.0, train_eps: bool = False) -> None:
        super().__init__()
        self.nn = mlp
        if train_eps:
            self.eps = nn.Parameter(torch.tensor([float(eps)]))
        else:
            self.register_buffer("eps", torch.tensor([float(eps)]))

    def forward(self, x: Tensor, graph: CSRGraph, edge_weight: Tensor | None = None) -> Tensor:
        """``edge_weight`` [E] multiplies each neighbour's message (explanation masks)."""
        weight = None if edge_weight is None else edge_weight.to(x.dtype)
        return self.nn((1 + self.eps) * x[: graph.num_dst_nodes] + spmm(graph, x, weight))


class SAGEConv(nn.Module):
    """GraphSAGE layer (Hamilton et al., NeurIPS 2017): h_i' = W_l aggr_{j in N(i)} h_j + W_r h_i, with aggr
    mean or max. Works on bipartite sampled blocks: destination nodes are the first rows of ``x``."""

    def __init__(self, in_channels: int, out_channels: int, aggr: str = "mean", bias: bool = True) -> None:
        super().__init__()
        if aggr not in ("mean", "max"):
            raise ValueError(f"SAGEConv aggr must be 'mean' or 'max', got {aggr!r}")
        self.aggr = aggr
        self.lin_l = nn.Linear(in_channels, out_channels, bias=bias)
        self.lin_r = nn.Linear(in_channels, out_channels, bias=False)

    def forward(self, x: Tensor, graph: CSRGraph, edge_weight: Tensor | None = None) -> Tensor:
        aggregated = spmm(graph, x, edge_weight, reduce="sum" if edge_weight is not None else self.aggr)
        return self.lin_l(aggregated) + self.lin_r(x[: graph.num_dst_nodes])


class GATConv(nn.Module):
    """Graph attention layer (Veličković et al., ICLR 2018), multi-head:

        alpha_ij = softmax_j(LeakyReLU(a_src . W h_j + a_dst . W h_i)),   h_i' = ||_heads sum_j alpha_ij W h_j

    (concatenated heads, or their mean with ``concat=False``). Self loops are added as in PyG."""

    def __init__(
        self, in_channels: int, out_channels: int, heads: int = 1, concat: bool = True,
        negative_slope: float = 0.2, add_self_loops: bool = True, bias: bool = True,
    ) -> None:
        super().__init__()
        self.heads, self.out_channels, self.concat = heads, out_channels, concat
        self.negative_slope, self.add_self_loops = negative_slope, add_self_loops
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        self.bias = nn.Parameter(torch.zeros(heads * out_channels if concat else out_channels)) if bias else None
        for parameter in (self.lin.weight, self.att_src, self.att_dst):
            nn.init.xavier_uniform_(parameter)

    def forward(self, x: Tensor, graph: CSRGraph) -> Tensor:
        target = with_self_loops(graph) if self.add_self_loops else graph
        h = self.lin(x).view(-1, self.heads, self.out_channels)
        score_src = (h * self.att_src).sum(-1)
        score_dst = (h * self.att_dst).sum(-1)
        scores = score_src.index_select(0, target.col) + score_dst.index_select(0, target.row)
        alpha = edge_softmax(target, nn.functional.leaky_relu(scores, self.negative_slope))
        out = torch.stack([spmm(target, h[:, k], alpha[:, k].contiguous()) for k in range(self.heads)], dim=1)
        out = out.reshape(-1, self.heads * self.out_channels) if self.concat else out.mean(dim=1)
        return out + self.bias if self.bias is not None else out
