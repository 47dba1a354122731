"""Synthetic graphs with planted motifs, the standard ground truth for explainers, generated from a seed.

Node classification (GNNExplainer, Ying et al., NeurIPS 2019, its Section 5 and generator code):
- ``ba-shapes``: a Barabási–Albert base of 300 nodes (5 edges per new node), 80 five-node "house" motifs
  attached by one edge each to evenly spaced base nodes, then 1 % random edges (the reference generator's
  ``perturb(G, 0.01)``; the paper's text says 0.1 N). Classes: base 0; house nodes
  1 (the two under the roof), 2 (the two at the bottom), 3 (the roof).
- ``ba-community``: two BA-Shapes graphs joined by 350 random edges; classes 0-3 and 4-7 by community;
  10-dimensional features drawn from N(-1, 1) in the first community and N(+1, 1) in the second.
- ``tree-cycles``: a balanced binary tree of height 8 (511 nodes), 60 six-cycles attached, 1 % random edges;
  class 1 on cycle nodes.
- ``tree-grid``: the same tree, 80 3x3 grids attached, 10 % random edges; class 1 on grid nodes.
Graph classification (PGExplainer, Luo et al., NeurIPS 2020):
- ``ba-2motifs``: 1,000 graphs, a BA base of 20 nodes (1 edge per new node) with one house (class 0) or one
  five-cycle (class 1) attached, 500 of each.
Ground truth: the edges inside the motif instance (the attaching edge is not part of it).
"""

from __future__ import annotations

import numpy as np

from dig.tracks.xgraph.protocol import GraphSet, edges_to_numpy

HOUSE_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 0), (4, 1)]  # 4 is the roof on top of 0-1
HOUSE_ROLES = [1, 1, 2, 2, 3]
FEATURES = 10


def barabasi_albert(num_nodes: int, edges_per_node: int, rng: np.random.RandomState) -> list[tuple[int, int]]:
    """Preferential attachment as networkx's ``barabasi_albert_graph``: a star on m + 1 nodes, then every new
    node links to m distinct nodes drawn with probability proportional to their degree."""
    m = edges_per_node
    edges = [(0, k) for k in range(1, m + 1)]
    repeated = [0] * m + list(range(1, m + 1))
    for node in range(m + 1, num_nodes):
        targets: set[int] = set()
        while len(targets) < m:
            targets.add(repeated[rng.randint(len(repeated))])
        for target in sorted(targets):
            edges.append((target, node))
            repeated.extend([target, node])
    return edges


