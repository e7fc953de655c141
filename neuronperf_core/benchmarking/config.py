"""One benchmark configuration: which model artifact, how many copies and workers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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

    @property
    def multiprocess(self) -> bool:
        return self.runner != "threads"

    @property
    def multiinterpreter(self) -> bool:
        return self.runner == "interpreters"

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "multiprocess": self.multiprocess,
            "multiinterpreter": self.multiinterpreter,
        }
