"""Evaluators of property and constrained optimisation (pure functions of SMILES lists).

- ``property_optimisation_metrics`` (GCPN / GraphAF / GraphDF's "top-3"): among the distinct valid generated
  molecules, the three highest penalized logP and QED; with the oracle calls the generator spent, reported as
  given. Fewer than three distinct valid molecules: the missing ranks are left out and named.
- ``constrained_optimisation_metrics`` (JT-VAE, Jin et al. 2018): for each starting molecule m and its candidates
  m', similarity sim(m, m') is the Tanimoto similarity of Morgan radius-2 count fingerprints (JT-VAE's
  ``GetMorganFingerprint(mol, 2)``); at threshold δ a start succeeds when some valid candidate with sim ≥ δ has
  y(m') > y(m) (y: penalized logP, ``properties.penalized_logp``), and its improvement is the largest such
  y(m') − y(m). Reported per δ: success = successes / starts, and the mean and standard deviation of the
  improvement and of the similarity of the chosen candidate over the successful starts.
- ``composition_metrics`` (GraphEBM's multi-objective generation): per sample set (the composed generator's and
  each single generator's), validity = |V| / |G|, the mean of each property over V (duplicates kept), and
  all_targets = |{m in V: y_k(m) >= threshold_k for every property k}| / |V|.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from dig.tracks.generation.properties import penalized_logp, property_value

if TYPE_CHECKING:  # RDKit is imported by the functions: plugin discovery stays light
    from rdkit import Chem

DELTAS = (0.0, 0.2, 0.4, 0.6)
TOP = 3


def _molecule(smiles: str) -> Chem.Mol | None:
    from rdkit import Chem

    return Chem.MolFromSmiles(smiles) if smiles else None


@lru_cache(maxsize=1)
def _morgan_generator() -> Any:
    from rdkit.Chem import rdFingerprintGenerator

    return rdFingerprintGenerator.GetMorganGenerator(radius=2)


def morgan_count_fingerprint(mol: Chem.Mol) -> Any:
    """Radius-2 Morgan count fingerprint, unfolded (JT-VAE's ``GetMorganFingerprint(mol, 2)``)."""
    return _morgan_generator().GetSparseCountFingerprint(mol)


def morgan_count_similarity(a: Chem.Mol, b: Chem.Mol) -> float:
    """Tanimoto similarity of radius-2 Morgan count fingerprints, as JT-VAE measures it."""
    from rdkit import DataStructs

    return float(DataStructs.TanimotoSimilarity(morgan_count_fingerprint(a), morgan_count_fingerprint(b)))


def property_optimisation_metrics(generated: Sequence[str], oracle_calls: int, names: Sequence[str] = ("plogp", "qed"),
                                  train: Collection[str] = ()) -> tuple[dict[str, float], list[str]]:
    """(metrics, notes): ``{name}_top{k}_score`` for k = 1..3 over the distinct valid molecules of ``generated``
    (canonical SMILES), ``{name}_top3_novel_count`` (how many of those are not in ``train``, canonical SMILES)
    and ``oracle_calls_count``; a note for each rank left out."""
    distinct = _distinct_valid(generated)
    metrics: dict[str, float] = {"oracle_calls_count": float(oracle_calls)}
    notes = []
    for name in names:
        ranked = _ranked(distinct, name)
        for rank in range(1, TOP + 1):
            if rank <= len(ranked):
                metrics[f"{name}_top{rank}_score"] = ranked[rank - 1][0]
            else:
                notes.append(f"{name}_top{rank}_score: only {len(ranked)} distinct valid molecules")
        metrics[f"{name}_top3_novel_count"] = float(sum(smiles not in train for _, smiles in ranked))
    return metrics, notes


def _distinct_valid(generated: Sequence[str]) -> dict[str, Chem.Mol]:
    from rdkit import Chem

    distinct: dict[str, Chem.Mol] = {}
    for text in generated:
        mol = _molecule(text)
        if mol is not None:
            distinct.setdefault(Chem.MolToSmiles(mol, isomericSmiles=False), mol)
    return distinct


def _ranked(distinct: Mapping[str, Chem.Mol], name: str) -> list[tuple[float, str]]:
    return sorted(((property_value(mol, name), smiles) for smiles, mol in distinct.items()), reverse=True)[:TOP]


def top_molecules(generated: Sequence[str], name: str) -> list[tuple[str, float]]:
    """The three distinct valid molecules of ``generated`` with the highest ``name`` (canonical SMILES, value):
    the molecules behind ``{name}_top{k}_score``."""
    return [(smiles, value) for value, smiles in _ranked(_distinct_valid(generated), name)]


def constrained_optimisation_metrics(starts: Sequence[str], candidates: Sequence[Sequence[str]],
                                     deltas: Sequence[float] = DELTAS) -> dict[str, float]:
    """Per δ in ``deltas``: ``success_d{δ}_frac``, ``improvement_mean_d{δ}_plogp``, ``improvement_std_d{δ}_plogp``,
    ``similarity_mean_d{δ}_tanimoto`` (the last three over successful starts; left out when none succeeded).
    ``candidates[i]`` are the molecules proposed for ``starts[i]``; invalid ones count as proposed, never as found."""
    if len(starts) != len(candidates):
        raise ValueError(f"{len(starts)} starting molecules but {len(candidates)} candidate lists")
    if not starts:
        raise ValueError("no starting molecules")
    from rdkit import DataStructs

    best: dict[float, list[tuple[float, float]]] = {delta: [] for delta in deltas}
    for start, proposed in zip(starts, candidates, strict=True):
        origin = _molecule(start)
        if origin is None:
            raise ValueError(f"starting molecule {start!r} does not parse")
        y_start, origin_fingerprint = penalized_logp(origin), morgan_count_fingerprint(origin)
        scored = []
        for text in proposed:
            mol = _molecule(text)
            if mol is not None:
                similarity = DataStructs.TanimotoSimilarity(origin_fingerprint, morgan_count_fingerprint(mol))
                scored.append((penalized_logp(mol) - y_start, float(similarity)))
        for delta in deltas:
            found = [(gain, sim) for gain, sim in scored if sim >= delta and gain > 0]
            if found:
                best[delta].append(max(found))
    metrics: dict[str, float] = {}
    for delta in deltas:
        tag = f"d{delta:.1f}"
        metrics[f"success_{tag}_frac"] = len(best[delta]) / len(starts)
        if best[delta]:
            gains, sims = np.array(best[delta]).T
            metrics[f"improvement_mean_{tag}_plogp"] = float(gains.mean())
            metrics[f"improvement_std_{tag}_plogp"] = float(gains.std())
            metrics[f"similarity_mean_{tag}_tanimoto"] = float(sims.mean())
    return metrics


def composition_metrics(samples: Mapping[str, Sequence[str]], thresholds: Mapping[str, float]) -> tuple[dict[str, float], list[str]]:
    """(metrics, notes): per sample set s of ``samples`` (e.g. "composed", "qed_only"): ``{s}_validity_frac``,
    ``{s}_{k}_mean_score`` for each property k of ``thresholds`` and ``{s}_all_targets_frac``; a set with no
    valid molecule gets validity 0 and a note instead of the others."""
    metrics: dict[str, float] = {}
    notes = []
    for name, generated in samples.items():
        molecules = [mol for mol in map(_molecule, generated) if mol is not None]
        metrics[f"{name}_validity_frac"] = len(molecules) / len(generated) if generated else 0.0
        if not molecules:
            notes.append(f"{name}: no valid molecule among {len(generated)} samples")
            continue
        values = {k: np.array([property_value(mol, k) for mol in molecules]) for k in thresholds}
        for k, column in values.items():
            metrics[f"{name}_{k}_mean_score"] = float(column.mean())
        meets = np.logical_and.reduce([values[k] >= threshold for k, threshold in thresholds.items()])
        metrics[f"{name}_all_targets_frac"] = float(meets.mean())
    return metrics, notes


def best_in_corpus(properties: Mapping[str, np.ndarray], smiles: np.ndarray) -> dict[str, list[tuple[str, float]]]:
    """The top-3 molecules of a property set by penalized logP and by QED: what picking from the data, with no
    generation at all, reaches (the floor an optimiser's top-3 is read against)."""
    out = {}
    for name in ("plogp", "qed"):
        values = properties[name]
        order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")[:TOP]
        out[name] = [(str(smiles[i]), float(values[i])) for i in order]
    return out
