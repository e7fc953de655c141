"""The exceptions neuronperf raises for problems a user can act on.

Every message says what was wrong, what was expected and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class NeuronPerfError(Exception):
    """Base class of every error neuronperf raises on purpose."""


class MetricError(NeuronPerfError, ValueError):
    """A metric was given input it cannot score (empty, NaN, wrong shape, not numeric).

    ``settings``: options of the metric's spec that would score this data
    (``{"average": "macro"}``), for whoever knows the spec to say it in full."""

    def __init__(self, message: str, *, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.settings = dict(settings or {})


class UnknownNameError(NeuronPerfError, KeyError):
    """A metric, framework or runner name that nothing registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RegistrationError(NeuronPerfError, ValueError):
    """Something could not be registered: a taken name or an invalid object."""


class PluginError(NeuronPerfError):
    """A plugin failed to load or to register (re-raised in strict mode)."""


class UndefinedMetricWarning(UserWarning):
    """A metric's value is undefined for the data (a denominator was 0): a policy value
    (``zero_division``) or NaN stands in for it."""
