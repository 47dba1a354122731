"""Planetoid's raw files (Yang et al., ICML 2016), the split every GCN paper uses: Cora, CiteSeer, PubMed.

A dataset NAME is eight files ``ind.NAME.{x,tx,allx,y,ty,ally,graph,test.index}``: ``allx`` / ``ally`` the
features / one-hot labels of every node that is not a test node (the first ``len(y)`` of them the training
nodes), ``tx`` / ``ty`` those of the test nodes in the order of ``test.index`` (a text file, one node id per
line), ``graph`` a dict node -> neighbours. All but ``test.index`` are Python pickles (scipy sparse matrices,
numpy arrays, a defaultdict); they are read with an unpickler that admits only those types.

Assembly follows Kipf & Welling's ``load_data`` and PyG's ``read_planetoid_data``: features and labels of
the test nodes move to their ids; CiteSeer's isolated test ids (absent from ``test.index``) get zero features
and no label; training nodes 0..len(y)-1, validation the next 500, test the ``test.index`` ids. Edges: both
directions of every neighbour pair, without self loops or duplicates (as PyG).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dig.errors import DataError

PARTS = ("x", "tx", "allx", "y", "ty", "ally", "graph")
_ALLOWED = {
    ("collections", "defaultdict"), ("builtins", "list"), ("__builtin__", "list"), ("builtins", "set"),
    ("__builtin__", "set"), ("builtins", "object"), ("__builtin__", "object"), ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"), ("builtins", "dict"), ("__builtin__", "dict"), ("builtins", "int"),
    ("__builtin__", "int"), ("_codecs", "encode"),
}


class _DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED or module.split(".")[0] == "numpy" or module.startswith("scipy.sparse"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not a Planetoid data type")


@dataclass(frozen=True)
class PlanetoidGraph:
    x: np.ndarray  # [N, F] float32
    edge_index: np.ndarray  # [2, E] int64, both directions
    labels: np.ndarray  # [N] int64, -1 where the files give none (CiteSeer's isolated test ids)
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _load(path: Path):
    try:
        with open(path, "rb") as handle:
            return _DataOnlyUnpickler(handle, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError) as exc:
        raise DataError(f"{path}: not a Planetoid pickle ({exc})") from None


def _dense(matrix) -> np.ndarray:
    return np.asarray(matrix.todense() if hasattr(matrix, "todense") else matrix, dtype=np.float32)


def read_planetoid(folder: str | Path, name: str = "cora", validation: int = 500) -> PlanetoidGraph:
    folder = Path(folder)
    paths = {part: folder / f"ind.{name}.{part}" for part in (*PARTS, "test.index")}
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise DataError(f"{folder} is not Planetoid's {name}: missing {', '.join(missing)}")
    x, tx, allx = (_dense(_load(paths[p])) for p in ("x", "tx", "allx"))
    y, ty, ally = (_dense(_load(paths[p])) for p in ("y", "ty", "ally"))
    graph = _load(paths["graph"])
    if not isinstance(graph, dict):
        raise DataError(f"{paths['graph']}: expected a dict node -> neighbours, got {type(graph).__name__}")
    try:
        test_index = np.array([int(line) for line in paths["test.index"].read_text().split()], dtype=np.int64)
    except ValueError:
        raise DataError(f"{paths['test.index']}: expected one integer node id per line") from None
    if len(tx) != len(test_index) or len(ty) != len(test_index) or len(allx) != len(ally) or len(x) != len(y):
        raise DataError(f"{folder}: ind.{name}.tx/ty have {len(tx)}/{len(ty)} rows for {len(test_index)} test "
                        f"ids, allx/ally {len(allx)}/{len(ally)}, x/y {len(x)}/{len(y)}")
    if len(y) + validation > len(ally):
        raise DataError(f"{folder}: {len(y)} training + {validation} validation nodes exceed the {len(ally)} "
                        "non-test nodes")
    if test_index.size and test_index.min() < len(allx):
        raise DataError(f"{paths['test.index']}: test ids must follow the {len(allx)} non-test nodes")
    nodes = int(test_index.max()) + 1 if test_index.size else len(allx)
    features = np.zeros((nodes, allx.shape[1]), dtype=np.float32)
    features[:len(allx)] = allx
    features[test_index] = tx
    labels = np.full(nodes, -1, dtype=np.int64)
    has_label = ally.sum(1) > 0
    labels[:len(ally)][has_label] = ally.argmax(1)[has_label]
    test_has_label = ty.sum(1) > 0
    labels[test_index[test_has_label]] = ty.argmax(1)[test_has_label]
    pairs = [(int(u), int(v)) for u, neighbours in graph.items() for v in neighbours]
    edges = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    if edges.size and (edges.min() < 0 or edges.max() >= nodes):
        raise DataError(f"{paths['graph']}: node ids must be within 0..{nodes - 1}")
    edges = edges[edges[:, 0] != edges[:, 1]]
    edges = np.unique(np.concatenate([edges, edges[:, ::-1]]), axis=0)
    return PlanetoidGraph(features, edges.T.copy(), labels, np.arange(len(y)),
                          np.arange(len(y), len(y) + validation), np.sort(test_index))
