"""TU Dortmund's graph-kernel file format (Morris et al., 2020), shared by every track that reads it.

A dataset NAME is a folder of text files: ``NAME_A.txt`` (one edge per line, ``i, j`` with 1-based node ids
over the whole set), ``NAME_graph_indicator.txt`` (the 1-based graph of each node, in order),
``NAME_graph_labels.txt`` (one label per graph), optionally ``NAME_node_labels.txt`` (one integer per node)
and ``NAME_node_attributes.txt`` (comma-separated floats per node), e.g. MUTAG (node labels) or PROTEINS
(node labels and one attribute).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dig.errors import DataError


@dataclass(frozen=True)
class TUFiles:
    edges: np.ndarray  # [E, 2] 0-based node ids, sorted by graph, then by source node
    graph_of_node: np.ndarray  # [N] 0-based
    graph_labels: np.ndarray  # [G] as written in the file
    node_labels: np.ndarray | None  # [N] int
    node_attributes: np.ndarray | None  # [N, A] float

    @property
    def num_graphs(self) -> int:
        return int(self.graph_labels.size)

    def node_features(self) -> np.ndarray:
        """One-hot node labels, then the node attributes, as float32 [N, F]."""
        parts = []
        if self.node_labels is not None:
            parts.append(np.eye(int(self.node_labels.max()) + 1, dtype=np.float32)[self.node_labels])
        if self.node_attributes is not None:
            parts.append(self.node_attributes.astype(np.float32))
        if not parts:
            return np.ones((self.graph_of_node.size, 1), dtype=np.float32)
        return np.concatenate(parts, axis=1)


def _read_rows(path: Path, kind: type, columns: int | None = None) -> np.ndarray:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append([kind(v) for v in line.replace(",", " ").split()])
        except ValueError:
            what = "integers" if kind is int else "numbers"
            raise DataError(f"{path}:{number}: not {what}: {line.strip()!r}") from None
        if columns is not None and len(rows[-1]) != columns:
            raise DataError(f"{path}:{number}: expected {columns} comma-separated values, got {len(rows[-1])}")
    width = len(rows[0]) if rows else (columns or 0)
    if any(len(r) != width for r in rows):
        raise DataError(f"{path}: rows have different numbers of values")
    return np.asarray(rows, dtype=np.int64 if kind is int else np.float64).reshape(len(rows), width)


def read_tu_files(folder: str | Path, name: str, node_labels: bool = True) -> TUFiles:
    """Read and check a TU dataset; ``node_labels`` says whether ``NAME_node_labels.txt`` must exist."""
    folder = Path(folder)
    required = ["A", "graph_indicator", "graph_labels"] + (["node_labels"] if node_labels else [])
    missing = [str(folder / f"{name}_{key}.txt") for key in required if not (folder / f"{name}_{key}.txt").exists()]
    if missing:
        raise DataError(f"{folder} is not a TU dataset named {name}: missing {', '.join(missing)}")
    path = {key: folder / f"{name}_{key}.txt" for key in ("A", "graph_indicator", "graph_labels", "node_labels",
                                                          "node_attributes")}
    edges = _read_rows(path["A"], int, 2) - 1
    graph_of_node = _read_rows(path["graph_indicator"], int, 1)[:, 0] - 1
    labels = _read_rows(path["graph_labels"], int, 1)[:, 0]
    num_nodes = graph_of_node.size
    labels_of_nodes = _read_rows(path["node_labels"], int)[:, 0] if path["node_labels"].exists() else None
    attributes = _read_rows(path["node_attributes"], float) if path["node_attributes"].exists() else None
    for key, values in (("node_labels", labels_of_nodes), ("node_attributes", attributes)):
        if values is not None and len(values) != num_nodes:
            raise DataError(f"{path[key]}: {len(values)} rows for {num_nodes} nodes")
    if labels_of_nodes is not None and labels_of_nodes.min() < 0:
        raise DataError(f"{path['node_labels']}: node labels must be >= 0")
    if edges.size and (edges.min() < 0 or edges.max() >= num_nodes):
        raise DataError(f"{path['A']}: node ids must be within 1..{num_nodes}")
    if num_nodes == 0 or np.any(np.diff(graph_of_node) < 0) or graph_of_node.min() != 0 \
            or graph_of_node.max() + 1 != len(labels):
        raise DataError(f"{path['graph_indicator']}: graphs must be numbered 1..{len(labels)} in order")
    if np.any(graph_of_node[edges[:, 0]] != graph_of_node[edges[:, 1]]):
        raise DataError(f"{path['A']}: an edge joins two different graphs")
    edges = edges[np.lexsort((edges[:, 0], graph_of_node[edges[:, 0]]))]
    return TUFiles(edges, graph_of_node, labels, labels_of_nodes, attributes)
