"""Contrastive and mutual-information objectives of the graph ssl methods (lower is better).

- ``nt_xent_graphcl`` (GraphCL, You et al. 2020, as in its code and DIG's): with s_ij = cos(z1_i, z2_j) / tau,
  L = -mean_i log( exp(s_ii) / sum_{j != i} exp(s_ij) ): one direction, the other view's samples as
  negatives, the positive left out of the denominator.
- ``nt_xent_grace`` (GRACE, Zhu et al. 2020): l(u_i) = -log( exp(s_ii) / (sum_j exp(s_ij) + sum_{k != i}
  exp(r_ik)) ) with r_ik = cos(z1_i, z1_k) / tau (intra-view negatives); L = mean over i of
  (l(u_i) + l(v_i)) / 2, the second term with the views swapped.
- ``jsd_local_global`` (Deep InfoMax's Jensen-Shannon estimator, used by InfoGraph, Sun et al. 2020, and
  MVGRL/DGI): with scores t_ng = <h_n, g_g>, positives the pairs (node, its own graph),
  L = mean_neg(softplus(-t) + t - log 2) - mean_pos(log 2 - softplus(-t)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _cosine(a: Tensor, b: Tensor) -> Tensor:
    return F.normalize(a, dim=1) @ F.normalize(b, dim=1).t()


def nt_xent_graphcl(z1: Tensor, z2: Tensor, temperature: float = 0.2) -> Tensor:
    if z1.shape != z2.shape or z1.size(0) < 2:
        raise ValueError(f"NT-Xent needs two views of the same >= 2 samples, got {list(z1.shape)} and {list(z2.shape)}")
    s = _cosine(z1, z2) / temperature
    positive = s.diagonal()
    off_diagonal = s.masked_fill(torch.eye(s.size(0), dtype=torch.bool, device=s.device), float("-inf"))
    return (torch.logsumexp(off_diagonal, dim=1) - positive).mean()


def nt_xent_grace(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    if z1.shape != z2.shape or z1.size(0) < 2:
        raise ValueError(f"NT-Xent needs two views of the same >= 2 samples, got {list(z1.shape)} and {list(z2.shape)}")

    def one_side(a: Tensor, b: Tensor) -> Tensor:
        between = _cosine(a, b) / temperature
        within = (_cosine(a, a) / temperature).masked_fill(
            torch.eye(a.size(0), dtype=torch.bool, device=a.device), float("-inf"))
        return torch.logsumexp(torch.cat([between, within], dim=1), dim=1) - between.diagonal()

    return 0.5 * (one_side(z1, z2) + one_side(z2, z1)).mean()


def jsd_local_global(local: Tensor, global_: Tensor, graph_of_node: Tensor) -> Tensor:
    """``local`` [N, d] node embeddings, ``global_`` [G, d] graph embeddings (G >= 2), ``graph_of_node`` [N]."""
    if global_.size(0) < 2:
        raise ValueError("the JSD estimator needs >= 2 graphs in a batch (the others' nodes are the negatives)")
    scores = local @ global_.t()
    positive = F.one_hot(graph_of_node, global_.size(0)).bool()
    log2 = math.log(2.0)
    e_pos = (log2 - F.softplus(-scores[positive])).mean()
    negatives = scores[~positive]
    e_neg = (F.softplus(-negatives) + negatives - log2).mean()
    return e_neg - e_pos
