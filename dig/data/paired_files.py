"""Folders of paired files (CARE's ``low/`` + ``GT/``, images + masks): the files of the same name in two
sibling folders, with a DataError naming what is missing or unmatched."""

from __future__ import annotations

import os
from pathlib import Path


def paired_files(source: str | os.PathLike, first: str, second: str, suffixes: tuple[str, ...], layout: str,
                 by_stem: bool = False) -> list[tuple[str, Path, Path]]:
    """``(name, first/name, second/name)`` for every file with one of ``suffixes`` in ``source/first``, sorted by
    name; ``by_stem`` pairs ``a.png`` with ``a.tif``. ``layout`` names the folder kind in messages."""
    from dig.errors import DataError

    root = Path(source)
    folders = (root / first, root / second)
    for folder in folders:
        if not folder.is_dir():
            raise DataError(f"{root} is not {layout}: {folder} is missing (expected {first}/ and {second}/ with files "
                            "of matching names)")
    files = [{(p.stem if by_stem else p.name): p for p in folder.iterdir() if p.suffix.lower() in suffixes}
             for folder in folders]
    if not files[0]:
        raise DataError(f"{folders[0]} holds no {'/'.join(suffixes)} files")
    unmatched = sorted(set(files[0]) ^ set(files[1]))
    if unmatched:
        side = f"{second}/" if unmatched[0] in files[0] else f"{first}/"
        raise DataError(f"{root}: {', '.join(unmatched[:5])} lack a counterpart in {side}; every {first}/ file needs "
                        f"a {second}/ file of the same name")
    return [(name, files[0][name], files[1][name]) for name in sorted(files[0])]
