"""ssl datasets read from their canonical files (not shipped offline): TU graphs and Planetoid citations.

``dig data prepare NAME --track ssl --from FOLDER`` reads the folder once (``dig.data.tu`` /
``dig.data.planetoid``) into dig's cache; benches then load the cache.
- ``mutag``, ``proteins`` (graph level, TU files): node features are the one-hot node labels, then the node
  attributes (PROTEINS: one); graph labels map to classes 0..C-1 in sorted order.
- ``cora``, ``citeseer`` (node level, Planetoid files): Planetoid's split (training nodes 0..len(y)-1, the
  next 500 for validation, ``test.index`` for test); nodes without a label (CiteSeer's isolated test ids) are
  in no set, and their count is kept in the task's description.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from dig.data.cache import load_cached_arrays, save_cached_arrays
from dig.data.planetoid import read_planetoid
from dig.data.tu import read_tu_files
from dig.errors import DataError
from dig.tracks.ssl.protocol import GraphTask, NodeTask


class _Prepared:
    level = "graph"
    file_kind = ""

    def __init__(self, name: str, file_name: str) -> None:
        self.name, self.file_name = name, file_name
        self.cache_name = f"ssl-{name}-v1"
        self._task = None

    def prepare(self, source: str | os.PathLike | None = None) -> dict[str, Any]:
        """Read the canonical files in ``source`` into dig's cache (``dig data prepare``)."""
        if source is None:
            raise DataError(f"{self.name} is read from its {self.file_kind} files: dig data prepare {self.name} "
                            "--track ssl --from FOLDER")
        arrays, counts = self._read(source)
        manifest = {"dataset": self.name, **counts, "path": str(source)}
        save_cached_arrays(self.cache_name, arrays, manifest)
        self._task = None
        return manifest

    def _read(self, source: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        raise NotImplementedError

    def _arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        cached = load_cached_arrays(self.cache_name)
        if cached is None:
            raise DataError(f"{self.name} is not prepared: dig data prepare {self.name} --track ssl --from FOLDER "
                            f"(the folder of {self.file_kind} files named {self.file_name})")
        return cached


class TUTask(_Prepared):
    file_kind = "TU"

    def _read(self, source: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tu = read_tu_files(source, self.file_name)
        arrays = {"x": tu.node_features(), "edges": tu.edges, "graph_of_node": tu.graph_of_node,
                  "labels": np.searchsorted(np.unique(tu.graph_labels), tu.graph_labels)}
        return arrays, {"graphs": tu.num_graphs, "nodes": int(tu.graph_of_node.size), "edges": int(tu.edges.shape[0])}

    def load(self) -> GraphTask:
        if self._task is None:
            arrays, _ = self._arrays()
            graph_of_node, edges = arrays["graph_of_node"], arrays["edges"]  # edges sorted by graph
            count = graph_of_node.max() + 1
            node_ptr = np.concatenate([[0], np.cumsum(np.bincount(graph_of_node, minlength=count))])
            edge_ptr = np.concatenate([[0], np.cumsum(np.bincount(graph_of_node[edges[:, 0]], minlength=count))])
            x = torch.as_tensor(arrays["x"])
            graphs = []
            for g in range(count):
                inside = edges[edge_ptr[g]:edge_ptr[g + 1]] - node_ptr[g]
                graphs.append((x[node_ptr[g]:node_ptr[g + 1]], torch.as_tensor(inside.T.copy())))
            self._task = GraphTask(self.name, graphs, arrays["labels"].astype(np.int64), "classification")
        return self._task


class PlanetoidTask(_Prepared):
    level = "node"
    file_kind = "Planetoid"

    def _read(self, source: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        data = read_planetoid(source, self.file_name)
        arrays = {"x": data.x, "edge_index": data.edge_index, "labels": data.labels, "train": data.train,
                  "val": data.val, "test": data.test}
        return arrays, {"nodes": int(data.x.shape[0]), "edges": int(data.edge_index.shape[1]),
                        "unlabelled_nodes": int((data.labels < 0).sum())}

    def load(self) -> NodeTask:
        if self._task is None:
            arrays, _ = self._arrays()
            labels = arrays["labels"]
            train, val, test = (s[labels[s] >= 0] for s in (arrays["train"], arrays["val"], arrays["test"]))
            self._task = NodeTask(self.name, torch.as_tensor(arrays["x"]), torch.as_tensor(arrays["edge_index"]),
                                  labels, train, val, test,
                                  f"Planetoid {self.file_name}: {labels.size} nodes, "
                                  f"{int((labels < 0).sum())} without a label (in no set)")
        return self._task
