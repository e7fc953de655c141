"""The metric interface of the evaluation guide, plus an optional vectorised path."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from neuronperf_core.errors import MetricError, RegistrationError


class BaseEvalMetric(ABC):
    """Abstract base class BaseEvalMetric from which other metrics inherit.

    A metric instance accumulates state from the records one worker sees;
    ``aggregate`` merges the instances of all workers into the final value.
    """

    def __init__(self) -> None:  # noqa: B027  (the guide's subclasses call super().__init__())
        pass

    @abstractmethod
    def process_record(self, output: Any = None, target: Any = None) -> None:
        """Process an individual record and return the result."""

    def process_batch(self, outputs: Any, targets: Any) -> None:
        """Process a batch: ``outputs[i]`` is scored against ``targets[i]``.

        The default calls ``process_record`` once per record, so every metric
        written for the guide works unchanged; built-ins override it with a
        vectorised version.
        """
        if not (hasattr(outputs, "__len__") and hasattr(targets, "__len__")):
            raise MetricError(
                f"process_batch needs sized batches (lists, arrays, tensors), got "
                f"{type(outputs).__name__} and {type(targets).__name__}; wrap iterators in list()."
            )
        n_outputs, n_targets = len(outputs), len(targets)
        if n_outputs != n_targets:
            raise MetricError(
                f"process_batch got {n_outputs} outputs but {n_targets} targets: "
                "pass one target per output (the batch dimension must match)."
            )
        for output, target in zip(outputs, targets, strict=True):
            self.process_record(output, target)

    @staticmethod
    def aggregate(metrics: Iterable[BaseEvalMetric]) -> Any:
        """Combine a sequence of metrics into a single result."""
        raise NotImplementedError


def validate_metric_class(name: str, metric_class: Any) -> None:
    """Raise RegistrationError unless ``metric_class`` can be registered as metric ``name``."""
    if not (isinstance(metric_class, type) and issubclass(metric_class, BaseEvalMetric)):
        raise RegistrationError(
            f"metric {name!r}: expected a subclass of neuronperf.BaseEvalMetric, got "
            f"{metric_class!r}. Define a class extending npf.BaseEvalMetric with "
            "process_record() and a static aggregate(), then register the class itself."
        )
    if inspect.isabstract(metric_class):
        missing = ", ".join(sorted(metric_class.__abstractmethods__))
        raise RegistrationError(
            f"metric {name!r}: {metric_class.__qualname__} does not implement {missing}; "
            "implement it before registering the class."
        )
    if metric_class.aggregate is BaseEvalMetric.aggregate:
        raise RegistrationError(
            f"metric {name!r}: {metric_class.__qualname__} does not define the static method "
            "aggregate(metrics), which merges the workers' instances into one result."
        )
    if not isinstance(
        inspect.getattr_static(metric_class, "aggregate"), (staticmethod, classmethod)
    ):
        raise RegistrationError(
            f"metric {name!r}: {metric_class.__qualname__}.aggregate must be a @staticmethod "
            "(it receives every worker's instance, not one): add @staticmethod above it."
        )
    required = [
        p.name
        for p in inspect.signature(metric_class).parameters.values()
        if p.default is p.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if required:
        raise RegistrationError(
            f"metric {name!r}: {metric_class.__qualname__}() needs {', '.join(required)}, but "
            "each worker constructs its metrics without arguments. Give them defaults; "
            "register_metric_from_existing() then registers variants with other values."
        )
