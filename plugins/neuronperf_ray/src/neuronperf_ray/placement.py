"""What each copy asks Ray for, and whether a cluster can hold a config's copies (no ray
import: checked from ``ray.nodes()``'s resource totals before anything is placed)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from neuronperf_core.benchmarking.config import BenchmarkConfig

# ray_placement -> the placement group strategy; None: no placement group, Ray's default
# scheduling of each actor
STRATEGIES = {"spread": "STRICT_SPREAD", "pack": "PACK"}
CPU, GPU, NEURON_CORES = "CPU", "GPU", "neuron_cores"  # Ray's resource names
SHOWN_NODES = 8  # nodes an error lists


def copy_bundle(config: BenchmarkConfig) -> dict[str, float]:
    """One copy's resources, as a placement-group bundle: a CPU per worker thread (times its
    intra-op threads, when set), and its device: ``pipeline_size`` NeuronCores (Ray then sets
    NEURON_RT_VISIBLE_CORES for the actor) or one GPU (CUDA_VISIBLE_DEVICES)."""
    bundle = {CPU: float(config.workers_per_model * (config.intra_op_threads or 1))}
    if config.device_type == "neuron":
        bundle[NEURON_CORES] = float(config.pipeline_size)
    elif config.device_type == "cuda":
        bundle[GPU] = 1.0
    return bundle


def actor_options(bundle: Mapping[str, float]) -> dict[str, Any]:
    """``ActorClass.options(...)`` keywords asking for ``bundle``."""
    return {
        "num_cpus": bundle[CPU],
        "num_gpus": bundle.get(GPU, 0),
        "resources": {k: v for k, v in bundle.items() if k not in (CPU, GPU)},
    }


def copies_per_node(bundle: Mapping[str, float], resources: Mapping[str, float]) -> int:
    """How many copies of ``bundle`` one node's resource totals hold."""
    return min(math.floor(resources.get(k, 0.0) / v + 1e-9) for k, v in bundle.items() if v > 0)


Node = tuple[str, Mapping[str, float]]  # (how to name it, its resource totals)


def capacity_problem(
    bundle: Mapping[str, float], n_models: int, placement: str | None, nodes: Sequence[Node]
) -> str | None:
    """Why ``nodes`` cannot hold ``n_models`` copies placed as ``placement`` asks, with what
    to do; None when they can. Totals, not what is free now: a cluster busy with other work
    makes the placement wait (``runner.SCHEDULE_TIMEOUT_S``) rather than fail here."""
    holds = [copies_per_node(bundle, resources) for _, resources in nodes]
    if placement == "spread":
        fit = sum(1 for h in holds if h >= 1)
        if fit >= n_models:
            return None
        problem = (
            f"n_models={n_models} with ray_placement='spread' needs {n_models} nodes that each "
            f"hold a copy ({_text(bundle)}); {fit} of the cluster's {len(nodes)} nodes do"
        )
        most, other = fit, " or ray_placement='pack'"
    else:
        if sum(holds) >= n_models:
            return None
        problem = (
            f"n_models={n_models} needs {n_models} x ({_text(bundle)}); the cluster's "
            f"{len(nodes)} nodes hold {sum(holds)} such copies"
        )
        most, other = sum(holds), ""
    shown = ", ".join(f"{name} ({_text(res, bundle)})" for name, res in nodes[:SHOWN_NODES])
    more = f", and {len(nodes) - SHOWN_NODES} more" if len(nodes) > SHOWN_NODES else ""
    hint = ""
    if NEURON_CORES in bundle and not any(res.get(NEURON_CORES) for _, res in nodes):
        hint = (
            " No node declares neuron_cores: Ray finds them on Neuron instances with "
            "neuron-ls; start a node with --resources='{\"neuron_cores\": N}' where it did "
            "not."
        )
    if GPU in bundle and not any(res.get(GPU) for _, res in nodes):
        hint = " No node declares a GPU: start Ray on the GPU machines (ray start --num-gpus N)."
    fewer = f"pass n_models={most} or fewer, " if most else ""
    return f"{problem}. Nodes: {shown}{more}.{hint} To run it, {fewer}add nodes{other}."


def _text(resources: Mapping[str, float], only: Mapping[str, float] | None = None) -> str:
    keys = list(only or resources)
    return ", ".join(f"{resources.get(k, 0):g} {k}" for k in keys)
