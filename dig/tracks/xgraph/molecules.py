"""Real molecules with chemical ground truth, and the canonical TU file format.

- ``nci_nitro``: the NCI SMILES shipped in RDKit's wheel (``rdkit/Data/NCI/first_5K.smi``), labelled by the
  aromatic-nitro structural alert (``[a][N+](=O)[O-]`` or ``[a]N(=O)=O``), MUTAG's mechanism of
  mutagenicity (Debnath et al., J. Med. Chem. 1991). The labels come from the rule, not from an assay: the
  task asks whether a GNN and its explainer recover the rule. Ground truth: the alert's atoms (the aromatic
  atom, N and both O) and the bonds among them. All 359 alert-bearing molecules and as many others drawn with
  a fixed seed (some of which carry aliphatic nitro groups, so the aromatic context matters).
- ``read_tu``: TU Dortmund's graph-kernel format (``<NAME>_A.txt``, ``_graph_indicator.txt``,
  ``_graph_labels.txt``, ``_node_labels.txt``, optional ``_edge_labels.txt``; Morris et al. 2020), e.g.
  MUTAG, with ``dig data prepare mutag --from DIR``. MUTAG's ground truth is its nitro groups: N-O edges
  of nitrogens bonded to two oxygens (node labels 1 = N, 2 = O in MUTAG's encoding).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from dig.data.tu import read_tu_files
from dig.errors import DataError
from dig.io import sha256_file
from dig.tracks.xgraph.protocol import GraphSet

NCI_SHA256 = "91e71c015f14939837f2943dcc904f7c87e5a3a0124d82b05c28ad2f23004def"
ELEMENTS = ("C", "N", "O", "S", "F", "Cl", "Br", "I", "P")
ALERTS = ("[a][N+](=O)[O-]", "[a]N(=O)=O")
MOLECULE_FEATURES = len(ELEMENTS) + 3  # element one-hot (+ other), aromatic, formal charge


def nci_file() -> Path:
    spec = importlib.util.find_spec("rdkit")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("rdkit is not installed; it ships the NCI SMILES: pip install rdkit")
    path = Path(next(iter(spec.submodule_search_locations))) / "Data" / "NCI" / "first_5K.smi"
    if not path.exists():
        raise DataError(f"{path} is missing from the rdkit wheel; reinstall rdkit")
    if sha256_file(path) != NCI_SHA256:
        raise DataError(f"{path} does not match the known checksum of first_5K.smi; reinstall rdkit")
    return path


def _atom_features(atom) -> list[float]:
    symbol = atom.GetSymbol()
    onehot = [float(symbol == e) for e in ELEMENTS] + [float(symbol not in ELEMENTS)]
    return onehot + [float(atom.GetIsAromatic()), float(atom.GetFormalCharge())]


def nci_nitro(seed: int = 0) -> GraphSet:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    try:
        patterns = [Chem.MolFromSmarts(s) for s in ALERTS]
        positives, negatives = [], []
        for line in nci_file().read_text().splitlines():
            fields = line.split()
            molecule = Chem.MolFromSmiles(fields[0]) if fields else None
            if molecule is None or molecule.GetNumBonds() == 0:
                continue
            matches = [m for p in patterns for m in molecule.GetSubstructMatches(p)]
            (positives if matches else negatives).append((molecule, matches))
    finally:
        RDLogger.EnableLog("rdApp.*")
    rng = np.random.RandomState(seed)
    chosen = [negatives[i] for i in sorted(rng.choice(len(negatives), len(positives), replace=False))]
    order = rng.permutation(len(positives) * 2)
    items = [(m, a, 1) for m, a in positives] + [(m, a, 0) for m, a in chosen]
    xs, edges, truth, node_truth, ys, node_ptr, edge_ptr = [], [], [], [], [], [0], [0]
    for index in order:
        molecule, matches, label = items[index]
        alert_atoms = {atom for match in matches for atom in match}
        xs.append(np.array([_atom_features(a) for a in molecule.GetAtoms()], dtype=np.float32))
        pairs = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in molecule.GetBonds()]
        local = np.array(pairs + [(v, u) for u, v in pairs], dtype=np.int64).T
        edges.append(local + node_ptr[-1])
        truth.append(np.array([u in alert_atoms and v in alert_atoms for u, v in local.T], dtype=bool))
        node_truth.append(np.array([a in alert_atoms for a in range(molecule.GetNumAtoms())], dtype=bool))
        ys.append(label)
        node_ptr.append(node_ptr[-1] + molecule.GetNumAtoms())
        edge_ptr.append(edge_ptr[-1] + local.shape[1])
    node_truth_all = np.concatenate(node_truth)
    graph_of_node = np.repeat(np.arange(len(ys)), np.diff(node_ptr))
    return GraphSet(
        task="graph", x=np.concatenate(xs), edge_index=np.concatenate(edges, axis=1),
        node_ptr=np.asarray(node_ptr, dtype=np.int64), edge_ptr=np.asarray(edge_ptr, dtype=np.int64),
        y=np.asarray(ys, dtype=np.int64), edge_truth=np.concatenate(truth), node_truth=node_truth_all,
        motif=np.where(node_truth_all, graph_of_node, -1).astype(np.int64), num_classes=2,
    )


def read_tu(folder: str | Path, name: str = "MUTAG") -> GraphSet:
    """Read a TU dataset (``dig.data.tu``); node labels become one-hot features, nitro N-O edges the truth."""
    tu = read_tu_files(folder, name)
    edges, graph_of_node, labels, node_labels = tu.edges, tu.graph_of_node, tu.graph_labels, tu.node_labels
    num_nodes = len(graph_of_node)
    classes = np.unique(labels)
    y = np.searchsorted(classes, labels)  # MUTAG's -1 / 1 -> 0 / 1
    x = np.eye(node_labels.max() + 1, dtype=np.float32)[node_labels]
    node_ptr = np.concatenate([[0], np.cumsum(np.bincount(graph_of_node, minlength=len(labels)))])
    edge_ptr = np.concatenate([[0], np.cumsum(np.bincount(graph_of_node[edges[:, 0]], minlength=len(labels)))])
    nitrogen, oxygen = 1, 2
    oxygens_of = np.bincount(edges[:, 0], weights=(node_labels[edges[:, 1]] == oxygen), minlength=num_nodes)
    nitro_n = (node_labels == nitrogen) & (oxygens_of >= 2)
    src, dst = edges[:, 0], edges[:, 1]
    edge_truth = (nitro_n[src] & (node_labels[dst] == oxygen)) | (nitro_n[dst] & (node_labels[src] == oxygen))
    node_truth = np.zeros(num_nodes, dtype=bool)
    node_truth[src[edge_truth]] = True
    return GraphSet(
        task="graph", x=x, edge_index=edges.T.copy(), node_ptr=node_ptr.astype(np.int64),
        edge_ptr=edge_ptr.astype(np.int64), y=y.astype(np.int64), edge_truth=edge_truth, node_truth=node_truth,
        motif=np.where(node_truth, graph_of_node, -1).astype(np.int64), num_classes=len(classes),
    )