def balanced_tree(height: int) -> tuple[int, list[tuple[int, int]]]:
    nodes = 2 ** (height + 1) - 1
    return nodes, [((child - 1) // 2, child) for child in range(1, nodes)]


def cycle(length: int) -> list[tuple[int, int]]:
    return [(k, (k + 1) % length) for k in range(length)]


def grid(side: int) -> list[tuple[int, int]]:
    out = []
    for r in range(side):
        for c in range(side):
            if c + 1 < side:
                out.append((r * side + c, r * side + c + 1))
            if r + 1 < side:
                out.append((r * side + c, (r + 1) * side + c))
    return out


def _add_random_edges(edges: list[tuple[int, int]], num_nodes: int, count: int,
                      rng: np.random.RandomState) -> list[tuple[int, int]]:
    """``count`` new undirected edges between uniformly drawn distinct nodes not already linked."""
    present = {(min(u, v), max(u, v)) for u, v in edges}
    added = []
    while len(added) < count:
        u, v = rng.randint(num_nodes, size=2)
        key = (min(u, v), max(u, v))
        if u != v and key not in present:
            present.add(key)
            added.append((int(u), int(v)))
    return edges + added


def _planted(base_nodes: int, base_edges: list[tuple[int, int]], motif_edges: list[tuple[int, int]],
             motif_size: int, count: int, roles: list[int]) -> tuple[int, list, list, np.ndarray, np.ndarray]:
    """Attach ``count`` motifs, each by one edge from its node 0 to evenly spaced base nodes."""
    edges, motif_pairs = list(base_edges), []
    labels = [0] * base_nodes
    motif = [-1] * base_nodes
    spacing = base_nodes // count
    for k in range(count):
        start = base_nodes + k * motif_size
        inner = [(start + u, start + v) for u, v in motif_edges]
        edges.extend(inner)
        motif_pairs.extend(inner)
        edges.append((k * spacing, start))
        labels.extend(roles)
        motif.extend([k] * motif_size)
    return base_nodes + count * motif_size, edges, motif_pairs, np.asarray(labels), np.asarray(motif)


def _node_set(num_nodes: int, edges: list[tuple[int, int]], motif_pairs: list[tuple[int, int]], labels: np.ndarray,
              motif: np.ndarray, x: np.ndarray, num_classes: int) -> GraphSet:
    edge_index = edges_to_numpy(edges)
    truth_pairs = {(u, v) for u, v in motif_pairs} | {(v, u) for u, v in motif_pairs}
    edge_truth = np.array([(int(u), int(v)) in truth_pairs for u, v in edge_index.T], dtype=bool)
    return GraphSet(
        task="node", x=x.astype(np.float32), edge_index=edge_index,
        node_ptr=np.array([0, num_nodes], dtype=np.int64), edge_ptr=np.array([0, edge_index.shape[1]], dtype=np.int64),
        y=labels.astype(np.int64), edge_truth=edge_truth, node_truth=motif >= 0, motif=motif.astype(np.int64),
        num_classes=num_classes,
    )


def ba_shapes(seed: int = 0, base: int = 300, houses: int = 80, noise: float = 0.01) -> GraphSet:
    rng = np.random.RandomState(seed)
    nodes, edges, motif_pairs, labels, motif = _planted(base, barabasi_albert(base, 5, rng), HOUSE_EDGES, 5, houses,
                                                        HOUSE_ROLES)
    edges = _add_random_edges(edges, nodes, int(noise * len(edges)), rng)
    return _node_set(nodes, edges, motif_pairs, labels, motif, np.ones((nodes, FEATURES)), 4)


def ba_community(seed: int = 0, bridges: int = 350) -> GraphSet:
    rng = np.random.RandomState(seed)
    parts = [ba_shapes(seed=int(rng.randint(2**31))) for _ in range(2)]
    offset = parts[0].x.shape[0]
    edges = [tuple(e) for e in parts[0].edge_index.T.tolist()] + [
        (u + offset, v + offset) for u, v in parts[1].edge_index.T.tolist()]
    undirected = sorted({(min(u, v), max(u, v)) for u, v in edges})
    for _ in range(bridges):
        u, v = rng.randint(offset), offset + rng.randint(offset)
        undirected.append((int(u), int(v)))
    undirected = sorted(set(undirected))
    motif = np.concatenate([parts[0].motif, np.where(parts[1].motif >= 0, parts[1].motif + parts[0].motif.max() + 1, -1)])
    motif_pairs = [(u, v) for u, v in undirected if motif[u] >= 0 and motif[u] == motif[v]]
    labels = np.concatenate([parts[0].y, parts[1].y + 4])
    x = np.concatenate([rng.normal(-1.0, 1.0, (offset, FEATURES)), rng.normal(1.0, 1.0, (offset, FEATURES))])
    return _node_set(2 * offset, undirected, motif_pairs, labels, motif, x, 8)


def tree_motifs(motif_edges: list[tuple[int, int]], motif_size: int, count: int, noise: float, seed: int) -> GraphSet:
    rng = np.random.RandomState(seed)
    base, tree = balanced_tree(8)
    nodes, edges, motif_pairs, labels, motif = _planted(base, tree, motif_edges, motif_size, count, [1] * motif_size)
    edges = _add_random_edges(edges, nodes, int(noise * len(edges)), rng)
    return _node_set(nodes, edges, motif_pairs, labels, motif, np.ones((nodes, FEATURES)), 2)


def tree_cycles(seed: int = 0) -> GraphSet:
    return tree_motifs(cycle(6), 6, 60, 0.01, seed)


def tree_grid(seed: int = 0) -> GraphSet:
    return tree_motifs(grid(3), 9, 80, 0.1, seed)


def ba_2motifs(seed: int = 0, graphs: int = 1_000, base: int = 20) -> GraphSet:
    rng = np.random.RandomState(seed)
    xs, edge_parts, truth, ys, motif, node_ptr, edge_ptr = [], [], [], [], [], [0], [0]
    for g in range(graphs):
        label = g % 2
        motif_edges = HOUSE_EDGES if label == 0 else cycle(5)
        edges = barabasi_albert(base, 1, rng)
        inner = [(base + u, base + v) for u, v in motif_edges]
        edges = edges + inner + [(int(rng.randint(base)), base)]
        local = edges_to_numpy(edges)
        pairs = set(inner) | {(v, u) for u, v in inner}
        truth.append(np.array([(int(u), int(v)) in pairs for u, v in local.T], dtype=bool))
        edge_parts.append(local + node_ptr[-1])
        xs.append(np.full((base + 5, FEATURES), 0.1))
        motif.append(np.array([-1] * base + [g] * 5))
        ys.append(label)
        node_ptr.append(node_ptr[-1] + base + 5)
        edge_ptr.append(edge_ptr[-1] + local.shape[1])
    motif_all = np.concatenate(motif)
    return GraphSet(
        task="graph", x=np.concatenate(xs).astype(np.float32), edge_index=np.concatenate(edge_parts, axis=1),
        node_ptr=np.asarray(node_ptr, dtype=np.int64), edge_ptr=np.asarray(edge_ptr, dtype=np.int64),
        y=np.asarray(ys, dtype=np.int64), edge_truth=np.concatenate(truth), node_truth=motif_all >= 0,
        motif=motif_all.astype(np.int64), num_classes=2,
    )
