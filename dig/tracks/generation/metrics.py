"""Generation metrics as pure functions of SMILES, with MOSES's definitions (Polykovskiy et al., "Molecular
Sets (MOSES)", Front. Pharmacol. 2020) and denominators stated.

Let G be the generated SMILES (all of them, also the unparseable ones) and V the valid ones (parsed and
sanitized by RDKit), as non-isomeric canonical SMILES, duplicates kept:
- validity = |V| / |G|
- unique@k = |set(V[:k])| / |V[:k]|
- novelty = |set(V) \\ train| / |set(V)| (train: canonical SMILES of the training split)
- FCD = ||mu_V - mu_R||^2 + Tr(S_V + S_R - 2 (S_V S_R)^(1/2)) on ChemNet's penultimate activations
  (Preuer et al. 2018; fcd-torch, whose ChemNet weights ship in its wheel), R the reference set
- SNN = mean over V of max over R of Tanimoto(Morgan r=2, 1,024 bits)
- Frag, Scaf = cosine similarity of the BRICS-fragment / Bemis-Murcko-scaffold count vectors of V and R
  (scaffolds with fewer than 2 rings left out, as MOSES)
- IntDiv_p = 1 - mean over y in V of (mean over x in V of T(x, y)^p)^(1/p) (pairs include x = y)
- filters = fraction of V passing MOSES's filters: MCF and PAINS SMARTS, only C N S O F Cl Br H, no charge,
  no ring of 8 or more atoms
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

FINGERPRINT_BITS = 1024
ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})


def _quiet_rdkit() -> None:
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")


def to_molecule(smiles: str):
    """RDKit molecule of a SMILES, None when empty, unparseable or not sanitizable."""
    from rdkit import Chem

    _quiet_rdkit()
    if not smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    try:
        Chem.SanitizeMol(mol)
    except (ValueError, RuntimeError):
        return None
    return mol


def canonical(smiles: str) -> str | None:
    from rdkit import Chem

    mol = to_molecule(smiles)
    return None if mol is None else (Chem.MolToSmiles(mol, isomericSmiles=False) or None)


def valid_canonical(generated: Sequence[str]) -> tuple[list[str], float]:
    """(V, validity): the canonical SMILES of the valid molecules in order, and |V| / |G| (0 for empty G)."""
    out = [c for c in map(canonical, generated) if c is not None]
    return out, (len(out) / len(generated) if generated else 0.0)


def unique_at(valid: Sequence[str], k: int | None = None) -> float:
    head = list(valid[:k] if k is not None else valid)
    return len(set(head)) / len(head) if head else 0.0


def novelty(valid: Sequence[str], train: set[str]) -> float:
    unique = set(valid)
    return len(unique - train) / len(unique) if unique else 0.0


def morgan_fingerprints(smiles: Sequence[str]) -> np.ndarray:
    """[n, 1024] uint8 Morgan bits (radius 2), as MOSES's ``fingerprint(..., 'morgan')``."""
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=FINGERPRINT_BITS)
    out = np.zeros((len(smiles), FINGERPRINT_BITS), dtype=np.uint8)
    for row, text in enumerate(smiles):
        mol = to_molecule(text)
        if mol is not None:
            out[row] = generator.GetFingerprintAsNumPy(mol)
    return out


def aggregated_tanimoto(reference: np.ndarray, generated: np.ndarray, agg: str = "max", p: float = 1.0,
                        batch: int = 4096) -> np.ndarray:
    """Per generated fingerprint: max (or (mean of T^p)^(1/p)) of its Tanimoto similarity over ``reference``;
    computed as blocks of dense products (intersection = x . y, union = |x| + |y| - x . y; 0/0 counts as 1).
    Intersections are integer sums, exact in float32, so each similarity is one correctly rounded division
    whatever the blocking."""
    result = np.zeros(len(generated)) if agg == "max" else np.zeros(len(generated), dtype=np.float64)
    gen = torch.from_numpy(generated.astype(np.float32))
    gen_bits = gen.sum(1)
    for start in range(0, len(reference), batch):
        ref = torch.from_numpy(reference[start:start + batch].astype(np.float32))
        inter = ref @ gen.T
        union = ref.sum(1, keepdim=True) + gen_bits.unsqueeze(0)
        union.sub_(inter)
        sim = inter.div_(union).nan_to_num_(nan=1.0)  # 0/0: two empty fingerprints
        if agg == "max":
            result = np.maximum(result, sim.amax(0).numpy())
        else:
            result += (sim.double() ** p).sum(0).numpy()
    if agg == "mean":
        result = (result / len(reference)) ** (1.0 / p)
    return result


