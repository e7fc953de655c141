"""One model copy as a Ray actor: one process per copy, its worker threads inside.

The runner makes this class an actor with ``ray.remote(CopyActor)`` and calls, in order:
``where`` (the node Ray placed it on), ``load`` (the core's ``load_copy``: placement,
env_setup_fn, load_fn, setup_fn, warm-up), ``clock`` a few times (the driver estimates the
offset of this node's clock), then ``run`` with the start on this actor's own clock. The
actor runs two methods at once (``max_concurrency=2``), so ``stop_now`` reaches a copy in
the middle of ``run`` (Ctrl-C on the driver).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from neuronperf_core.benchmarking.runners import run_workers
from neuronperf_core.benchmarking.worker import (
    NEVER,
    Job,
    ModelCopy,
    Stop,
    calibrate_overhead_ns,
    copy_rows,
    load_copy,
)
from neuronperf_ray.timing import CopyRun, since


class CopyActor:
    def __init__(self, job: Job, copy_id: int) -> None:
        self.job = job
        self.copy_id = copy_id
        self.stop = Stop(NEVER)  # a stop_now that comes before run still stops it
        self.copy: ModelCopy | None = None

    def where(self) -> dict[str, Any]:
        """The node this copy runs on, and the devices Ray gave it."""
        import ray

        context = ray.get_runtime_context()
        return {
            "node_id": context.get_node_id(),
            "node_ip": ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "accelerators": {k: v for k, v in context.get_accelerator_ids().items() if v},
        }

    def load(self) -> float:
        """Load and warm up the copy; returns the harness's own cost per inference here."""
        self.copy = load_copy(self.job, self.copy_id)
        return calibrate_overhead_ns()

    def clock(self) -> int:
        return time.perf_counter_ns()

    def run(self, start_ns: int) -> CopyRun:
        """Run the copy's workers from ``start_ns`` (this actor's clock) until the duration,
        max_infers, the copy's rows or ``stop_now``; durations since ``start_ns`` come back."""
        if self.copy is None:
            raise RuntimeError("run before load")
        if self.job.config.duration:
            deadline = start_ns + int(self.job.config.duration * 1e9)
            self.stop.at[0] = min(self.stop.at[0], deadline)
        rows = copy_rows(self.job, self.copy_id)
        workers = run_workers(self.job, self.copy, rows, self.stop, start_ns)
        return CopyRun(self.copy.info(), [since(w, start_ns) for w in workers])

    def stop_now(self) -> None:
        self.stop.now()
