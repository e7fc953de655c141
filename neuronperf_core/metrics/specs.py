"""Metric specs: one grammar for ``metrics=[...]`` in Python and ``--metrics`` on the
command line, with options and without registering a global name.

- ``"accuracy"``: a registered metric (any spelling or alias);
- ``"precision:average=macro"``, ``"topk:k=5:normalize=true"``: that metric built with
  those keyword arguments (values read as int, float, true/false/none, else text);
- ``"topk_5"``: metric ``topk`` with ``k=5`` when it takes ``k`` (the evaluation guide's
  ``topk_3``), unless ``topk_5`` is itself registered;
- a ``BaseEvalMetric`` subclass: used as it is, named after the class.

Each spec names its value in the reports: the spec as written (``"topk_5"``).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from neuronperf_core.errors import MetricError, RegistrationError
from neuronperf_core.metrics.base import BaseEvalMetric, validate_metric_class

ResolvedMetric = tuple[str, type[BaseEvalMetric], dict[str, Any]]


class MetricSpecError(MetricError):
    """A metric spec that cannot be read or built."""


def resolve_metrics(specs: Sequence[Any]) -> list[ResolvedMetric]:
    """(report name, metric class, keyword arguments) for each spec, each checked by
    building the metric once; repeated names are refused."""
    resolved = [resolve_metric(spec) for spec in specs]
    names = [name for name, _, _ in resolved]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise MetricSpecError(f"metric {', '.join(map(repr, repeated))} is asked for twice.")
    return resolved


def resolve_metric(spec: Any) -> ResolvedMetric:
    from neuronperf_core.metrics.registry import get_metric

    if isinstance(spec, type):
        try:
            validate_metric_class(spec.__name__, spec)
        except RegistrationError as exc:
            raise MetricSpecError(str(exc)) from None
        return spec.__name__, spec, {}
    if not isinstance(spec, str):
        raise MetricSpecError(
            f"a metric is a name such as 'accuracy', a spec such as 'precision:average=macro', "
            f"or a BaseEvalMetric subclass; got {type(spec).__name__} {spec!r}."
        )
    base, *settings = spec.split(":")
    options = dict(_setting(spec, s) for s in settings)
    if not options:
        base, options = _k_shorthand(spec)
    entry = get_metric(base)  # unknown names fail here, with the closest known names
    kwargs = {**entry.options, **options}
    try:
        entry.value(**kwargs)
    except (TypeError, ValueError) as exc:
        raise MetricSpecError(
            f"metric {spec!r}: {entry.name} cannot be built with {options}: "
            f"{str(exc).rstrip('.')}. Its "
            f"options are those of {entry.value.__qualname__}"
            f"{inspect.signature(entry.value)}."
        ) from None
    return spec, entry.value, kwargs


def _k_shorthand(spec: str) -> tuple[str, dict[str, Any]]:
    from neuronperf_core.plugins import get_host

    metrics = get_host().metrics
    base, sep, number = spec.rpartition("_")
    if not sep or not number.isdigit() or spec in metrics or base not in metrics:
        return spec, {}
    if "k" not in inspect.signature(metrics.get(base).value).parameters:
        return spec, {}
    return base, {"k": int(number)}


def _setting(spec: str, setting: str) -> tuple[str, Any]:
    key, sep, text = setting.partition("=")
    if not sep or not key.isidentifier():
        raise MetricSpecError(
            f"metric {spec!r}: expected NAME:KEY=VALUE settings, like 'precision:average=macro'."
        )
    for convert in (int, float):
        try:
            return key, convert(text)
        except ValueError:
            continue
    return key, {"true": True, "false": False, "none": None}.get(text.lower(), text)
