"""Canonical-format loaders of the ssl track on fixtures written in exactly those formats: TU and Planetoid."""

from __future__ import annotations

import csv
import os
import pickle
from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import run_dig

from dig.data.planetoid import read_planetoid
from dig.data.tu import read_tu_files
from dig.errors import DataError

pytest.importorskip("sklearn")


def _write_proteins(folder, graphs: int = 40, seed: int = 0) -> None:
    """PROTEINS layout: 1-based edges over the whole set, graph labels 1 / 2, node labels 0..2, one attribute."""
    rng = np.random.default_rng(seed)
    edges, indicator, node_labels, attributes, labels, offset = [], [], [], [], [], 0
    for g in range(graphs):
        n = int(rng.integers(3, 7))
        label = 1 + g % 2
        for i in range(n - 1):  # a path, plus a chord in class 2
            edges += [(offset + i + 1, offset + i + 2), (offset + i + 2, offset + i + 1)]
        if label == 2:
            edges += [(offset + 1, offset + n), (offset + n, offset + 1)]
        indicator += [g + 1] * n
        node_labels += [int(v) for v in rng.integers(0, 3, n)]
        attributes += [float(v) for v in rng.normal(size=n)]
        labels.append(label)
        offset += n
    folder.mkdir(parents=True)
    (folder / "PROTEINS_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in edges))
    (folder / "PROTEINS_graph_indicator.txt").write_text("".join(f"{g}\n" for g in indicator))
    (folder / "PROTEINS_graph_labels.txt").write_text("".join(f"{y}\n" for y in labels))
    (folder / "PROTEINS_node_labels.txt").write_text("".join(f"{v}\n" for v in node_labels))
    (folder / "PROTEINS_node_attributes.txt").write_text("".join(f"{v:.6f}\n" for v in attributes))


def test_tu_reader_reads_labels_and_attributes(tmp_path):
    _write_proteins(tmp_path / "p", graphs=4)
    tu = read_tu_files(tmp_path / "p", "PROTEINS")
    assert tu.num_graphs == 4 and tu.graph_labels.tolist() == [1, 2, 1, 2]
    features = tu.node_features()
    assert features.shape == (tu.graph_of_node.size, 3 + 1)
    assert np.array_equal(features[:, :3].argmax(1), tu.node_labels) and features[:, :3].sum(1).tolist() == [1.0] * len(features)
    assert np.all(np.diff(tu.graph_of_node[tu.edges[:, 0]]) >= 0)  # edges grouped by graph
    lines = (tmp_path / "p" / "PROTEINS_node_attributes.txt").read_text().splitlines()
    (tmp_path / "p" / "PROTEINS_node_attributes.txt").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match=rf"PROTEINS_node_attributes.txt: {len(lines) - 1} rows for {len(lines)} nodes"):
        read_tu_files(tmp_path / "p", "PROTEINS")
    with pytest.raises(DataError, match="missing .*MUTAG_A.txt"):
        read_tu_files(tmp_path / "p", "MUTAG")


def test_tu_graphs_prepare_and_bench_through_the_cli(tmp_path):
    _write_proteins(tmp_path / "PROTEINS")
    env = {"DIG_CACHE_DIR": str(tmp_path / "cache")}
    run = run_dig("bench", "--track", "ssl", "--datasets", "proteins", "--budget", "smoke", "--seeds", "0",
                  "--models", "random-encoder", "--out", str(tmp_path / "r"), "--quiet", cwd=tmp_path, env=env)
    assert run.returncode != 0 and "dig data prepare proteins --track ssl --from FOLDER" in run.stderr
    run = run_dig("data", "prepare", "proteins", "--track", "ssl", "--from", str(tmp_path / "PROTEINS"),
                  cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    run = run_dig("bench", "--track", "ssl", "--datasets", "proteins", "--budget", "smoke", "--seeds", "0",
                  "--models", "random-encoder", "--out", str(tmp_path / "r"), "--quiet", "--workers", "1",
                  cwd=tmp_path, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "r" / "ssl.csv")))
    assert [(r["dataset"], r["metric"]) for r in rows] == [("proteins", "accuracy_frac")]
    assert float(rows[0]["value"]) > 0.5  # class 2 graphs carry a chord, a cycle the random GIN sees


def _write_planetoid(folder, name: str = "citeseer", isolated: bool = True) -> dict:
    """Seven nodes: 2 training (x/y), 4 non-test in all (allx/ally), test ids 4..6 written out of order,
    with id 5 missing when ``isolated`` (CiteSeer's isolated test nodes); a duplicate edge and a self loop in
    the graph dict."""
    folder.mkdir(parents=True)
    features = np.arange(7 * 3, dtype=np.float32).reshape(7, 3) + 1
    classes = np.array([0, 1, 1, 0, 1, -1 if isolated else 1, 0])
    onehot = np.zeros((7, 2), dtype=np.float32)
    onehot[classes >= 0, classes[classes >= 0]] = 1.0
    test_order = [6, 4] if isolated else [6, 4, 5]
    parts = {"x": sp.csr_matrix(features[:2]), "y": onehot[:2], "allx": sp.csr_matrix(features[:4]),
             "ally": onehot[:4], "tx": sp.csr_matrix(features[test_order]), "ty": onehot[test_order],
             "graph": defaultdict(list, {0: [1, 1, 2], 1: [0], 2: [0, 2], 3: [4], 4: [3, 6], 6: [4]})}
    for part, value in parts.items():
        with open(folder / f"ind.{name}.{part}", "wb") as handle:
            pickle.dump(value, handle, protocol=2)
    (folder / f"ind.{name}.test.index").write_text("".join(f"{i}\n" for i in test_order))
    return {"features": features, "classes": classes}


