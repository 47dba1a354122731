"""Plugin loading through pluggy and the ``dig`` entry-point group.

A plugin is any module exposed under ``[project.entry-points.dig]`` that implements ``dig_register``.
dig's own tracks are plugins of the same kind, declared in dig's pyproject. A plugin that fails to import or
raises in its hook is reported and skipped unless strict mode is on.

Environment:
    DIG_STRICT_PLUGINS=1       a broken plugin is an error instead of a warning
    DIG_DISABLE_PLUGINS=a,b    skip these entry points (by entry-point name or distribution name)
    DIG_DISABLE_PLUGIN_AUTOLOAD=1  load only dig's built-in plugins
"""

from __future__ import annotations

import os
import traceback
import warnings
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

import pluggy

from dig.errors import PluginError
from dig.registry import Registry

GROUP = "dig"
BUILTIN_DISTRIBUTION = "dig-bench"

hookspec = pluggy.HookspecMarker("dig")
hookimpl = pluggy.HookimplMarker("dig")


class DigHookSpecs:
    @hookspec
    def dig_register(self, registry: Registry) -> None:
        """Add tracks, datasets, models, evaluators and explainers to ``registry``."""


class PluginLoadWarning(UserWarning):
    pass


@dataclass(frozen=True)
class PluginFailure:
    plugin: str
    distribution: str
    stage: str
    error: str
    traceback: str = ""

    def message(self) -> str:
        return (
            f"plugin {self.plugin!r} (distribution {self.distribution!r}) failed at {self.stage}: {self.error}; "
            f"it was skipped. Fix or uninstall it, or disable it with DIG_DISABLE_PLUGINS={self.plugin}"
        )


@dataclass
class LoadedPlugins:
    registry: Registry
    loaded: list[tuple[str, str]] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class PluginSettings:
    """How plugins are loaded; resolved once and handed to worker processes so they see the same registry."""

    strict: bool = False
    disabled: tuple[str, ...] = ()
    autoload: bool = True

    @classmethod
    def resolve(
        cls, strict: bool | None = None, disabled: list[str] | None = None, autoload: bool | None = None
    ) -> PluginSettings:
        """Explicit values win; unset ones come from the DIG_* environment variables."""
        env = os.environ
        if disabled is None:
            disabled = [p.strip() for p in env.get("DIG_DISABLE_PLUGINS", "").split(",") if p.strip()]
        return cls(
            strict=_truthy(env.get("DIG_STRICT_PLUGINS")) if strict is None else strict,
            disabled=tuple(disabled),
            autoload=not _truthy(env.get("DIG_DISABLE_PLUGIN_AUTOLOAD")) if autoload is None else autoload,
        )


def _distribution_name(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "<unknown>"


def load_plugins(settings: PluginSettings | None = None, extra: dict[str, object] | None = None) -> LoadedPlugins:
    """Build a fresh registry from every plugin; ``extra`` maps names to already-imported plugin modules."""
    settings = settings or PluginSettings.resolve()
    strict, disabled, autoload = settings.strict, set(settings.disabled), settings.autoload
    manager = pluggy.PluginManager("dig")
    manager.add_hookspecs(DigHookSpecs)
    result = LoadedPlugins(Registry())

    def fail(name: str, dist: str, stage: str, exc: BaseException) -> None:
        failure = PluginFailure(name, dist, stage, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        if strict:
            raise PluginError(failure.message().replace("it was skipped. ", "")) from exc
        result.failures.append(failure)
        warnings.warn(failure.message(), PluginLoadWarning, stacklevel=3)

    candidates: list[tuple[str, str, object]] = []
    eps = sorted(entry_points(group=GROUP), key=lambda ep: (_distribution_name(ep) != BUILTIN_DISTRIBUTION, ep.name))
    seen: set[str] = set()
    for ep in eps:
        dist = _distribution_name(ep)
        if ep.name in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(ep.name)
        if ep.name in disabled or dist in disabled:
            continue
        if dist != BUILTIN_DISTRIBUTION and not autoload:
            continue
        try:
            candidates.append((ep.name, dist, ep.load()))
        except Exception as exc:  # noqa: BLE001 - any import failure of a third-party plugin is reported
            fail(ep.name, dist, "import", exc)
    for name, module in (extra or {}).items():
        candidates.append((name, "<in-process>", module))

    registry = result.registry
    for name, dist, module in candidates:
        try:
            manager.register(module, name=name)
        except Exception as exc:  # noqa: BLE001
            fail(name, dist, "registration", exc)
            continue
        impl = getattr(module, "dig_register", None)
        if impl is None:
            continue
        before = registry.snapshot()
        try:
            with registry.registering_for(name):
                impl(registry=registry)
        except Exception as exc:  # noqa: BLE001
            registry.restore(before)
            fail(name, dist, "dig_register", exc)
            continue
        result.loaded.append((name, dist))
    return result
