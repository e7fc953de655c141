"""One benchmark configuration: which model artifact, how many copies and workers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from neuronperf_core.options import ARRIVAL_PROCESSES, WARMUP_INFERS


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything a runner needs to know about one point of the sweep."""

    model_name: str
    model_filename: str
    input_idx: int
    batch_size: int
    pipeline_size: int
    cast_mode: str | None
    n_models: int
    workers_per_model: int
    device_type: str
    runner: str  # a registered runner: "threads", "processes", "interpreters", ...
    duration: float  # seconds of timed inference; 0 means one pass over the inputs
    max_infers: int | None  # stop after this many inferences (all workers together)
    instance_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # other model-index keys of the config
    # how the timed window is judged and prepared (neuronperf_core.uncertainty)
    until_stable: bool = False  # stop once the last windows agree; duration is the maximum
    window_s: float | None = None  # seconds per stability window (None: from the run)
    stability_pct: float = 10.0  # how far apart the last windows may be, in percent
    warmup_infers: int = WARMUP_INFERS  # each copy warms up for at least this many calls ...
    warmup_seconds: float = 0.0  # ... and at least this long
    intra_op_threads: int | None = None  # per worker; None: the backend's default
    # open loop (benchmarking.arrivals): requests per second offered to all copies together
    # (None: a closed loop, or a replay at its own rate), and how they arrive
    arrival_rate: float | None = None
    arrivals: str = "poisson"  # "poisson", "constant" or a file of arrival times
    arrival_seed: int = 0

    @property
    def multiprocess(self) -> bool:
        return self.runner != "threads"

    @property
    def multiinterpreter(self) -> bool:
        return self.runner == "interpreters"

    @property
    def open_loop(self) -> bool:
        """Requests sent on a schedule (a rate, or a replayed file), not as the last returns."""
        return self.arrival_rate is not None or self.arrivals not in ARRIVAL_PROCESSES

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "multiprocess": self.multiprocess,
            "multiinterpreter": self.multiinterpreter,
            "open_loop": self.open_loop,
        }
