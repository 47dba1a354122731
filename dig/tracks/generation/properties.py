"""Molecular properties for property optimisation: pure functions of an RDKit molecule.

- ``crippen_logp``: Wildman & Crippen 1999 (RDKit's ``MolLogP``).
- ``qed``: quantitative estimate of drug-likeness, Bickerton et al. 2012 (RDKit's ``QED.qed``).
- ``sa_score``: synthetic accessibility, Ertl & Schuffenhauer 2009, 1 (easy) .. 10 (hard); RDKit's Contrib
  ``sascorer`` with its fragment scores, loaded from the RDKit installation (no download).
- ``ring_penalty``: max(0, L − 6) for the longest cycle L of the molecular graph's networkx cycle basis
  (JT-VAE's definition, which is not RDKit's SSSR: both agree on fused aromatics, can differ on macrocycles).
- ``penalized_logp``: y(m) = logP(m) − SA(m) − ring_penalty(m) (Kusner et al. 2017; JT-VAE's constrained
  optimisation, Jin et al. 2018).
- ``penalized_logp_zinc_normalized``: the same three terms each z-scored with ZINC250k's statistics before the
  sum, the reward of GCPN / GraphAF / GraphDF's code. Papers report either; a row names which one it used.

Calibrated in the tests on rows of ZINC250k's CSV: logP and SA equal its ``logP`` / ``SAS`` columns to 1e-4;
its ``qed`` column came from an older RDKit QED and differs by up to 0.03 (stated, not hidden).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Mapping
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from dig.errors import DataError

if TYPE_CHECKING:  # RDKit and networkx are imported by the functions: plugin discovery stays light
    from rdkit import Chem

# ZINC250k statistics of logP, −SA and −ring penalty (GCPN / GraphAF's normalisation constants).
ZINC_LOGP_MEAN, ZINC_LOGP_STD = 2.4570953396190123, 1.434324401111988
ZINC_NEG_SA_MEAN, ZINC_NEG_SA_STD = -3.0525811293166134, 0.8335207024513095
ZINC_NEG_RING_MEAN, ZINC_NEG_RING_STD = -0.0485696876403053, 0.2860212110245455

PROPERTY_NAMES = ("logp", "qed", "sa", "ring_penalty", "plogp", "plogp_zinc_normalized")


@lru_cache(maxsize=1)
def _sascorer() -> ModuleType:
    from rdkit import RDConfig

    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
    if not os.path.exists(path):
        raise DataError(f"RDKit's Contrib SA scorer is missing ({path}): install the rdkit wheel from PyPI, which "
                        "ships it")
    spec = importlib.util.spec_from_file_location("dig_rdkit_sascorer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.readFragmentScores()
    return module


def crippen_logp(mol: Chem.Mol) -> float:
    from rdkit.Chem import Crippen

    return float(Crippen.MolLogP(mol))


def qed(mol: Chem.Mol) -> float:
    from rdkit.Chem import QED

    return float(QED.qed(mol))


def sa_score(mol: Chem.Mol) -> float:
    return float(_sascorer().calculateScore(mol))


def ring_penalty(mol: Chem.Mol) -> int:
    import networkx as nx
    from rdkit import Chem

    cycles = nx.cycle_basis(nx.Graph(Chem.rdmolops.GetAdjacencyMatrix(mol)))
    longest = max((len(cycle) for cycle in cycles), default=0)
    return max(0, longest - 6)


def _plogp_terms(logp: float, sa: float, ring: float) -> tuple[float, float]:
    plain = logp - sa - ring
    normalized = ((logp - ZINC_LOGP_MEAN) / ZINC_LOGP_STD + (-sa - ZINC_NEG_SA_MEAN) / ZINC_NEG_SA_STD
                  + (-ring - ZINC_NEG_RING_MEAN) / ZINC_NEG_RING_STD)
    return plain, normalized


def penalized_logp(mol: Chem.Mol) -> float:
    return _plogp_terms(crippen_logp(mol), sa_score(mol), ring_penalty(mol))[0]


def penalized_logp_zinc_normalized(mol: Chem.Mol) -> float:
    return _plogp_terms(crippen_logp(mol), sa_score(mol), ring_penalty(mol))[1]


def property_value(mol: Chem.Mol, name: str) -> float:
    """One property of ``PROPERTY_NAMES``, computing only what it needs."""
    single = {"logp": crippen_logp, "qed": qed, "sa": sa_score, "ring_penalty": ring_penalty,
              "plogp": penalized_logp, "plogp_zinc_normalized": penalized_logp_zinc_normalized}
    if name not in single:
        raise ValueError(f"unknown property {name!r}; known: {', '.join(PROPERTY_NAMES)}")
    return float(single[name](mol))


def molecule_properties(mol: Chem.Mol) -> dict[str, float]:
    """Every property of ``PROPERTY_NAMES`` for one molecule, each term computed once."""
    logp, sa, ring = crippen_logp(mol), sa_score(mol), ring_penalty(mol)
    plain, normalized = _plogp_terms(logp, sa, ring)
    return {"logp": logp, "qed": qed(mol), "sa": sa, "ring_penalty": float(ring), "plogp": plain,
            "plogp_zinc_normalized": normalized}


def property_table(smiles: Iterable[str]) -> dict[str, np.ndarray]:
    """``PROPERTY_NAMES`` -> float64 array over ``smiles``; NaN where a SMILES does not parse."""
    from rdkit import Chem

    rows: list[Mapping[str, float] | None] = []
    for text in smiles:
        mol = Chem.MolFromSmiles(text)
        rows.append(molecule_properties(mol) if mol is not None else None)
    return {name: np.array([row[name] if row is not None else np.nan for row in rows], dtype=np.float64)
            for name in PROPERTY_NAMES}
