"""Write ``docs/plugins.md``, the reference for plugin authors, from the code itself: signatures, docstrings,
dataclass fields with the comments beside them (units), and the tables plugins can use. A test regenerates it
and compares, so the page cannot drift from the code.

    python -m dig.apidoc > docs/plugins.md
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from typing import Any

HEADER = """\
# Writing a dig plugin: API reference

Generated from dig's source by `python -m dig.apidoc > docs/plugins.md` (a test fails when it is stale); do
not edit by hand. CONTRIBUTING.md shows how to package a plugin; `dig plugin new NAME` writes a working one.

A plugin is a distribution with an entry point in the group `dig` whose module defines the hook
`dig_register(registry)`, decorated with `dig.plugins.hookimpl`. Everything below is what that hook and the
objects it registers touch. The examples in `plugins/` are complete: `dig-egnn` adds a model, `dig-lj` a
forces dataset.

Commands for plugin authors: `dig list` (what is registered, by plugin), `dig data validate NAME` (the checks
a bench runs on a dataset before any job), `dig data build NAME` (calls `prepare(None)`), `dig data prepare
NAME --from FILE` (calls `prepare(FILE)`), `dig measure-cost MODEL` (its `relative_cost`), `dig plugin new
NAME` (a scaffold).
"""


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip()


def _field_comments(cls: type) -> dict[str, str]:
    """``name: type  # comment`` lines of a dataclass's source: the units and shapes written beside fields."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    found = {}
    for line in source.splitlines():
        match = re.match(r"\s+(\w+)\s*:\s*[^#=]+(?:=[^#]+)?#\s*(.+)$", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def _signature(obj: Any) -> str:
    """``(a: int, b: str = 'x') -> T`` with string annotations unquoted and ``self`` left out."""
    signature = inspect.signature(obj)
    params = []
    for param in signature.parameters.values():
        if param.name == "self":
            continue
        text = param.name if param.kind is not param.VAR_KEYWORD else f"**{param.name}"
        if param.kind is param.KEYWORD_ONLY and not any(p.startswith("*") for p in params):
            params.append("*")
        if param.annotation is not param.empty:
            text += f": {_type_name(param.annotation)}"
        if param.default is not param.empty:
            text += f" = {param.default!r}"
        params.append(text)
    returns = "" if signature.return_annotation is signature.empty else f" -> {_type_name(signature.return_annotation)}"
    return f"({', '.join(params)}){returns}"


def _type_name(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))


def _dataclass_section(cls: type, title: str | None = None) -> str:
    comments = _field_comments(cls)
    lines = [f"### `{title or cls.__name__}`", "", _doc(cls), "", "| field | type | meaning |", "|---|---|---|"]
    for field in dataclasses.fields(cls):
        if field.name.startswith("_"):
            continue
        default = "" if field.default is dataclasses.MISSING else f" (default `{field.default!r}`)"
        cells = (f"`{field.name}`", f"`{_type_name(field.type)}`", f"{comments.get(field.name, '')}{default}")
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _function_section(obj: Any, name: str) -> str:
    return f"### `{name}{_signature(obj)}`\n\n{_doc(obj)}\n"


def _class_methods_section(cls: type, title: str) -> str:
    parts = [f"### `{title}`", "", _doc(cls), ""]
    for name, member in cls.__dict__.items():
        if callable(member) and not name.startswith("_"):
            parts.append(f"- `{name}{_signature(member)}`: {' '.join(_doc(member).split())}")
    return "\n".join(parts) + "\n"


def render() -> str:
    from dig.data import load_cached_arrays, load_or_build, permuted_split, read_npz, save_cached_arrays
    from dig.ops import (
        CSRGraph,
        Triplets,
        edge_softmax,
        gather_mul_scatter,
        radius_graph,
        scatter,
        segment,
        spmm,
        triplets,
    )
    from dig.registry import NAME_PATTERN, Registry
    from dig.tracks.base import BUDGETS
    from dig.tracks.threed import (
        AtomwiseReadout,
        MoleculeBatch,
        MoleculeDataset,
        Molecules,
        TargetSpec,
        TargetStats,
    )
    from dig.tracks.threed.cost import DATASET_KINDS
    from dig.tracks.threed.evaluators import FORCE_UNITS
    from dig.tracks.threed.train import TrainConfig
    from dig.tracks.threed.validate import MEDIAN_NEIGHBOUR_RANGE_A, MIN_DISTANCE_A, SPLIT_KEYS

    parts = [HEADER, "## Registering", ""]
    parts.append(f"Names match `{NAME_PATTERN.pattern}` (they appear in file names, CSVs and tables). "
                 f"Budgets: {', '.join(f'`{b}`' for b in BUDGETS)}.\n")
    for method in ("add_model", "add_dataset", "add_evaluator", "add_explainer", "add_track"):
        parts.append(_function_section(getattr(Registry, method), f"registry.{method}"))
    parts += ["## The 3D track: models", ""]
    parts.append("A model factory is called as `build(stats: TargetStats, **hparams)` and returns an `nn.Module` "
                 "with `forward(batch: MoleculeBatch) -> Tensor[B, T]`: one prediction per molecule and target, in "
                 "the targets' own units (eV for energies). On forces datasets dig computes F = -dE/dpos from the "
                 "first target by autograd.\n")
    parts += [_dataclass_section(MoleculeBatch), _dataclass_section(TargetStats), _dataclass_section(TargetSpec)]
    parts.append(f"### `AtomwiseReadout(stats)`\n\n{_doc(AtomwiseReadout)}\n")
    parts += ["## The 3D track: datasets", ""]
    parts.append(_class_methods_section(MoleculeDataset, "MoleculeDataset (protocol)"))
    parts.append(_dataclass_section(Molecules))
    parts.append(f"`forces_unit` values: {', '.join(f'`{u}`' for u in FORCE_UNITS)} (metrics report "
                 f"{', '.join(f'`forces_mae_{name}`' for name, _ in FORCE_UNITS.values())}). Split keys: "
                 f"{', '.join(f'`{k}`' for k in SPLIT_KEYS)}. Position checks: no two atoms closer than "
                 f"{MIN_DISTANCE_A} Å, median nearest-neighbour distance within {MEDIAN_NEIGHBOUR_RANGE_A} Å. "
                 f"Dataset kinds for `relative_cost`: {', '.join(f'`{k}`' for k in DATASET_KINDS)} (`forces` when "
                 "the budget's `forces_weight` > 0).\n")
    parts.append(_dataclass_section(TrainConfig, "TrainConfig (what train={budget: {...}} may set)"))
    parts += ["## Message passing (`dig.ops`)", ""]
    parts.append(_dataclass_section(CSRGraph))
    parts.append(_function_section(CSRGraph.from_edge_index, "CSRGraph.from_edge_index"))
    for function in (radius_graph, segment, scatter, gather_mul_scatter, spmm, edge_softmax, triplets):
        parts.append(_function_section(function, f"dig.ops.{function.__name__}"))
    parts.append(_dataclass_section(Triplets))
    parts += ["## Dataset caches (`dig.data`)", ""]
    for function in (save_cached_arrays, load_cached_arrays, load_or_build, read_npz, permuted_split):
        parts.append(_function_section(function, f"dig.data.{function.__name__}"))
    return "\n".join(parts).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
