"""Molecules as kekulized graphs for generation (GraphDF, GraphAF, GraphEBM): heavy atoms are nodes typed by a
fixed per-dataset vocabulary of (element, formal charge), bonds are edges typed single / double / triple
(aromatic rings are kekulized), hydrogens are implicit and follow from the valences on the way back.

Stereochemistry is not represented (as in the papers): the round trip is exact on non-isomeric canonical
SMILES, which the tests check on every molecule of a sample.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dig.errors import DataError

BOND_ORDERS = (1, 2, 3)  # edge types 0, 1, 2


@dataclass(frozen=True)
class AtomVocabulary:
    """Node types: (element symbol, formal charge), in a fixed order."""

    tokens: tuple[tuple[str, int], ...]

    @classmethod
    def from_tokens(cls, tokens: Iterable[tuple[str, int]]) -> AtomVocabulary:
        """The distinct (symbol, charge) tokens, sorted by atomic number then charge."""
        from rdkit import Chem

        table = Chem.GetPeriodicTable()
        return cls(tuple(sorted(set(tokens), key=lambda t: (table.GetAtomicNumber(t[0]), t[1]))))

    @classmethod
    def from_molecules(cls, molecules: Iterable) -> AtomVocabulary:
        """Every (symbol, charge) of the molecules' heavy atoms."""
        return cls.from_tokens(token for mol in molecules if mol is not None for token in heavy_atom_tokens(mol))

    def __len__(self) -> int:
        return len(self.tokens)

    def index(self, symbol: str, charge: int) -> int:
        try:
            return self.tokens.index((symbol, charge))
        except ValueError:
            raise DataError(f"atom {symbol} with charge {charge:+d} is not in this dataset's vocabulary "
                            f"{[f'{s}{c:+d}' if c else s for s, c in self.tokens]}") from None


def heavy_atom_tokens(mol) -> list[tuple[str, int]]:
    """(symbol, formal charge) of each heavy atom of an RDKit molecule."""
    return [(atom.GetSymbol(), atom.GetFormalCharge()) for atom in mol.GetAtoms() if atom.GetAtomicNum() > 1]


@dataclass(frozen=True)
class MolGraph:
    """``atoms`` [n] vocabulary indices; ``bonds`` [m, 3] rows (i, j, type) with i < j, type 0/1/2 = single,
    double, triple."""

    atoms: np.ndarray
    bonds: np.ndarray

    @property
    def num_atoms(self) -> int:
        return int(self.atoms.shape[0])

    def adjacency(self, max_atoms: int) -> np.ndarray:
        """[len(BOND_ORDERS) + 1, max_atoms, max_atoms] one-hot bond types, the last channel "no bond"."""
        if self.num_atoms > max_atoms:
            raise ValueError(f"{self.num_atoms} atoms do not fit in {max_atoms}")
        adj = np.zeros((len(BOND_ORDERS) + 1, max_atoms, max_atoms), dtype=np.float32)
        adj[-1] = 1.0
        for i, j, t in self.bonds:
            adj[-1, i, j] = adj[-1, j, i] = 0.0
            adj[t, i, j] = adj[t, j, i] = 1.0
        return adj


def mol_to_graph(mol, vocabulary: AtomVocabulary) -> MolGraph:
    """The kekulized heavy-atom graph of an RDKit molecule (hydrogens dropped, aromatic bonds kekulized)."""
    from rdkit import Chem

    mol = Chem.RemoveHs(mol)
    Chem.Kekulize(mol, clearAromaticFlags=True)
    atoms = np.array([vocabulary.index(a.GetSymbol(), a.GetFormalCharge()) for a in mol.GetAtoms()], dtype=np.int64)
    bonds = []
    for bond in mol.GetBonds():
        order = bond.GetBondTypeAsDouble()
        if order not in BOND_ORDERS:
            raise DataError(f"bond of order {order} in {Chem.MolToSmiles(mol)}: only single, double and triple after kekulization")
        i, j = sorted((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()))
        bonds.append((i, j, BOND_ORDERS.index(int(order))))
    return MolGraph(atoms, np.array(bonds, dtype=np.int64).reshape(-1, 3))


def graph_to_mol(graph: MolGraph, vocabulary: AtomVocabulary, sanitize: bool = True):
    """The RDKit molecule of a graph, or None when RDKit's sanitization rejects it (a valence exceeded)."""
    from rdkit import Chem

    _BOND_TYPES = (Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE)
    mol = Chem.RWMol()
    for index in graph.atoms.tolist():
        symbol, charge = vocabulary.tokens[index]
        atom = Chem.Atom(symbol)
        atom.SetFormalCharge(charge)
        mol.AddAtom(atom)
    for i, j, t in graph.bonds.tolist():
        mol.AddBond(int(i), int(j), _BOND_TYPES[t])
    mol = mol.GetMol()
    if sanitize:
        try:
            Chem.SanitizeMol(mol)
        except (ValueError, RuntimeError):  # Chem.rdchem.AtomValenceException / KekulizeException derive from these
            return None
    return mol


def canonical_smiles(mol) -> str | None:
    """Non-isomeric canonical SMILES (the form generation metrics compare), None for None or an empty molecule."""
    from rdkit import Chem

    if mol is None:
        return None
    text = Chem.MolToSmiles(mol, isomericSmiles=False)
    return text or None
