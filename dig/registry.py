"""The one registry of tracks, datasets, models, evaluators and explainers.

Every entry carries the plugin that registered it, so ``dig list`` can say where a method comes from and a
name clash can name both plugins. Plugins (built-in ones included) fill it through ``dig_register``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dig.errors import DigError, DuplicateNameError, UnknownNameError

KINDS = ("track", "dataset", "model", "evaluator", "explainer")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    plugin: str
    track: str
    summary: str
    obj: Any
    meta: dict[str, Any] = field(default_factory=dict)


class Registry:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str], Entry] = {}
        self._plugin = "<unknown>"

    @contextmanager
    def registering_for(self, plugin: str) -> Iterator[Registry]:
        """Attribute everything added inside the block to ``plugin``."""
        previous, self._plugin = self._plugin, plugin
        try:
            yield self
        finally:
            self._plugin = previous

    def add(self, kind: str, name: str, obj: Any, *, track: str, summary: str, **meta: Any) -> Entry:
        if kind not in KINDS:
            raise DigError(f"unknown registry kind {kind!r}; use one of {', '.join(KINDS)}")
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise DigError(
                f"invalid {kind} name {name!r} from plugin {self._plugin!r}: a name starts with a letter or digit "
                "and holds only letters, digits and . _ + - (it appears in file names, CSVs and tables)"
            )
        if kind != "track" and ("track", track, track) not in self._entries:
            raise DigError(
                f"{kind} {name!r} from plugin {self._plugin!r} names track {track!r}, which is not registered; "
                f"known tracks: {', '.join(self.names('track')) or 'none'}"
            )
        key = (kind, track, name)
        if key in self._entries:
            other = self._entries[key]
            raise DuplicateNameError(
                f"{kind} {name!r} of track {track!r} is registered twice: by plugin {other.plugin!r} and by "
                f"plugin {self._plugin!r}; rename one of them or disable a plugin with DIG_DISABLE_PLUGINS"
            )
        entry = Entry(kind, name, self._plugin, track, summary.strip().splitlines()[0] if summary else "", obj, meta)
        self._entries[key] = entry
        return entry

    def add_track(self, name: str, obj: Any, *, summary: str, **meta: Any) -> Entry:
        """Register a track: an object following ``dig.tracks.base.Track`` (prepare, job_config, run_job)."""
        return self.add("track", name, obj, track=name, summary=summary, **meta)

    def add_dataset(self, name: str, obj: Any, *, track: str, summary: str, **meta: Any) -> Entry:
        """Register a dataset object following the track's dataset protocol.

        3D track options (``meta``): ``evaluator="mae"`` (the evaluator's registered name);
        ``train={budget: {...}}``: training settings for jobs on this dataset, any ``TrainConfig`` field
        (``epochs`` SchNet-equivalent, ``batch_size``, ``lr``, ``forces_weight`` rho > 0 trains on forces) plus
        ``min_epochs`` (no model trains fewer; it breaks equal time, so the built-in datasets set none); a budget missing from ``train`` falls back to its ``default``
        entry. A dataset with forces must set ``forces_weight`` in every budget it runs in."""
        return self.add("dataset", name, obj, track=track, summary=summary, **meta)

    def add_model(self, name: str, obj: Any, *, track: str, summary: str, **meta: Any) -> Entry:
        """Register a model factory.

        3D track options (``meta``): ``hparams={budget: {...}}``, keyword arguments of the factory
        ``build(stats: TargetStats, **hparams) -> nn.Module`` per budget (``default`` is the fallback);
        ``relative_cost``: CPU time per training molecule over dig's SchNet at the default sizes, a number or
        ``{"energy": c, "forces": c}`` per dataset kind, to which dataset names may be added where one differs
        (``{"energy": 7.8, "forces": 8.2, "xtb-ethanol": 5.7}``; measure it with ``dig measure-cost NAME``);
        ``train={budget: {...}}``: ``TrainConfig`` overrides for this model (e.g. its learning rate);
        ``dataset_kinds=("forces",)``: the dataset kinds it applies to (others are skipped by default);
        ``departures=("...",)``: where it differs from the published model, shown with the leaderboard (a model
        named after a paper is that paper's model; a changed one is a variant with its own name)."""
        return self.add("model", name, obj, track=track, summary=summary, **meta)

    def add_evaluator(self, name: str, obj: Any, *, track: str, summary: str, **meta: Any) -> Entry:
        """Register a pure function ``evaluate(predictions, references, targets) -> dict[str, float]`` whose
        metric names end with their unit (``U0_mae_meV``); ``higher_is_better=False`` in ``meta``."""
        return self.add("evaluator", name, obj, track=track, summary=summary, **meta)

    def add_explainer(self, name: str, obj: Any, *, track: str, summary: str, **meta: Any) -> Entry:
        """Register an explainer (explainability track). Options (``meta``): ``hparams={budget: {...}}``, keyword
        arguments of the factory per budget; ``relative_cost``: its time per instance relative to the others
        (job ordering); ``max_instances={budget: k}``: explain a fixed random sample of k of the test items
        (stated in every record's config) when every item would take too long."""
        return self.add("explainer", name, obj, track=track, summary=summary, **meta)

    def entries(self, kind: str | None = None, track: str | None = None) -> list[Entry]:
        return sorted(
            (e for e in self._entries.values() if (kind is None or e.kind == kind) and (track is None or e.track == track)),
            key=lambda e: (KINDS.index(e.kind), e.track, e.name),
        )

    def names(self, kind: str, track: str | None = None) -> list[str]:
        return [e.name for e in self.entries(kind, track)]

    def get(self, kind: str, name: str, track: str | None = None) -> Entry:
        track = name if kind == "track" else track
        matches = [e for e in self.entries(kind, track) if e.name == name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise DigError(f"{kind} {name!r} exists in several tracks ({', '.join(e.track for e in matches)}); name the track")
        known = self.names(kind, track)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        where = f" in track {track!r}" if track and kind != "track" else ""
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise UnknownNameError(
            f"unknown {kind} {name!r}{where}; {hint}known: {', '.join(known) or 'none'} (see `dig list`)"
        )

    def snapshot(self) -> frozenset:
        return frozenset(self._entries)

    def restore(self, snapshot: frozenset) -> None:
        """Drop every entry added since ``snapshot`` (a plugin whose hook raised leaves nothing behind)."""
        for key in set(self._entries) - snapshot:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
