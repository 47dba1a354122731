"""Molecule -> graph featurisation shared by the graph tracks (a track never imports another track).

A ``MolGraph`` keeps the integer attributes that define the molecule (atomic number, formal charge, hydrogen
count, aromatic flag per atom; bond order per bond), so ``to_mol`` rebuilds it exactly: the round trip
SMILES -> graph -> RDKit molecule -> canonical SMILES returns the input's canonical non-isomeric SMILES
(stereochemistry is not featurised). Node features
(``node_features``) are derived from those attributes: element one-hot over ``ELEMENTS`` (+ other), degree
one-hot 0..5, hydrogen count one-hot 0..4, formal charge, aromatic flag — the usual OGB/Hu et al. (2020)
choices minus chirality, which the 2D methods here do not use. Bonds are stored once per direction
(``edge_index`` [2, 2B], j -> i), with a bond-type one-hot in ``edge_features``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dig.errors import DataError

ELEMENTS = (6, 7, 8, 16, 9, 17, 35, 53, 15)  # C N O S F Cl Br I P
MAX_DEGREE, MAX_HYDROGENS = 5, 4
BOND_ORDERS = (1.0, 2.0, 3.0, 1.5)  # single, double, triple, aromatic
NODE_FEATURES = len(ELEMENTS) + 1 + MAX_DEGREE + 1 + MAX_HYDROGENS + 1 + 2
EDGE_FEATURES = len(BOND_ORDERS)
# Bump when ``node_features`` or ``edge_index`` change what they compute: it keys the featurised-graph cache.
FEATURISATION_VERSION = 1


@dataclass(frozen=True)
class MolGraph:
    atomic_num: np.ndarray  # [N] int
    formal_charge: np.ndarray  # [N] int
    num_hs: np.ndarray  # [N] int, explicit + implicit hydrogens
    aromatic: np.ndarray  # [N] bool
    bonds: np.ndarray  # [B, 2] int, each bond once (begin, end)
    bond_type: np.ndarray  # [B] int, index into BOND_ORDERS

    @property
    def num_nodes(self) -> int:
        return int(self.atomic_num.size)

    def edge_index(self) -> Tensor:
        """Both directions of every bond: [2, 2B] rows (source j, destination i)."""
        b = torch.as_tensor(self.bonds, dtype=torch.long).reshape(-1, 2)
        return torch.cat([b.t(), b.flip(1).t()], dim=1)

    def edge_features(self) -> Tensor:
        onehot = torch.nn.functional.one_hot(torch.as_tensor(self.bond_type, dtype=torch.long), EDGE_FEATURES)
        return torch.cat([onehot, onehot]).float()

    def node_features(self) -> Tensor:
        n = self.num_nodes
        element = np.full(n, len(ELEMENTS))
        for k, z in enumerate(ELEMENTS):
            element[self.atomic_num == z] = k
        degree = np.bincount(self.bonds.reshape(-1), minlength=n) if self.bonds.size else np.zeros(n, dtype=int)
        parts = [
            np.eye(len(ELEMENTS) + 1)[element],
            np.eye(MAX_DEGREE + 1)[np.minimum(degree, MAX_DEGREE)],
            np.eye(MAX_HYDROGENS + 1)[np.minimum(self.num_hs, MAX_HYDROGENS)],
            self.formal_charge[:, None],
            self.aromatic[:, None],
        ]
        return torch.as_tensor(np.concatenate(parts, axis=1), dtype=torch.float32)


def from_mol(mol) -> MolGraph:
    """Featurise an RDKit molecule (hydrogens implicit, aromaticity as perceived by RDKit)."""
    from rdkit import Chem

    atoms = list(mol.GetAtoms())
    bonds = list(mol.GetBonds())
    orders = {Chem.BondType.SINGLE: 0, Chem.BondType.DOUBLE: 1, Chem.BondType.TRIPLE: 2, Chem.BondType.AROMATIC: 3}
    unknown = [str(b.GetBondType()) for b in bonds if b.GetBondType() not in orders]
    if unknown:
        raise DataError(f"{Chem.MolToSmiles(mol)}: bond types {sorted(set(unknown))} are not featurised "
                        f"(single, double, triple, aromatic only)")
    return MolGraph(
        atomic_num=np.array([a.GetAtomicNum() for a in atoms], dtype=np.int64),
        formal_charge=np.array([a.GetFormalCharge() for a in atoms], dtype=np.int64),
        num_hs=np.array([a.GetTotalNumHs() for a in atoms], dtype=np.int64),
        aromatic=np.array([a.GetIsAromatic() for a in atoms], dtype=bool),
        bonds=np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in bonds], dtype=np.int64).reshape(-1, 2),
        bond_type=np.array([orders[b.GetBondType()] for b in bonds], dtype=np.int64),
    )


def from_smiles(smiles: str) -> MolGraph:
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise DataError(f"RDKit cannot parse the SMILES {smiles!r}")
    return from_mol(mol)


def to_mol(graph: MolGraph):
    """The RDKit molecule a ``MolGraph`` describes (sanitized): the inverse of ``from_mol``."""
    from rdkit import Chem

    rw = Chem.RWMol()
    for z, charge, hs, aromatic in zip(graph.atomic_num, graph.formal_charge, graph.num_hs, graph.aromatic,
                                       strict=True):
        atom = Chem.Atom(int(z))
        atom.SetFormalCharge(int(charge))
        atom.SetNumExplicitHs(int(hs))
        atom.SetNoImplicit(True)
        atom.SetIsAromatic(bool(aromatic))
        rw.AddAtom(atom)
    types = (Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE, Chem.BondType.AROMATIC)
    for (begin, end), kind in zip(graph.bonds, graph.bond_type, strict=True):
        rw.AddBond(int(begin), int(end), types[int(kind)])
        if kind == 3:
            rw.GetBondBetweenAtoms(int(begin), int(end)).SetIsAromatic(True)
    mol = rw.GetMol()
    Chem.SanitizeMol(mol)
    return mol


def _featurisation_key(smiles: Sequence[str]) -> str:
    recipe = f"v{FEATURISATION_VERSION}|{ELEMENTS}|{MAX_DEGREE}|{MAX_HYDROGENS}|{BOND_ORDERS}|{len(smiles)}\n"
    return hashlib.sha256((recipe + "\n".join(smiles)).encode("utf-8")).hexdigest()[:24]


def featurised_graphs(smiles: Sequence[str]) -> list[tuple[Tensor, Tensor]]:
    """(``node_features()``, ``edge_index()``) of each molecule, cached in the dig cache.

    The cache is keyed by a digest of the SMILES list and of the featurisation (``FEATURISATION_VERSION`` and
    its element / degree / hydrogen / bond lists), so a changed list or featurisation builds a new one; it is
    checksummed like every dig cache. Featurising 12,800 MOSES molecules takes about 7 s; reading them back
    about 0.1 s. The node features are views of one array (read them, do not write into them).
    """
    from dig.data.cache import load_or_build, save_cached_arrays

    smiles = list(smiles)
    name = f"molgraph-{_featurisation_key(smiles)}"

    def build() -> None:
        graphs = [from_smiles(s) for s in smiles]
        features = [g.node_features() for g in graphs]
        edges = [g.edge_index() for g in graphs]
        empty_x, empty_e = torch.zeros(0, NODE_FEATURES), torch.zeros(2, 0, dtype=torch.long)
        save_cached_arrays(name, {
            "node_features": torch.cat([empty_x, *features]).numpy(),
            "edge_index": torch.cat([empty_e, *edges], dim=1).numpy(),
            "num_nodes": np.asarray([g.num_nodes for g in graphs], dtype=np.int64),
            "num_edges": np.asarray([e.size(1) for e in edges], dtype=np.int64)},
            {"molecules": len(smiles), "featurisation_version": FEATURISATION_VERSION,
             "what": "dig.data.molgraph node features and edge index of a SMILES list"})

    arrays, _ = load_or_build(name, build)
    num_nodes, num_edges = arrays["num_nodes"].tolist(), arrays["num_edges"].tolist()
    if len(num_nodes) != len(smiles) or sum(num_nodes) != len(arrays["node_features"]) or \
            sum(num_edges) != arrays["edge_index"].shape[1]:
        raise DataError(f"the featurised-graph cache {name} does not match its {len(smiles)} SMILES; delete "
                        f"{name}.npz and {name}.json from the dig cache to rebuild it")
    features = torch.from_numpy(arrays["node_features"]).split(num_nodes)
    edges = [e.contiguous() for e in torch.from_numpy(arrays["edge_index"]).split(num_edges, dim=1)]
    return list(zip(features, edges, strict=True))
