"""Models the tests run on the cluster (sent to the actors by value, see conftest.py). A
model's name is the ``model_filename`` its load_fn gets: the tests pass a path there, which
some models touch once their timed window runs."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import neuronperf as npf
from neuronperf_core.options import WARMUP_INFERS


class Sleepy:
    """1 ms per inference, releasing the GIL; touches ``marker`` at its first timed call
    (after the warm-up) and, when ``kill`` is set, kills its own process a few calls later."""

    def __init__(self, marker: str | None = None, kill: bool = False) -> None:
        self.marker = marker
        self.kill = kill
        self.calls = 0

    def __call__(self, x: Any) -> Any:
        self.calls += 1
        if self.calls == WARMUP_INFERS + 1 and self.marker:
            Path(self.marker).touch()
        if self.kill and self.calls == WARMUP_INFERS + 20:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.001)
        return x


def load_sleepy(name: str, device_id: int = 0) -> Sleepy:
    return Sleepy()


def load_marking(name: str, device_id: int = 0) -> Sleepy:
    return Sleepy(marker=name)


def load_copy_1_dies(name: str, device_id: int = 0) -> Sleepy:
    return Sleepy(kill=device_id == 1)


def load_fails(name: str, device_id: int = 0) -> Sleepy:
    raise RuntimeError(f"no model here for copy {device_id}")


def classify(x: Any) -> int:
    """A deterministic classifier of one record: its feature sum, modulo 3."""
    return int(x.sum()) % 3


def load_classifier(name: str, device_id: int = 0) -> Any:
    return classify


class NodesSeen(npf.BaseEvalMetric):
    """The Ray nodes whose copies scored records: shows every node's shard was merged."""

    def __init__(self) -> None:
        self.nodes: set[str] = set()
        self.records = 0

    def process_record(self, output: Any, target: Any) -> None:
        import ray

        self.nodes.add(ray.get_runtime_context().get_node_id())
        self.records += 1

    @staticmethod
    def aggregate(metrics: Any) -> dict[str, Any]:
        metrics = list(metrics)
        return {
            "nodes": sorted(set().union(*(m.nodes for m in metrics))),
            "records": sum(m.records for m in metrics),
        }


def load_hangs(name: str, device_id: int = 0) -> Sleepy:
    time.sleep(600)  # a model that never finishes loading
    return Sleepy()
