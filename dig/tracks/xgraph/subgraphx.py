"""SubgraphX (Yuan, Yu, Wang, Zhang, Ji, "On Explainability of Graph Neural Networks via Subgraph
Explorations", ICML 2021): Monte-Carlo tree search over connected subgraphs, scored by Shapley values.

- Value of a node set C: v(C) = p_c of the model on the graph where only C's nodes take part (the others
  keep no edge and have zero features: DIG's zero filling with the split of their edges).
- Score of a subgraph S: its Shapley value as one player among the other nodes within L hops of S (L = the
  model's number of layers: nodes farther away cannot change the prediction), by Monte-Carlo sampling:
  draw a random order of the players P and S, let C be the players before S, and average
  v(C ∪ S ∪ R) - v(C ∪ R) over ``samples`` orders (R: the nodes outside the L-hop region, always present).
  Every coalition of one expansion (``samples`` x 2 per child) is scored in ONE batched forward pass.
- Search: the root is the whole graph (for a node, its L-hop computation graph); a child prunes one of the
  ``expand_nodes`` lowest-degree nodes and keeps the largest connected component (for a node: the component
  holding it). Each of ``rollouts`` rollouts descends from the root, picking the child maximising
  Q + c_puct * P * sqrt(sum_children N) / (1 + N) (P: the child's Shapley score, Q: mean reward), until a
  subgraph has at most ``min_nodes`` nodes, and adds that leaf's score to every node on the path.
- Answer: the explored subgraph of at most ``max_nodes`` nodes with the highest score (the smallest one when
  none is that small), as a 0/1 node mask.
- ``max_root_nodes`` (not in the paper; None there): for a node whose computation graph is larger, the search
  and the Shapley players are restricted to its ``max_root_nodes`` nearest nodes (breadth-first from the
  target, ties by node id) and the edges among them; the other nodes take no part and get mask 0. The search
  costs about (root size)^2 forward rows per rollout, so this bounds the cost of hub-heavy computation graphs
  (ba-community: up to 306 nodes) at the price of explaining the model on the truncated neighbourhood.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from dig.ops import CSRGraph
from dig.tracks.xgraph.protocol import Explanation, Instance


def coalition_values(model: nn.Module, instance: Instance, keep: Tensor) -> Tensor:
    """v for every row of ``keep`` [B, n] (bool): p_c with only the kept nodes taking part, in one forward pass
    over B copies of the instance.

    A copy holds the kept nodes' features and only the edges between kept nodes (DIG's zero filling and
    split); the others keep zero features and no edge. Absent edges are left out of the batch, not given
    weight 0, so that a model normalising by degree sees the split graph too. For a node the copy holds only
    the kept nodes and the target (with zero features when it is not kept): nothing else can reach it. For a
    graph every node stays (the readout pools over all of them)."""
    copies, n = keep.shape
    src, dst = instance.edge_index
    if instance.target is not None:
        present = keep.clone()
        present[:, instance.target] = True
    else:
        present = torch.ones_like(keep)
    copy_of, node_of = present.nonzero(as_tuple=True)  # row-major: copies in order, nodes ascending within one
    local = torch.full((copies, n), -1, dtype=torch.long)
    local[copy_of, node_of] = torch.arange(copy_of.numel())
    edge_copy, edge_id = (keep[:, src] & keep[:, dst]).nonzero(as_tuple=True)
    edge_index = torch.stack([local[edge_copy, src[edge_id]], local[edge_copy, dst[edge_id]]])
    graph, _ = CSRGraph.from_edge_index(edge_index, copy_of.numel())  # already grouped by destination: no sort
    x = instance.x[node_of] * keep[copy_of, node_of].unsqueeze(-1).to(instance.x.dtype)
    if instance.target is not None:
        logits = model(x, graph, None, None)[local[:, instance.target]]
    else:
        logits = model(x, graph, None, copy_of)
    return torch.softmax(logits, dim=-1)[:, instance.label]


def neighbourhood(adjacency: list[list[int]], nodes: set[int], hops: int) -> set[int]:
    region, frontier = set(nodes), set(nodes)
    for _ in range(hops):
        frontier = {v for u in frontier for v in adjacency[u]} - region
        region |= frontier
    return region


def shapley_masks(subgraph: frozenset[int], adjacency: list[list[int]], hops: int, samples: int,
                  rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """[samples, n] keep masks with and without ``subgraph`` for the Monte-Carlo L-Shapley estimate.

    A random order of the players and S is drawn as one uniform key per player and one for S: the players
    before S are those with a smaller key (all orders equally likely, without a Python loop per sample)."""
    n = len(adjacency)
    region = np.array(sorted(neighbourhood(adjacency, set(subgraph), hops)), dtype=np.int64)
    members = np.array(sorted(subgraph), dtype=np.int64)
    players = np.setdiff1d(region, members, assume_unique=True)
    keys = rng.rand(samples, len(players) + 1)
    without = np.ones((samples, n), dtype=bool)
    without[:, region] = False
    without[:, players] = keys[:, :-1] < keys[:, -1:]
    with_s = without.copy()
    with_s[:, members] = True
    return with_s, without


def nearest_nodes(adjacency: list[list[int]], start: int, count: int) -> np.ndarray:
    """The ``count`` nodes nearest ``start`` in breadth-first order (ties by node id), sorted by id."""
    order, frontier, seen = [start], [start], {start}
    while frontier and len(order) < count:
        frontier = sorted({v for u in frontier for v in adjacency[u]} - seen)
        seen.update(frontier)
        order.extend(frontier)
    return np.array(sorted(order[:count]), dtype=np.int64)


def induced_instance(instance: Instance, nodes: np.ndarray) -> Instance:
    """``instance`` restricted to ``nodes`` (sorted local ids) and the edges among them, renumbered."""
    local = torch.full((instance.num_nodes,), -1, dtype=torch.long)
    index = torch.from_numpy(nodes)
    local[index] = torch.arange(len(nodes))
    src, dst = instance.edge_index
    inside = (local[src] >= 0) & (local[dst] >= 0)
    edge_index = torch.stack([local[src[inside]], local[dst[inside]]])
    graph, perm = CSRGraph.from_edge_index(edge_index, len(nodes))
    return Instance(instance.x[index], edge_index[:, perm], graph, int(local[instance.target]), instance.label,
                    instance.edge_truth[inside][perm], instance.node_truth[index])


def exact_shapley(model: nn.Module, instance: Instance, subgraph: frozenset[int], hops: int) -> float:
    """The exact L-Shapley value of ``subgraph`` by enumerating every coalition (tests, tiny graphs only)."""
    adjacency = _adjacency(instance)
    n = instance.num_nodes
    region = neighbourhood(adjacency, set(subgraph), hops)
    players = sorted(region - subgraph)
    m = len(players)
    if m > 14:
        raise ValueError(f"{m} players: too many to enumerate")
    rows_with, rows_without, weights = [], [], []
    for bits in range(2**m):
        chosen = [players[k] for k in range(m) if bits >> k & 1]
        without = np.ones(n, dtype=bool)
        without[sorted(region)] = False
        without[chosen] = True
        with_s = without.copy()
        with_s[sorted(subgraph)] = True
        rows_with.append(with_s)
        rows_without.append(without)
        size = len(chosen)
        weights.append(math.factorial(size) * math.factorial(m - size) / math.factorial(m + 1))
    with torch.no_grad():
        gain = coalition_values(model, instance, torch.from_numpy(np.array(rows_with))) - \
            coalition_values(model, instance, torch.from_numpy(np.array(rows_without)))
    return float((gain.double() * torch.tensor(weights, dtype=torch.float64)).sum())


def _adjacency(instance: Instance) -> list[list[int]]:
    adjacency: list[set[int]] = [set() for _ in range(instance.num_nodes)]
    for u, v in instance.edge_index.T.tolist():
        if u != v:
            adjacency[u].add(v)
            adjacency[v].add(u)
    return [sorted(a) for a in adjacency]


def _component(adjacency: list[list[int]], nodes: frozenset[int], start: int) -> frozenset[int]:
    seen, stack = {start}, [start]
    while stack:
        for v in adjacency[stack.pop()]:
            if v in nodes and v not in seen:
                seen.add(v)
                stack.append(v)
    return frozenset(seen)


@dataclass
class _TreeNode:
    nodes: frozenset[int]
    score: float = 0.0
    visits: int = 0
    total: float = 0.0
    children: list[_TreeNode] | None = None
    expanded: bool = False

    def q(self) -> float:
        return self.total / self.visits if self.visits else 0.0


@dataclass
class SubgraphX:
    rollouts: int = 20
    c_puct: float = 10.0
    min_nodes: int = 5
    max_nodes: int = 6
    expand_nodes: int = 14
    samples: int = 100
    hops: int | None = None  # L; None: the model's ``num_layers``
    max_root_nodes: int | None = None  # None: the whole computation graph (the paper)
    forward_passes: int = field(default=0, init=False)  # batched passes of the last explanation (for benchmarks)

    def _children(self, tree: _TreeNode, adjacency: list[list[int]], target: int | None) -> list[frozenset[int]]:
        degree = {u: sum(v in tree.nodes for v in adjacency[u]) for u in tree.nodes}
        candidates = sorted((u for u in tree.nodes if u != target), key=lambda u: (degree[u], u))[: self.expand_nodes]
        children = []
        for removed in candidates:
            rest = tree.nodes - {removed}
            if target is not None:
                child = _component(adjacency, rest, target)
            else:
                child, left = frozenset(), set(rest)
                while left:
                    part = _component(adjacency, rest, min(left))
                    left -= part
                    if (len(part), -min(part)) > (len(child), -min(child, default=0)):
                        child = part
            if child and child not in children:
                children.append(child)
        return children

    def _score(self, model: nn.Module, instance: Instance, subgraphs: list[frozenset[int]],
               adjacency: list[list[int]], hops: int, rng: np.random.RandomState, batched: bool = True) -> list[float]:
        masks = [shapley_masks(s, adjacency, hops, self.samples, rng) for s in subgraphs]
        with torch.no_grad():
            if batched:
                keep = torch.from_numpy(np.concatenate([np.concatenate(pair) for pair in masks]))
                values = coalition_values(model, instance, keep).view(len(subgraphs), 2, self.samples)
                self.forward_passes += 1
                return (values[:, 0] - values[:, 1]).mean(dim=1).tolist()
            scores = []
            for with_s, without in masks:  # one forward per coalition: the unbatched reference for benchmarks
                gains = []
                for a, b in zip(with_s, without, strict=True):
                    pair = coalition_values(model, instance, torch.from_numpy(np.stack([a, b])))
                    self.forward_passes += 1
                    gains.append(float(pair[0] - pair[1]))
                scores.append(float(np.mean(gains)))
            return scores

    def __call__(self, model: nn.Module, instance: Instance, seed: int, batched: bool = True) -> Explanation:
        if self.max_root_nodes is not None and instance.target is not None and instance.num_nodes > self.max_root_nodes:
            nearest = nearest_nodes(_adjacency(instance), instance.target, self.max_root_nodes)
            inner = self._search(model, induced_instance(instance, nearest), seed, batched)
            mask = torch.zeros(instance.num_nodes)
            mask[torch.from_numpy(nearest)] = inner.node_mask
            return Explanation(None, mask, instance.target, instance.label)
        return self._search(model, instance, seed, batched)

    def _search(self, model: nn.Module, instance: Instance, seed: int, batched: bool) -> Explanation:
        rng = np.random.RandomState(seed)
        self.forward_passes = 0
        hops = self.hops if self.hops is not None else int(getattr(model, "num_layers", 3))
        adjacency = _adjacency(instance)
        target = instance.target
        start = frozenset(range(instance.num_nodes))
        root = _TreeNode(_component(adjacency, start, target) if target is not None else start)
        table: dict[frozenset[int], _TreeNode] = {root.nodes: root}
        for _ in range(self.rollouts):
            path, current = [root], root
            while len(current.nodes) > self.min_nodes:
                if not current.expanded:
                    current.expanded = True
                    subsets = self._children(current, adjacency, target)
                    fresh = [s for s in subsets if s not in table]
                    for subset, score in zip(fresh, self._score(model, instance, fresh, adjacency, hops, rng, batched)
                                             if fresh else [], strict=True):
                        table[subset] = _TreeNode(subset, score)
                    current.children = [table[s] for s in subsets]
                if not current.children:
                    break
                visits = sum(c.visits for c in current.children)
                current = max(current.children,
                              key=lambda c: c.q() + self.c_puct * c.score * math.sqrt(visits) / (1 + c.visits))
                path.append(current)
            reward = current.score
            for node in path:
                node.visits += 1
                node.total += reward
        small = [t for t in table.values() if len(t.nodes) <= self.max_nodes]
        best = max(small, key=lambda t: (t.score, -len(t.nodes))) if small else min(table.values(), key=lambda t: len(t.nodes))
        mask = torch.zeros(instance.num_nodes)
        mask[sorted(best.nodes)] = 1.0
        return Explanation(None, mask, target, instance.label)


def build_subgraphx(**hparams) -> SubgraphX:
    return SubgraphX(**hparams)
