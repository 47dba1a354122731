"""Node-level datasets of the ssl track: contextual stochastic block models and Zachary's karate club.

- ``csbm`` (Deshpande et al., NeurIPS 2018): two equal classes; an undirected edge joins two nodes of the
  same class with probability p_in and of different classes with p_out, chosen so that the mean degree is
  ``degree`` and a fraction ``homophily`` of the edges join same-class nodes:
  p_in = 2 * degree * homophily / n, p_out = 2 * degree * (1 - homophily) / n. Features: x_i = y_i * mu / 2 * u
  + z_i, with y_i = +-1, u a random unit vector in d dimensions and z_i ~ N(0, I_d); the class means lie
  ``signal`` (= mu) apart, so a classifier on features alone tops out at Phi(mu / 2) accuracy (0.69 at mu = 1).
  Both settings are registered: ``csbm-homophilous`` (homophily 0.8) and ``csbm-heterophilous`` (0.2); at
  0.2 the graph is as informative as at 0.8 but a mean-aggregating encoder mixes in the wrong class.
  Every graph is generated from a fixed seed of its own (the dataset does not change with the job's seed).
  Split: 20 training nodes per class, 200 validation nodes, the rest test (Planetoid's sizes scaled).
- ``karate-club``: Zachary's club (34 members, 78 friendships), with the four communities that PyG's
  ``KarateClub`` and Kipf & Welling (2017) use as labels, one-hot node identities as features, PyG's
  training set (the first member of each community), 10 validation and 20 test members (fixed seed).
  Its edges come from networkx (a torch dependency); the labels are PyG's, checked equal in the tests.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from dig.tracks.ssl.protocol import NodeTask

# PyG's KarateClub community labels (modularity-based clustering, as in Kipf & Welling's GCN paper).
KARATE_COMMUNITIES = (1, 1, 1, 1, 3, 3, 3, 1, 0, 1, 3, 1, 1, 1, 0, 0, 3, 1, 0, 1, 0, 1,
                      0, 0, 2, 2, 0, 0, 2, 0, 0, 2, 0, 0)


def _undirected(pairs: np.ndarray) -> torch.Tensor:
    """[M, 2] pairs i < j -> [2, 2M] edge_index with both directions."""
    edges = torch.as_tensor(pairs.T.copy(), dtype=torch.long)
    return torch.cat([edges, edges.flip(0)], dim=1)


def csbm(nodes: int = 1000, degree: float = 10.0, homophily: float = 0.8, signal: float = 1.0,
         features: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(node features [n, d] float32, edge_index [2, E], labels [n] in {0, 1}); see the module docstring."""
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"homophily is a fraction of edges in [0, 1], got {homophily}")
    p_in, p_out = 2 * degree * homophily / nodes, 2 * degree * (1 - homophily) / nodes
    if max(p_in, p_out) > 1.0:
        raise ValueError(f"degree {degree} with homophily {homophily} needs an edge probability above 1 on {nodes} nodes")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(nodes) % 2)
    i, j = np.triu_indices(nodes, k=1)
    probability = np.where(labels[i] == labels[j], p_in, p_out)
    chosen = rng.random(i.size) < probability
    direction = rng.normal(size=features)
    direction /= np.linalg.norm(direction)
    sign = 2.0 * labels - 1.0
    x = sign[:, None] * (signal / 2.0) * direction[None, :] + rng.normal(size=(nodes, features))
    pairs = np.stack([i[chosen], j[chosen]], axis=1)
    return torch.as_tensor(x, dtype=torch.float32), _undirected(pairs), labels.astype(np.int64)


def _split(labels: np.ndarray, train_per_class: int, val: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(labels.size)
    train = np.concatenate([order[labels[order] == c][:train_per_class] for c in np.unique(labels)])
    rest = order[~np.isin(order, train)]
    return np.sort(train), np.sort(rest[:val]), np.sort(rest[val:])


class CSBMTask:
    level = "node"

    def __init__(self, name: str, homophily: float, seed: int) -> None:
        self.name, self.homophily, self.seed = name, homophily, seed

    @lru_cache(maxsize=1)  # noqa: B019 - one instance per registry; 1,000 nodes
    def load(self) -> NodeTask:
        x, edge_index, labels = csbm(homophily=self.homophily, seed=self.seed)
        train, val, test = _split(labels, train_per_class=20, val=200, seed=self.seed)
        return NodeTask(self.name, x, edge_index, labels, train, val, test,
                        f"CSBM: 1,000 nodes, 2 classes, mean degree 10, homophily {self.homophily}, "
                        f"class means 1 apart in 32 dims, generator seed {self.seed}")


class KarateClubTask:
    level = "node"

    @lru_cache(maxsize=1)  # noqa: B019
    def load(self) -> NodeTask:
        import networkx as nx

        graph = nx.karate_club_graph()
        pairs = np.array(sorted((min(a, b), max(a, b)) for a, b in graph.edges()), dtype=np.int64)
        labels = np.asarray(KARATE_COMMUNITIES, dtype=np.int64)
        train = np.sort([int(np.flatnonzero(labels == c)[0]) for c in range(4)])
        rest = np.random.default_rng(0).permutation(np.setdiff1d(np.arange(34), train))
        return NodeTask("karate-club", torch.eye(34), _undirected(pairs), labels, train,
                        np.sort(rest[:10]), np.sort(rest[10:]),
                        "Zachary's karate club, PyG's four communities, one-hot identities")