def test_planetoid_reader_places_test_nodes_and_builds_the_split(tmp_path):
    truth = _write_planetoid(tmp_path / "c")
    data = read_planetoid(tmp_path / "c", "citeseer", validation=2)
    assert data.x.shape == (7, 3)
    assert np.array_equal(data.x[[0, 1, 2, 3, 4, 6]], truth["features"][[0, 1, 2, 3, 4, 6]])
    assert not data.x[5].any()  # the isolated test id: zero features, no label
    assert data.labels.tolist() == truth["classes"].tolist()
    assert (data.train.tolist(), data.val.tolist(), data.test.tolist()) == ([0, 1], [2, 3], [4, 6])
    edges = {tuple(e) for e in data.edge_index.T.tolist()}
    assert edges == {(0, 1), (1, 0), (0, 2), (2, 0), (3, 4), (4, 3), (4, 6), (6, 4)}
    assert data.edge_index.shape[1] == len(edges)


def _write_random_planetoid(folder, name: str, training: int = 14, non_test: int = 530, test: int = 40) -> None:
    """Planetoid files of a random graph large enough for PyG's fixed 500 validation nodes."""
    rng = np.random.default_rng(1)
    nodes = non_test + test
    features = (rng.random((nodes, 12)) < 0.2).astype(np.float32)
    onehot = np.eye(3, dtype=np.float32)[rng.integers(0, 3, nodes)]
    test_order = rng.permutation(np.arange(non_test, nodes))
    graph = defaultdict(list)
    for u, v in rng.integers(0, nodes, size=(3 * nodes, 2)):  # symmetric, as Cora's dict; with repeats, loops
        graph[int(u)].append(int(v))
        graph[int(v)].append(int(u))
    folder.mkdir(parents=True)
    parts = {"x": sp.csr_matrix(features[:training]), "y": onehot[:training], "allx": sp.csr_matrix(features[:non_test]),
             "ally": onehot[:non_test], "tx": sp.csr_matrix(features[test_order]), "ty": onehot[test_order], "graph": graph}
    for part, value in parts.items():
        with open(folder / f"ind.{name}.{part}", "wb") as handle:
            pickle.dump(value, handle, protocol=2)
    (folder / f"ind.{name}.test.index").write_text("".join(f"{i}\n" for i in test_order))


def test_planetoid_reader_agrees_with_pyg_on_a_fixture(tmp_path):
    io = pytest.importorskip("torch_geometric.io")
    _write_random_planetoid(tmp_path / "c", "cora")
    ours = read_planetoid(tmp_path / "c", "cora")
    try:
        reference = io.read_planetoid_data(str(tmp_path / "c"), "cora")
    except ImportError as exc:
        pytest.skip(f"PyG's reader needs {exc}")
    assert np.array_equal(ours.x, reference.x.numpy())
    assert np.array_equal(ours.labels, reference.y.numpy())
    assert {tuple(e) for e in ours.edge_index.T.tolist()} == {tuple(e) for e in reference.edge_index.t().tolist()}
    for part in ("train", "val", "test"):
        assert getattr(ours, part).tolist() == getattr(reference, f"{part}_mask").nonzero().squeeze(1).tolist()


class _Payload:
    def __reduce__(self):
        return (os.getenv, ("HOME",))


def test_planetoid_reader_refuses_a_pickle_that_is_not_data(tmp_path):
    _write_planetoid(tmp_path / "c")
    with open(tmp_path / "c" / "ind.citeseer.graph", "wb") as handle:
        pickle.dump(_Payload(), handle)
    with pytest.raises(DataError, match=r"ind.citeseer.graph: not a Planetoid pickle .*os.getenv"):
        read_planetoid(tmp_path / "c", "citeseer", validation=2)
    with pytest.raises(DataError, match="missing .*ind.cora.x"):
        read_planetoid(tmp_path / "c", "cora")


def test_planetoid_task_prepares_into_the_cache_and_loads_the_split(tmp_path, monkeypatch):
    from dig.tracks.ssl.file_datasets import PlanetoidTask

    monkeypatch.setenv("DIG_CACHE_DIR", str(tmp_path / "cache"))
    _write_random_planetoid(tmp_path / "c", "cora")
    task = PlanetoidTask("cora", "cora")
    with pytest.raises(DataError, match="dig data prepare cora --track ssl --from FOLDER"):
        task.load()
    with pytest.raises(DataError, match="is not Planetoid's cora"):
        task.prepare(tmp_path)
    manifest = task.prepare(tmp_path / "c")
    assert (manifest["nodes"], manifest["unlabelled_nodes"]) == (570, 0)
    loaded = PlanetoidTask("cora", "cora").load()
    assert loaded.level == "node" and loaded.in_features == 12
    assert (len(loaded.train), len(loaded.val), len(loaded.test)) == (14, 500, 40)
