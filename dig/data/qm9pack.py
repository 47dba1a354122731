"""The QM9 files shipped inside the ``qm9pack`` PyPI package (Ramakrishnan et al. 2014: 130,831 molecules),
found without importing the package (its ``get_data()`` is broken) and verified by checksum. Shared by the
3D track (geometries and targets) and the generation track (SMILES)."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

from dig.errors import DataError

QM9PACK_SHA256 = {
    "qm9_part1.csv": "19f0a5d595462d52cd82eef3370f3e9eb55a1f52cb14985657200349568deff3",
    "qm9_part2.csv": "2bca113fdc0b28a13563c80ed9b240e934f3da6c64c64fe74ddb4f0f36036e61",
    "qm9_part3.csv": "9c5efb5733d2af149db8d95d36ff198b4ffed12d9f7b344220a1e5877d5c6a43",
}
NUM_MOLECULES = 130_831


def qm9pack_files() -> list[Path]:
    """The CSVs inside the installed qm9pack package, found without importing it (its import is broken)."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the qm9pack package is not installed: pip install qm9pack (it ships the QM9 CSVs)")
    root = Path(next(iter(spec.submodule_search_locations))) / "data"
    files = [root / name for name in sorted(QM9PACK_SHA256)]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise DataError(f"qm9pack is installed but lacks {missing}; reinstall it: pip install --force-reinstall qm9pack")
    return files


def verify_qm9pack_file(path: Path) -> None:
    from dig.io import sha256_file

    expected = QM9PACK_SHA256.get(path.name)
    if expected and sha256_file(path) != expected:
        raise DataError(f"{path} does not match the known qm9pack checksum; reinstall qm9pack==1.0.3")


def read_qm9pack_smiles(paths: list[Path] | None = None, verify: bool = True) -> tuple[list[int], list[str]]:
    """(QM9 index, SMILES) of every molecule, in file order, from qm9pack's ``Index`` and ``SMILES`` columns."""
    ids, smiles, _ = read_qm9pack_columns((), paths, verify)
    return ids, smiles


def read_qm9pack_columns(columns: tuple[str, ...], paths: list[Path] | None = None,
                         verify: bool = True) -> tuple[list[int], list[str], dict[str, list[float]]]:
    """(QM9 index, SMILES, {column: values}) of every molecule in file order, ``columns`` read as floats
    (e.g. ``HOMO_LUMO_gap_au``, in the file's units)."""
    ids, smiles, values = [], [], {column: [] for column in columns}
    for path in paths if paths is not None else qm9pack_files():
        if verify:
            verify_qm9pack_file(path)
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"Index", "SMILES", *columns} - set(reader.fieldnames or ())
            if missing:
                raise DataError(f"{path} is not a qm9pack QM9 CSV: columns {sorted(missing)} are missing")
            for line, row in enumerate(reader, start=2):
                try:
                    ids.append(int(row["Index"]))
                    for column in columns:
                        values[column].append(float(row[column]))
                except ValueError as exc:
                    raise DataError(f"{path}:{line}: {exc} (Index {row['Index']!r})") from exc
                smiles.append(row["SMILES"].strip())
    return ids, smiles, values
