"""The neuronperf plugin of neuronperf-ray: it registers the runner "ray" and nothing else.

The runner is registered by import path, so listing plugins (``neuronperf plugins``,
``neuronperf --help``) imports neither ray nor the runner; ``neuronperf_ray.runner`` (and
ray) is imported when a run first uses ``runner="ray"``.
"""

from __future__ import annotations

from neuronperf_core import hookimpl
from neuronperf_core.hookspecs import RegisterRunner

__all__ = ["neuronperf_register_runners"]


@hookimpl
def neuronperf_register_runners(register: RegisterRunner) -> None:
    register(
        "ray",
        "neuronperf_ray.runner:RAY",
        description="each model copy a Ray actor, on a Ray cluster (ray_address) or a local Ray",
    )
