"""Finding, loading and asking plugins: one PluginManager per process.

Built-in plugins are registered by import path; third-party plugins through
entry points of group ``neuronperf``. Everything is loaded on first need
(``get_host()``), once, in a stable order: built-ins, then entry points sorted
by name. A plugin that fails to import (any exception, SystemExit and
KeyboardInterrupt too), implements an unknown hook, raises in a hook or
registers something invalid or already taken is reported in a warning (entry
point, distribution, version, error), recorded as failed and skipped: nothing
it registered is kept.

Environment:
    NEURONPERF_STRICT_PLUGINS=1   re-raise plugin failures (for plugin authors and CI)
    NEURONPERF_DISABLE_PLUGINS=a,b   do not load the entry points named a and b
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

import pluggy

from neuronperf_core import __version__, hookspecs
from neuronperf_core.backend import Backend
from neuronperf_core.errors import PluginError, RegistrationError
from neuronperf_core.metrics.base import BaseEvalMetric, validate_metric_class
from neuronperf_core.registry import Registry

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
STRICT_ENV = "NEURONPERF_STRICT_PLUGINS"
DISABLE_ENV = "NEURONPERF_DISABLE_PLUGINS"

# Import paths of the plugins that ship with the core. They register import paths, so
# loading them imports neither numpy nor the benchmark engine.
BUILTIN_PLUGINS = ("neuronperf_core.metrics.builtin", "neuronperf_core.builtin_runners")
COMMANDS_HOOK = "neuronperf_register_commands"  # called by the command line, not at loading

# hook name -> the registry kind its register callback fills
REGISTRATION_HOOKS = {
    "neuronperf_register_metrics": "metrics",
    "neuronperf_register_backends": "backends",
    "neuronperf_register_runners": "runners",
}

Status = Literal["active", "blocked", "failed"]


class PluginWarning(UserWarning):
    """A plugin failed and was skipped."""


@dataclass
class PluginInfo:
    """What ``neuronperf plugins`` shows for one plugin."""

    name: str
    distribution: str | None
    version: str | None
    source: Literal["builtin", "entry point"]
    status: Status = "active"
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The plugin as a warning names it: entry point, distribution and version."""
        if self.source == "builtin":
            return f"built-in plugin {self.name!r}"
        return (
            f"plugin {self.name!r} (entry point in group {ENTRY_POINT_GROUP!r} of "
            f"distribution {self.distribution or 'unknown'} {self.version or '?'})"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _validate_backend(name: str, backend: Any) -> None:
    if not isinstance(backend, Backend):
        missing = sorted(
            m for m in dir(Backend) if not m.startswith("_") and not hasattr(backend, m)
        )
        raise RegistrationError(
            f"backend {name!r}: {type(backend).__name__} does not satisfy "
            f"neuronperf_core.backend.Backend (missing: {', '.join(missing)}); register an "
            "object with every member of that protocol."
        )
    if not name.isidentifier() or name.startswith("_"):
        raise RegistrationError(
            f"backend name {name!r} must be a Python identifier: it is the namespace npf.{name}."
        )


def strict_mode() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def disabled_names() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


class PluginHost:
    """The plugin manager, what each plugin is, and the registries the plugins filled."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.metrics: Registry[type[BaseEvalMetric]] = Registry(
            "metric",
            validate_metric_class,
            "npf.list_metrics() (or `neuronperf metrics`) lists every metric and "
            "npf.register_metric() adds your own. ",
            lazy=True,
        )
        self.backends: Registry[Backend] = Registry("backend", _validate_backend)
        self.runners: Registry[Any] = Registry("runner", lazy=True)
        self._strict = strict_mode()

    def registry(self, kind: str) -> Registry[Any]:
        registries: dict[str, Registry[Any]] = {
            "metrics": self.metrics,
            "backends": self.backends,
            "runners": self.runners,
        }
        return registries[kind]

    # -- loading --------------------------------------------------------------

    def load(self) -> None:
        for path in BUILTIN_PLUGINS:
            info = PluginInfo(path, "neuronperf-core", __version__, "builtin")
            self._add(info, functools.partial(importlib.import_module, path))
        blocked = disabled_names()
        seen: dict[str, PluginInfo] = {}
        for ep in _sorted_entry_points():
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                ep.name,
                dist.metadata["Name"] if dist is not None else None,
                dist.version if dist is not None else None,
                "entry point",
            )
            first = seen.get(ep.name)
            if first is not None:
                if (first.distribution, first.version) == (info.distribution, info.version):
                    continue  # the same distribution found twice on sys.path
                self._fail(
                    info,
                    PluginError(f"entry point name {ep.name!r} is already used by {first.label}"),
                )
                continue
            seen[ep.name] = info
            if ep.name in blocked:
                info.status = "blocked"
                self.plugins.append(info)
                continue
            self._add(info, ep.load)

    def _add(self, info: PluginInfo, load: Callable[[], object]) -> None:
        """Import one plugin, register it with pluggy, then run its registration hooks."""
        self.plugins.append(info)
        try:
            plugin = load()
            self.pm.register(plugin, name=info.name)
            info.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
            unknown = [h for h in info.hooks if not getattr(self.pm.hook, h).has_spec()]
            if unknown:
                raise PluginError(
                    f"it implements {', '.join(unknown)}, which neuronperf does not define; "
                    f"known hooks: {', '.join(sorted(REGISTRATION_HOOKS))}"
                )
            wrappers = [
                impl.function.__name__
                for c in self.pm.get_hookcallers(plugin) or []
                for impl in c.get_hookimpls()
                if impl.plugin is plugin and (impl.hookwrapper or impl.wrapper)
            ]
            if wrappers:
                raise PluginError(
                    f"{', '.join(wrappers)} is marked as a hook wrapper; registration hooks "
                    "are plain calls: drop wrapper=True / hookwrapper=True"
                )
            self._register_from(plugin, info)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt too: not the host's end
            if info.source == "builtin":
                raise  # a broken built-in is neuronperf's own bug: never hide it
            self._fail(info, exc)

    def _register_from(self, plugin: object, info: PluginInfo) -> None:
        """Call each registration hook of ``plugin`` with a callback that records its name."""
        for hook_name, kind in REGISTRATION_HOOKS.items():
            impls = [
                i for i in getattr(self.pm.hook, hook_name).get_hookimpls() if i.plugin is plugin
            ]
            registry = self.registry(kind)

            def register(
                name: Any, value: Any = None, *, registry: Registry[Any] = registry, **kwargs: Any
            ) -> None:
                if registry is self.backends:  # register(backend): it names itself
                    backend = name
                    label = getattr(backend, "name", None)
                    registry.add(
                        label if isinstance(label, str) else repr(backend),
                        backend,
                        provider=info.name,
                        description=str(getattr(backend, "description", "")),
                    )
                    return
                registry.add(name, value, provider=info.name, origin=info.label, **kwargs)

            for impl in impls:
                impl.function(**{arg: register for arg in impl.argnames})
            names = registry.names_by(info.name)
            if names:
                info.registered[kind] = names

    def add_commands(self, cli: Any) -> None:
        """Let every active plugin add its subcommands to the click group ``cli``; a plugin
        whose hook raises is marked failed and the others go on."""
        for impl in getattr(self.pm.hook, COMMANDS_HOOK).get_hookimpls():
            info = next((p for p in self.plugins if p.name == impl.plugin_name), None)
            if info is None or info.status != "active":
                continue
            before = set(getattr(cli, "commands", {}))
            try:
                impl.function(cli=cli)
            except BaseException as exc:  # as at loading: any failure is the plugin's
                if info.source == "builtin":
                    raise
                self._fail(info, exc)
                continue
            added = sorted(set(getattr(cli, "commands", {})) - before)
            if added:
                info.registered["commands"] = added

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        info.status = "failed"
        info.error = f"{type(exc).__name__}: {exc}"
        info.registered = {}
        for kind in REGISTRATION_HOOKS.values():
            self.registry(kind).remove_provider(info.name)
        if info.name in (self.pm.get_name(p) for p in self.pm.get_plugins()):
            self.pm.unregister(name=info.name)
        message = f"neuronperf: {info.label} failed and is skipped: {info.error}"
        if self._strict:
            raise PluginError(f"{message} ({STRICT_ENV} is set)") from exc
        warnings.warn(
            f"{message.rstrip('.')}. Fix or uninstall it, or set {DISABLE_ENV}={info.name} to "
            "skip it without this warning.",
            PluginWarning,
            stacklevel=2,
        )


def _sorted_entry_points() -> list[EntryPoint]:
    eps = entry_points(group=ENTRY_POINT_GROUP)
    return sorted(eps, key=lambda ep: (ep.name, ep.value))


_host: PluginHost | None = None
_loading = False  # plugins are being loaded by this process's first get_host()
_lock = threading.RLock()  # re-entrant, so a plugin's nested call reaches the check below


def get_host() -> PluginHost:
    """The process's plugin host, loading every plugin on the first call."""
    global _host, _loading
    if _host is None:
        with _lock:
            if _loading:
                raise PluginError(
                    "a plugin called neuronperf (register_metric, list_metrics, ...) while "
                    "plugins were still loading. Plugins register through the `register` "
                    "callback their hook receives, not at import time."
                )
            if _host is None:
                _loading = True
                try:
                    host = PluginHost()
                    host.load()
                finally:
                    _loading = False
                _host = host
    return _host


def reset() -> None:
    """Forget loaded plugins and run-time registrations; the next use loads afresh."""
    global _host
    with _lock:
        _host = None
