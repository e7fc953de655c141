"""The user-facing metric functions of the guide: list, register, look up."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from neuronperf_core.errors import RegistrationError
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.plugins import get_host
from neuronperf_core.registry import RUNTIME_PROVIDER, Entry


def register_metric(
    name: str,
    metric_class: type[BaseEvalMetric] | str,
    *,
    description: str | None = None,
    aliases: tuple[str, ...] = (),
    replace: bool = False,
) -> None:
    """Register ``metric_class`` under ``name`` (provider "runtime").

    ``metric_class`` may also be an import path ``"package.module:ClassName"``,
    imported and checked on the metric's first use. A taken name raises
    RegistrationError naming both providers, unless ``replace=True``.
    ``description`` defaults to the class docstring's first line.
    """
    if description is None:
        given: object = metric_class
        doc = "" if isinstance(given, str) else (getattr(given, "__doc__", None) or "").strip()
        description = doc.splitlines()[0] if doc else "registered at run time"
    get_host().metrics.add(
        name,
        metric_class,
        description=description,
        provider=RUNTIME_PROVIDER,
        aliases=aliases,
        replace=replace,
    )


def register_metric_from_existing(existing: str, new_name: str, **init_kwargs: Any) -> None:
    """Register ``new_name``: metric ``existing`` constructed with ``init_kwargs``.

    ``npf.register_metric_from_existing("topk", "topk_3", k=3)``. The keyword
    arguments are checked now by constructing the metric once.
    """
    metrics = get_host().metrics
    base = metrics.get(existing)
    options = {**base.options, **init_kwargs}
    try:
        base.value(**options)
    except (TypeError, ValueError) as exc:
        raise RegistrationError(
            f"metric {base.name!r} cannot be constructed with {init_kwargs!r}: {exc}. "
            f"Pass only keyword arguments that {base.value.__qualname__}() accepts."
        ) from exc
    settings = ", ".join(f"{k}={v!r}" for k, v in init_kwargs.items())
    metrics.add(
        new_name,
        base.value,
        description=f"{base.name} with {settings}" if settings else f"Alias for {base.name}",
        provider=RUNTIME_PROVIDER,
        options=options,
    )


def get_metric(name: str) -> Entry[type[BaseEvalMetric]]:
    """The registry entry of metric ``name`` (any accepted spelling or alias), its class
    imported now if it was registered by import path (PluginError if that fails)."""
    entry = get_host().metrics.get(name)
    entry.value  # noqa: B018  (imports and checks a lazily registered class)
    return entry


def create_metric(name: str) -> BaseEvalMetric:
    """A fresh instance of metric ``name``, with the options it was registered with."""
    entry = get_metric(name)
    return entry.value(**entry.options)


def metric_table() -> list[dict[str, str]]:
    """Every metric name with its description and provider, in registration order; imports
    no metric registered by import path."""
    return [
        {"name": e.name, "description": e.description, "provider": e.provider}
        for e in get_host().metrics
    ]


def list_metrics(file: TextIO | None = None) -> None:
    """Print the name and description of every available metric."""
    rows = metric_table()
    width = max([len("Name"), *(len(r["name"]) for r in rows)]) + 2
    out = file if file is not None else sys.stdout
    out.write(f"{'Name':<{width}}Description\n")
    for row in rows:
        out.write(f"{row['name']:<{width}}{row['description']}\n")
