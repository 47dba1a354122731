"""SMILES corpora read offline from files shipped in PyPI wheels, and the canonical SMILES file formats.

- MOSES (Polykovskiy et al., Front. Pharmacol. 2020): ``train`` (1,584,663), ``test`` (176,074) and
  ``test_scaffolds`` (176,225) SMILES and the precomputed test statistics inside the ``molsets`` wheel
  (``moses/dataset/data``). Its install and import are broken (pomegranate, rdkit.six): the files are found with
  ``importlib.util.find_spec`` and never imported; ``pip install --no-deps molsets`` provides them.
- ZINC250k's canonical ``250k_rndm_zinc_drugs_clean_3.csv`` (columns smiles, logP, qed, SAS; SMILES quoted with
  a trailing newline), read by ``read_zinc250k_csv``.

Unparseable SMILES are counted and reported with their first examples (``ParseReport``), never dropped silently.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from dig.data.package_files import package_data_file
from dig.errors import DataError

MOSES_SHA256 = {
    "train.csv.gz": "786f0313aa6b9ba5514df685f885742a70ea8d86f1a4fa48115f7f80a634265c",
    "test.csv.gz": "f896fbf3764f88d94670b9959e5872c600c12152a18233823e820761b7a791b2",
    "test_scaffolds.csv.gz": "adffb2192c1bfe31ab0e13154d4af19a37dc18bdbf3cd7b4491e04405128adde",
    "test_stats.npz": "ded25073225a895d4ed17bf1d4223d27560e87ff4cb85786346ca1cc8efa03d3",
    "test_scaffolds_stats.npz": "7b7aba6c1474634a019bebf16f389d554cb9dd1021dfc8c1d1e54430a9f0e7f8",
    "mcf.csv": "f4a2bfacb4cb8877295eb2a4b4e61ec9770a26388f1331e5dc9c193d22dd5f89",
    "wehi_pains.csv": "d762e5420ec70f06d7e41d336cae6f67e2feb0eddf05c6171192a332726d296f",
}
_MOSES_FOLDERS = {"mcf.csv": "metrics", "wehi_pains.csv": "metrics"}  # the rest: dataset/data
MOSES_SIZES = {"train": 1_584_663, "test": 176_074, "test_scaffolds": 176_225}


def moses_file(name: str, verify: bool = True) -> Path:
    """Path of one MOSES file (``train.csv.gz``, ``test_stats.npz``, ...) inside the installed molsets wheel."""
    if name not in MOSES_SHA256:
        raise DataError(f"unknown MOSES file {name!r}; known: {', '.join(sorted(MOSES_SHA256))}")
    folder = _MOSES_FOLDERS.get(name, "dataset/data")
    return package_data_file("moses", folder, name, MOSES_SHA256[name] if verify else None, "molsets==0.3.1")


def read_smiles_column(path: Path, column: str = "SMILES") -> list[str]:
    """One column of a (gzipped) CSV file, stripped, in file order."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as handle:
            text = handle.read()
        lines = text.splitlines()
        if lines and lines[0].strip() == column and "," not in text and '"' not in text:  # one bare column: 10x faster
            return [line.strip() for line in lines[1:] if line.strip()]
        with io.StringIO(text, newline="") as handle:
            reader = csv.DictReader(handle)
            if column not in (reader.fieldnames or ()):
                raise DataError(f"{path}: no {column!r} column (columns: {reader.fieldnames})")
            return [row[column].strip() for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from exc


def read_moses_split(split: str) -> list[str]:
    """MOSES ``train``, ``test`` or ``test_scaffolds`` SMILES, in the files' order."""
    if split not in MOSES_SIZES:
        raise DataError(f"unknown MOSES split {split!r}; known: {', '.join(MOSES_SIZES)}")
    smiles = read_smiles_column(moses_file(f"{split}.csv.gz"))
    if len(smiles) != MOSES_SIZES[split]:
        raise DataError(f"MOSES {split}: {len(smiles)} SMILES, expected {MOSES_SIZES[split]}")
    return smiles


@lru_cache(maxsize=2)
def read_moses_stats(split: str = "test") -> dict:
    """MOSES's precomputed statistics of ``test`` or ``test_scaffolds``: FCD (mu [512], sigma [512, 512] of
    ChemNet activations), SNN (Morgan r=2 1024-bit fingerprints, uint8), Frag and Scaf (Counters). A pickled
    dict: loaded only after its checksum matched the released file."""
    path = moses_file(f"{split}_stats.npz")
    with np.load(path, allow_pickle=True) as archive:
        return archive["stats"].item()


def read_moses_filters() -> list[tuple[str, str]]:
    """(name, SMARTS) of MOSES's structural filters: the MCF rules and the PAINS set (``wehi_pains.csv``,
    no header: SMARTS, name)."""
    rules = []
    with open(moses_file("mcf.csv"), newline="", encoding="utf-8") as handle:
        rules += [(row["names"], row["smarts"].strip()) for row in csv.DictReader(handle)]
    with open(moses_file("wehi_pains.csv"), newline="", encoding="utf-8") as handle:
        rules += [(row[1].strip(), row[0].strip()) for row in csv.reader(handle) if row]
    return rules


@dataclass
class ParseReport:
    """What parsing a SMILES list gave: how many failed, and the first few (index, SMILES) that did."""

    total: int = 0
    failed: int = 0
    examples: list[tuple[int, str]] = field(default_factory=list)

    def message(self, source: str) -> str:
        shown = ", ".join(f"#{i} {s!r}" for i, s in self.examples)
        return f"{source}: {self.failed} of {self.total} SMILES could not be parsed by RDKit (first: {shown})"


def iter_molecules(smiles: list[str], report: ParseReport, max_examples: int = 5):
    """RDKit molecule of each SMILES in turn (None where unparseable), counting failures in ``report``; one
    molecule at a time, for corpora too large to hold as molecules."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    report.total += len(smiles)
    for index, text in enumerate(smiles):
        mol = Chem.MolFromSmiles(text) if text else None
        if mol is None:
            report.failed += 1
            if len(report.examples) < max_examples:
                report.examples.append((index, text))
        yield mol


def parse_smiles(smiles: list[str], source: str, max_examples: int = 5):
    """RDKit molecules of ``smiles`` (None where unparseable) and a ``ParseReport``."""
    report = ParseReport()
    return list(iter_molecules(smiles, report, max_examples)), report


def read_zinc250k_csv(path: str | Path) -> dict[str, list]:
    """ZINC250k's canonical ``250k_rndm_zinc_drugs_clean_3.csv`` (Gómez-Bombarelli et al. 2018): columns
    ``smiles`` (quoted, with a trailing newline), ``logP``, ``qed``, ``SAS``. Returns the stripped SMILES and
    the three property columns as floats; a malformed row names the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable text file ({exc})") from exc
    reader = csv.DictReader(io.StringIO(text))
    needed = {"smiles", "logP", "qed", "SAS"}
    if not needed <= set(reader.fieldnames or ()):
        raise DataError(f"{path}: not ZINC250k's CSV: columns {sorted(needed - set(reader.fieldnames or ()))} are missing")
    out: dict[str, list] = {"smiles": [], "logP": [], "qed": [], "SAS": []}
    for row in reader:
        try:
            values = [float(row[c]) for c in ("logP", "qed", "SAS")]
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}:{reader.line_num}: malformed property value ({exc})") from exc
        out["smiles"].append(row["smiles"].strip())
        for column, value in zip(("logP", "qed", "SAS"), values, strict=True):
            out[column].append(value)
    return out
