"""The keywords of compile, benchmark and evaluate: declared once, with NeuronPerf 1.x's
defaults, checked once.

Every keyword is a field of ``BenchmarkOptions`` or ``CompileOptions``, with its default,
one line of help, and either its command-line flag or the reason it has none. The Python
API (``npf.benchmark``, ``npf.<backend>.benchmark``, ...), the engine and the command line
all read these declarations; ``from_kwargs`` is the one place a value is checked, before
any model compiles or loads.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from neuronperf_core.errors import NeuronPerfError

WARMUP_INFERS = 8  # the default warm-up: the Neuron tutorials warm each copy up with 8 calls


class OptionError(NeuronPerfError, ValueError):
    """A keyword of compile, benchmark or evaluate has a value that cannot be used."""


class UnknownOptionError(OptionError, TypeError):
    """A keyword that compile, benchmark or evaluate does not take."""


# -- what a value may be ----------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple, range)) else [value]


def _ints(name: str, value: Any) -> list[int] | None:
    if value is None:
        return None
    values = _as_list(value)
    if not values:
        raise OptionError(f"{name}=[] selects nothing: pass at least one value, e.g. {name}=[1].")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise OptionError(
                f"{name} must be whole numbers of at least 1, got {v!r}; e.g. {name}=[1, 2]."
            )
    return values


def _names(name: str, value: Any) -> list[Any] | None:
    if value is None:
        return None
    values = _as_list(value)
    if not values:
        raise OptionError(f"{name}=[] selects nothing: pass at least one value, or None.")
    return values


def _seconds(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise OptionError(f"{name} must be a finite number of seconds >= 0, got {value!r}.")
    return float(value)


def _optional_number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise OptionError(f"{name} must be a finite number >= 0 (or None), got {value!r}.")
    return float(value)


def _count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f"{name} must be a whole number of at least 1 (or None), got {value!r}.")
    return value


def _int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(f"{name} must be a whole number, got {value!r}.")
    return value


END_TO_END, DEVICE_ONLY = "end_to_end", "device"
TRANSFERS = (END_TO_END, DEVICE_ONLY)


def _transfer(name: str, value: Any) -> str:
    if value not in TRANSFERS:
        raise OptionError(
            f"{name}={value!r}: use 'end_to_end' (latency includes copying inputs to the device "
            "and outputs back, the default) or 'device' (inputs kept on the device, outputs "
            "left there)."
        )
    return str(value)


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OptionError(f"{name} must be a whole number >= 0, got {value!r}.")
    return value


def _positive(value: Any) -> bool:
    """A finite number above 0 (not a bool)."""
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and value > 0
    )


def _window(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if not _positive(value):
        raise OptionError(f"{name} must be a number of seconds > 0 (or None), got {value!r}.")
    return float(value)


def _percent(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 < value < 100
    ):
        raise OptionError(f"{name} must be a percentage above 0 and below 100, got {value!r}.")
    return float(value)


def _rates(name: str, value: Any) -> list[float] | None:
    if value is None:
        return None
    values = _as_list(value)
    if not values:
        raise OptionError(f"{name}=[] selects nothing: pass at least one rate, e.g. {name}=[100].")
    for v in values:
        if not _positive(v):
            raise OptionError(
                f"{name} must be requests per second above 0, got {v!r}; e.g. {name}=[50, 100]."
            )
    return [float(v) for v in values]


def _arrivals(name: str, value: Any) -> str:
    import os

    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise OptionError(
            f"{name} must be 'poisson', 'constant' or the path of a file of arrival times, "
            f"got {value!r}."
        )
    return value  # a file is read (and checked) when the run is planned


SLO_PERCENTILES = (50, 90, 95, 99)  # the reports' latency_ms_p{p} a bound may hold


def _bound(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if not _positive(value):
        raise OptionError(
            f"{name} must be milliseconds above 0 (or None), got {value!r}; e.g. {name}=20."
        )
    return float(value)


def _slo_percentile(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value not in SLO_PERCENTILES
    ):
        raise OptionError(
            f"{name} must be one of {', '.join(map(str, SLO_PERCENTILES))} (the latency "
            f"percentiles every report holds), got {value!r}."
        )
    return float(value)


def _optional_bool(name: str, value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise OptionError(f"{name} must be True, False or None, got {value!r}.")
    return value


def _verbosity(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 1, 2):
        raise OptionError(
            f"{name} must be 0 (errors only), 1 (warnings and progress) or 2 (debug), "
            f"got {value!r}."
        )
    return value


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise OptionError(f"{name} must be True or False, got {value!r}.")
    return value


def _callable(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise OptionError(
            f"{name} must be a function (or None), got {type(value).__name__} {value!r}."
        )
    return value


def _text(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise OptionError(f"{name} must be a string (or None), got {value!r}.")
    return value


# open loop: the arrival processes by name (anything else given as arrivals is a file)
ARRIVAL_PROCESSES = ("poisson", "constant")

RAY_PLACEMENTS = ("spread", "pack")  # the neuronperf-ray plugin's placement groups


def _ray_placement(name: str, value: Any) -> str | None:
    if value is not None and value not in RAY_PLACEMENTS:
        raise OptionError(
            f"{name}={value!r}: use 'spread' (one copy per node), 'pack' (copies on as few "
            "nodes as possible) or None (Ray's default scheduling)."
        )
    return None if value is None else str(value)


def _path(name: str, value: Any) -> Any:
    import os

    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise OptionError(f"{name} must be a path (or None), got {type(value).__name__}.")
    return value


def _mapping(name: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise OptionError(f"{name} must be a dict of keyword arguments, got {value!r}.")
    return dict(value)


def _metric_specs(name: str, value: Any) -> list[Any] | None:
    if value is None:
        return None
    values = _as_list(value)
    if not values:  # not None: a benchmark that meant to evaluate would time, not score
        raise OptionError(
            f"{name}=[] names no metric: pass at least one, e.g. {name}=['accuracy'] "
            "(npf.list_metrics() lists them), or leave it out to benchmark without scoring."
        )
    return values  # checked against the registry by the metric spec parser


def _device(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise OptionError(
            f"{name} must be a device name such as 'neuron', 'cpu' or 'cuda', got {value!r}."
        )
    lowered = value.lower()
    return "cuda" if lowered == "gpu" else lowered  # 1.x accepted "gpu" for CUDA


def option(
    default: Any,
    help: str,
    check: Callable[[str, Any], Any],
    *,
    flag: str | None = None,
    python_only: str | None = None,
    commands: tuple[str, ...] | None = None,
) -> Any:
    """A keyword's declaration: default, one line of help, its check, and its command-line
    flag or why it has none. ``commands``: the commands whose flag it is, when not every
    command of its class (benchmark and evaluate for ``BenchmarkOptions``) takes it."""
    if (flag is None) == (python_only is None):
        raise ValueError("an option has a command-line flag or a reason for having none")
    return field(
        default=default,
        metadata={
            "help": help,
            "check": check,
            "flag": flag,
            "python_only": python_only,
            "commands": commands,
        },
    )


# The command line's evaluate scores every record once with one copy (api.EVALUATE_DEFAULTS):
# the sweep's flags are benchmark's, the metrics' are evaluate's.
BENCHMARK = ("benchmark",)
EVALUATE = ("evaluate",)
FUNCTION = "a Python function: there is no way to pass one on a command line"
RUNNER_1X = "NeuronPerf 1.x's spelling of the runner; the command line has --runner"


@dataclass(frozen=True)
class BenchmarkOptions:
    """The keywords of benchmark and evaluate (NeuronPerf 1.x's, then the newer ones)."""

    batch_sizes: list[int] | None = option(
        None, "only the configs of these batch sizes", _ints, flag="--batch-sizes"
    )
    duration: float = option(
        120.0, "seconds of timed inference per config (0: one pass)", _seconds,
        flag="--duration", commands=BENCHMARK,
    )  # fmt: skip
    n_models: list[int] | None = option(
        None,
        "model copies to sweep (default: 1 and as many as the device holds)",
        _ints,
        flag="--n-models",
        commands=BENCHMARK,
    )
    pipeline_sizes: list[int] | None = option(
        None, "only the configs of these pipeline sizes (Neuron)", _ints, flag="--pipeline-sizes"
    )
    cast_modes: list[Any] | None = option(
        None, "only the configs of these cast modes", _names, flag="--cast-modes"
    )
    workers_per_model: list[int] | None = option(
        None, "worker threads per copy to sweep (default: 1,2)", _ints,
        flag="--workers-per-model", commands=BENCHMARK,
    )  # fmt: skip
    env_setup_fn: Callable[[int, dict[str, Any]], Any] | None = option(
        None, "env_setup_fn(copy_id, config), before a copy loads", _callable, python_only=FUNCTION
    )
    setup_fn: Callable[[int, dict[str, Any], Any], Any] | None = option(
        None,
        "setup_fn(copy_id, config, model), after a copy loads",
        _callable,
        python_only=FUNCTION,
    )
    preprocess_fn: Callable[..., Any] | None = option(
        None, "preprocess_fn(*input) before each inference (timed)", _callable, python_only=FUNCTION
    )
    postprocess_fn: Callable[..., Any] | None = option(
        None, "postprocess_fn(output) after each inference (timed)", _callable, python_only=FUNCTION
    )
    dataset_loader_fn: Callable[[Any, int, int], Any] | None = option(
        None,
        "dataset_loader_fn(dataset, worker, n_workers): a worker's own rows",
        _callable,
        python_only=FUNCTION,
    )
    multiprocess: bool = option(
        True, "one process per model copy (False: threads)", _bool, python_only=RUNNER_1X
    )
    multiinterpreter: bool = option(
        False, "one fresh interpreter per model copy", _bool, python_only=RUNNER_1X
    )
    return_timers: bool = option(
        False,
        "return 1.x's (config, results) pairs with timers instead of reports",
        _bool,
        python_only="a Python return value; the command line writes reports to files",
    )
    stats_interval: float = option(
        0.5, "seconds between CPU and memory samples", _seconds, flag="--stats-interval"
    )
    device_type: str | None = option(
        None, "the device (default: the one the model was compiled for)", _device, flag="--device"
    )
    cost_per_hour: float | None = option(
        None, "instance price in USD, for cost_per_1m_inf", _optional_number,
        flag="--cost-per-hour", commands=BENCHMARK,
    )  # fmt: skip
    model_name: str | None = option(
        None, "the name in reports and results files (default: the model's)", _text, flag="--name"
    )
    verbosity: int = option(
        1, "0 errors only, 1 warnings and progress, 2 debug", _verbosity, flag="--verbose/--quiet"
    )
    max_infers: int | None = option(
        None, "stop each config after this many inferences", _count, flag="--max-infers"
    )
    eval_metrics: list[Any] | None = option(
        None,
        "metrics to score (NAME or NAME:KEY=VALUE, e.g. precision:average=macro)",
        _metric_specs,
        flag="--metrics",
        commands=EVALUATE,
    )
    eval_target_col: int | None = option(
        None, "which column of a dataset row is the target (default: the last)", _int,
        flag="--target-col", commands=EVALUATE,
    )  # fmt: skip
    runner: str | None = option(
        None, "threads, interpreters, processes or a plugin's runner", _text, flag="--runner"
    )
    ray_address: str | None = option(
        None, "runner ray: the Ray cluster to run copies on (default: a local Ray for the run)",
        _text, flag="--ray-address",
    )  # fmt: skip
    ray_placement: str | None = option(
        None, "runner ray: spread (one copy per node), pack, or Ray's default (None)",
        _ray_placement, flag="--ray-placement",
    )  # fmt: skip
    results_dir: Any = option(
        ".",
        "folder of the results files, under a new name each run",
        _path,
        flag="--output-dir",
    )
    results_file: Any = option(
        None, "the results file to write (it must not exist yet), instead of a new name in "
        "the output folder", _path,
        flag="--results-file",
    )  # fmt: skip
    until_stable: bool = option(
        False,
        "measure until the last 3 windows agree (duration is then the maximum)",
        _bool,
        flag="--until-stable",
        commands=BENCHMARK,
    )
    window_s: float | None = option(
        None, "seconds per stability window (default: a tenth of the run, at most 5)",
        _window, flag="--window", commands=BENCHMARK,
    )  # fmt: skip
    stability_pct: float = option(
        10.0, "how far apart (in %) the last 3 windows may be and be stable", _percent,
        flag="--stability-pct", commands=BENCHMARK,
    )  # fmt: skip
    warmup_infers: int = option(
        WARMUP_INFERS, "warm-up calls per copy before timing, at least", _whole,
        flag="--warmup-infers", commands=BENCHMARK,
    )  # fmt: skip
    warmup_seconds: float = option(
        0.0, "seconds of warm-up per copy before timing, at least", _seconds,
        flag="--warmup-seconds", commands=BENCHMARK,
    )  # fmt: skip
    intra_op_threads: int | None = option(
        None, "intra-op threads of each worker (default: the cores split across them)",
        _count, flag="--threads-per-copy",
    )  # fmt: skip
    dataloader_kwargs: dict[str, Any] | None = option(
        None,
        "keyword arguments for the framework's data loader (torch DataLoader)",
        _mapping,
        python_only="a dict of Python objects (collate_fn, ...)",
    )
    transfer: str = option(
        END_TO_END,
        "what latency includes: end_to_end (inputs to the device, outputs back, as a server "
        "sees it) or device (inputs kept on the device, outputs left there)",
        _transfer,
        flag="--transfer",
        commands=BENCHMARK,
    )
    arrival_rate: list[float] | None = option(
        None, "open loop: requests per second sent to the copies together, whatever the model "
        "does; latency counts from each request's arrival (a list sweeps rates)",
        _rates, flag="--arrival-rate", commands=BENCHMARK,
    )  # fmt: skip
    arrivals: str = option(
        "poisson", "open loop: poisson, constant, or a file of arrival times in seconds (one "
        "per line, replayed; arrival_rate then rescales it)",
        _arrivals, flag="--arrivals", commands=BENCHMARK,
    )  # fmt: skip
    arrival_seed: int = option(
        0, "open loop: the seed of the Poisson arrivals (the same seed, the same arrivals)",
        _whole, flag="--arrival-seed", commands=BENCHMARK,
    )  # fmt: skip
    config_timeout: float | None = option(
        3600.0,
        "seconds a config may take beyond its duration (loading, warm-up, a call that never "
        "returns) before it ends with status timeout; 0 or None: no limit",
        _optional_number,
        flag="--config-timeout",
    )
    latency_bound_ms: float | None = option(
        None, "a latency bound in ms (an SLO) for latency_percentile: the bound of the peak "
        "search (find_peak); without a search, each report says whether it kept within it "
        "(within_bound)",
        _bound, flag="--slo-ms", commands=BENCHMARK,
    )  # fmt: skip
    latency_percentile: float = option(
        99.0, "the latency percentile held to latency_bound_ms: 50, 90, 95 or 99",
        _slo_percentile, flag="--slo-percentile", commands=BENCHMARK,
    )  # fmt: skip
    find_peak: bool | None = option(
        None, "search for the largest arrival rate within latency_bound_ms (bracket, then "
        "bisect; each step an open loop of duration seconds). In Python the search runs "
        "whenever latency_bound_ms is given, unless find_peak is False; on the command line "
        "only with --find-peak",
        _optional_bool, flag="--find-peak", commands=BENCHMARK,
    )  # fmt: skip

    @classmethod
    def from_kwargs(
        cls, kwargs: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
    ) -> BenchmarkOptions:
        return _from_kwargs(cls, kwargs, defaults)

    def replace(self, **changes: Any) -> BenchmarkOptions:
        """A copy with ``changes``, checked."""
        return _from_kwargs(type(self), {**self.as_dict(), **changes}, None)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class CompileOptions:
    """The keywords of compile; what the backend's compiler takes goes in ``compiler_kwargs``."""

    batch_sizes: list[int] | None = option(
        None, "batch sizes, one per example input (default: each input's first dimension)",
        _ints, flag="--batch-sizes",
    )  # fmt: skip
    pipeline_sizes: list[int] | None = option(
        None, "pipeline sizes, NeuronCores per model (Neuron)", _ints, flag="--pipeline-sizes"
    )
    cast_modes: list[Any] | None = option(
        None, "cast modes to compile (fp32,bf16,fp16; Neuron: auto-cast modes)", _names,
        flag="--cast-modes",
    )  # fmt: skip
    models_dir: Any = option("models", "folder of the compiled model files", _path, flag="--out")
    model_name: str | None = option(
        None, "the model's name (default: its class or file name)", _text, flag="--name"
    )
    filename: Any = option(
        None,
        "the model index file (default: {model_name}_{8 chars}.json)",
        _path,
        python_only="the command line writes {--out}/{--name}.json",
    )
    compiler_args: Any = option(
        None, "extra compiler flags (Neuron)", lambda n, v: v, flag="--compiler-args"
    )
    compiler_target: str | None = option(
        None, "inf2, trn1, trn2, ... (Neuron)", _text, flag="--compiler-target"
    )
    device_type: str | None = option(
        None, "the device to compile for (default: the backend's first)", _device, flag="--device"
    )
    verbosity: int = option(
        1, "0 errors only, 1 warnings and progress, 2 debug", _verbosity, flag="--verbose/--quiet"
    )
    compiler_kwargs: dict[str, Any] = option(
        None,
        "other keywords, passed to the backend's compiler (torch.export.export, ...)",
        lambda n, v: dict(v or {}),
        python_only="compiler keywords are Python values",
    )

    @classmethod
    def from_kwargs(
        cls, kwargs: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
    ) -> CompileOptions:
        known = {f.name for f in fields(cls)}
        extra = {k: v for k, v in kwargs.items() if k not in known}
        given = {k: v for k, v in kwargs.items() if k in known}
        given["compiler_kwargs"] = {**(given.get("compiler_kwargs") or {}), **extra}
        return _from_kwargs(cls, given, defaults)


OptionsT = TypeVar("OptionsT", BenchmarkOptions, CompileOptions)


def _from_kwargs(
    cls: type[OptionsT], kwargs: Mapping[str, Any], defaults: Mapping[str, Any] | None
) -> OptionsT:
    known = {f.name: f for f in fields(cls)}
    unknown = [k for k in kwargs if k not in known]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, list(known), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise UnknownOptionError(
            f"unknown keyword {', '.join(hints)}; the keywords are {', '.join(known)}."
        )
    values = {**(defaults or {}), **kwargs}
    checked = {}
    for name, value in values.items():
        check = known[name].metadata["check"]
        checked[name] = check(name, value)
    return cls(**checked)


def declared(cls: type[Any]) -> list[tuple[str, Any, str, str | None, str | None]]:
    """(name, default, help, flag, python_only reason) of every keyword of ``cls``."""
    return [
        (f.name, f.default, f.metadata["help"], f.metadata["flag"], f.metadata["python_only"])
        for f in fields(cls)
    ]