def snn(reference_fps: np.ndarray, generated_fps: np.ndarray) -> float:
    return float(aggregated_tanimoto(reference_fps, generated_fps, "max").mean())


def internal_diversity(fps: np.ndarray, p: float = 1.0) -> float:
    return float(1.0 - aggregated_tanimoto(fps, fps, "mean", p).mean())


def fragments(smiles: Sequence[str]) -> Counter:
    """BRICS fragments of every molecule, counted (MOSES's ``compute_fragments``)."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    counts: Counter = Counter()
    for text in smiles:
        mol = to_molecule(text)
        if mol is not None:
            counts.update(Chem.MolToSmiles(AllChem.FragmentOnBRICSBonds(mol)).split("."))
    return counts


def scaffolds(smiles: Sequence[str], min_rings: int = 2) -> Counter:
    """Bemis-Murcko scaffolds with at least ``min_rings`` rings, counted (MOSES's ``compute_scaffolds``)."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    counts: Counter = Counter()
    for text in smiles:
        mol = to_molecule(text)
        if mol is None:
            continue
        try:
            scaffold = MurckoScaffold.GetScaffoldForMol(mol)
        except (ValueError, RuntimeError):
            continue
        key = Chem.MolToSmiles(scaffold)
        if key and scaffold.GetRingInfo().NumRings() >= min_rings:
            counts[key] += 1
    return counts


def cosine_similarity(reference: Counter, generated: Counter) -> float:
    """<r, g> / (|r| |g|) over the union of keys; NaN when either is empty (as MOSES)."""
    if not reference or not generated:
        return math.nan
    dot = sum(count * generated.get(key, 0) for key, count in reference.items())
    norm = math.sqrt(sum(c * c for c in reference.values())) * math.sqrt(sum(c * c for c in generated.values()))
    return dot / norm


@lru_cache(maxsize=1)
def _filter_patterns() -> tuple:
    from rdkit import Chem

    from dig.data.smiles import read_moses_filters

    return tuple(pattern for _, smarts in read_moses_filters() if (pattern := Chem.MolFromSmarts(smarts)) is not None)


def passes_filters(smiles: str) -> bool:
    from rdkit import Chem

    mol = to_molecule(smiles)
    if mol is None:
        return False
    if any(len(ring) >= 8 for ring in mol.GetRingInfo().AtomRings()):
        return False
    if any(atom.GetFormalCharge() != 0 for atom in mol.GetAtoms()):
        return False
    if any(atom.GetSymbol() not in ALLOWED_ATOMS for atom in mol.GetAtoms()):
        return False
    with_h = Chem.AddHs(mol)
    return not any(with_h.HasSubstructMatch(pattern) for pattern in _filter_patterns())


def fraction_passing_filters(valid: Sequence[str]) -> float:
    return float(np.mean([passes_filters(s) for s in valid])) if valid else 0.0


@dataclass(frozen=True)
class Reference:
    """What the distribution metrics compare against: FCD statistics, fingerprints, fragment and scaffold
    counts of a reference set (MOSES's precomputed test statistics, or computed with ``from_smiles``)."""

    name: str  # "test", "testsf"
    fcd_mu: np.ndarray
    fcd_sigma: np.ndarray
    fingerprints: np.ndarray
    fragments: Counter
    scaffolds: Counter

    @classmethod
    def from_moses(cls, split: str = "test") -> Reference:
        from dig.data.smiles import read_moses_stats

        stats = read_moses_stats(split)
        return cls("test" if split == "test" else "testsf", np.asarray(stats["FCD"]["mu"], dtype=np.float64),
                   np.asarray(stats["FCD"]["sigma"], dtype=np.float64), stats["SNN"]["fps"],
                   Counter(stats["Frag"]["frag"]), Counter(stats["Scaf"]["scaf"]))

    @classmethod
    def from_smiles(cls, name: str, smiles: Sequence[str]) -> Reference:
        valid, _ = valid_canonical(smiles)
        mu, sigma = chemnet_statistics(valid)
        return cls(name, mu, sigma, morgan_fingerprints(valid), fragments(valid), scaffolds(valid))


def chemnet_statistics(smiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ChemNet's activations (fcd-torch, CPU)."""
    from fcd_torch import FCD

    stats = FCD(device="cpu", n_jobs=1, batch_size=512).precalc(list(smiles))
    return np.asarray(stats["mu"], dtype=np.float64), np.asarray(stats["sigma"], dtype=np.float64)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    from fcd_torch.utils import calculate_frechet_distance

    return float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))


class DistinctMolecules:
    """V as its distinct molecules in order of first appearance (``smiles``) and, for each molecule of V, the
    index of its distinct molecule (``inverse``): per-molecule work runs once per distinct molecule and is
    expanded back to V, so every mean over V keeps its duplicates and its order."""

    def __init__(self, valid: Sequence[str]) -> None:
        index: dict[str, int] = {}
        self.inverse = np.array([index.setdefault(s, len(index)) for s in valid], dtype=np.int64)
        self.smiles = list(index)
        self.counts = np.bincount(self.inverse, minlength=len(self.smiles))

    def counted(self, per_molecule) -> Counter:
        """Sum over V of ``per_molecule(smiles)`` (a Counter), each distinct molecule weighted by its count; keys
        in the order a pass over V would first meet them."""
        total: Counter = Counter()
        for smiles, count in zip(self.smiles, self.counts.tolist(), strict=True):
            for key, value in per_molecule(smiles).items():
                total[key] += value * count
        return total


def chemnet_activations(smiles: Sequence[str]) -> np.ndarray:
    """ChemNet's penultimate activations [n, 512] (fcd-torch, CPU)."""
    from fcd_torch import FCD

    return FCD(device="cpu", n_jobs=1, batch_size=512).get_predictions(list(smiles))


def distribution_metrics(valid: Sequence[str], references: Sequence[Reference],
                         fps: np.ndarray | None = None, distinct: DistinctMolecules | None = None) -> dict[str, float]:
    """FCD, SNN, Frag and Scaf of V against each reference, named ``<metric>_<reference>_<unit>``; ``fps``:
    the Morgan fingerprints of ``distinct``'s molecules when already computed."""
    out: dict[str, float] = {}
    if not valid:
        return out
    distinct = distinct or DistinctMolecules(valid)
    activations = chemnet_activations(distinct.smiles)[distinct.inverse]
    mu, sigma = activations.mean(0), np.cov(activations.T)  # as fcd-torch's precalc
    fps = morgan_fingerprints(distinct.smiles) if fps is None else fps
    frag = distinct.counted(lambda s: fragments([s]))
    scaf = distinct.counted(lambda s: scaffolds([s]))
    for ref in references:
        out[f"fcd_{ref.name}_dist"] = frechet_distance(mu, sigma, ref.fcd_mu, ref.fcd_sigma)
        out[f"snn_{ref.name}_sim"] = float(aggregated_tanimoto(ref.fingerprints, fps, "max")[distinct.inverse].mean())
        out[f"frag_{ref.name}_sim"] = cosine_similarity(ref.fragments, frag)
        out[f"scaf_{ref.name}_sim"] = cosine_similarity(ref.scaffolds, scaf)
    return out


def generation_metrics(generated: Sequence[str], train: set[str], references: Sequence[Reference] = (),
                       unique_k: Sequence[int] = (1000, 10000)) -> dict[str, float]:
    """Every metric of the module docstring for one set of generated SMILES; ``train`` holds canonical
    non-isomeric SMILES. A model that emits no valid molecule gets validity 0 and no other metric. Per-molecule
    work (fingerprints, filters, fragments, ChemNet) runs once per distinct valid molecule (``DistinctMolecules``)."""
    valid, validity = valid_canonical(generated)
    out = {"validity_frac": validity}
    if not valid:
        return out
    for k in unique_k:
        if len(valid) >= k:
            out[f"unique_at_{k // 1000}k_frac"] = unique_at(valid, k)
    out["unique_frac"] = unique_at(valid)
    out["novelty_frac"] = novelty(valid, train)
    distinct = DistinctMolecules(valid)
    fps = morgan_fingerprints(distinct.smiles)
    all_fps = fps[distinct.inverse]
    for p in (1.0, 2.0):
        similarity = aggregated_tanimoto(all_fps, fps, "mean", p)[distinct.inverse]
        out[f"intdiv{int(p)}_div"] = float(1.0 - similarity.mean())
    out["filters_frac"] = float(np.mean(np.array([passes_filters(s) for s in distinct.smiles])[distinct.inverse]))
    out.update(distribution_metrics(valid, references, fps, distinct))
    return out
