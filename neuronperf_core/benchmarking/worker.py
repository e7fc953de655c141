"""What runs inside a model copy: its lifecycle, and the timed worker loops.

Every runner (threads, processes, fresh interpreters) calls the same code:
``load_copy`` once per copy, then ``run_worker`` in each worker thread. The
hot loop reads the clock twice per inference and stores both readings in
preallocated numpy buffers: no hook call, dict, lock, log line or Python
object per inference. Memory stays bounded: once a worker's buffer is full it
keeps every other sample and from then on records every 2nd (4th, ...)
inference, so the samples stay spread evenly over the whole run.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuronperf_core.benchmarking import arrivals
from neuronperf_core.benchmarking.config import BenchmarkConfig
from neuronperf_core.benchmarking.results import PHASES
from neuronperf_core.benchmarking.stability import WindowBoard
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.options import WARMUP_INFERS as WARMUP_INFERS  # the default warm-up

CALIBRATION_INFERS = 2000  # null-model iterations that measure the harness's own cost
DEFAULT_MAX_SAMPLES = 1_000_000  # per worker: 16 MB of int64 start/end pairs
NEVER = 1 << 62  # a deadline no clock reaches
OPEN_LOOP_COLUMNS = 4  # an open loop keeps (due, picked, sent, end) per inference


@dataclass
class Job:
    """Everything a runner needs to run one config. The "interpreters" runner sends it to
    each copy with cloudpickle (what the user's script defines travels by value), so it must
    hold nothing cloudpickle refuses (a lock, a generator); "processes" forks, sending none."""

    config: BenchmarkConfig
    load_fn: Callable[..., Any]
    model_input: Any  # the config's input; a tuple is destructured: model(*input)
    copy_setup: Callable[[int, dict[str, Any]], Any] | None = None  # the backend's placement
    env_setup_fn: Callable[[int, dict[str, Any]], Any] | None = None
    setup_fn: Callable[[int, dict[str, Any], Any], Any] | None = None
    preprocess_fn: Callable[..., Any] | None = None
    postprocess_fn: Callable[..., Any] | None = None
    dataset: Iterable[Any] | None = None  # evaluation: rows of (*inputs, target)
    dataset_loader_fn: Callable[[Any, int, int], Iterable[Any]] | None = None
    eval_target_col: int = -1  # made non-negative by the planner once the row length is known
    # (name, metric class, init kwargs), resolved in the parent so that metrics
    # registered at run time reach spawned children too.
    metrics: list[tuple[str, type[BaseEvalMetric], dict[str, Any]]] = field(default_factory=list)
    max_samples: int = DEFAULT_MAX_SAMPLES
    death_hints: dict[str, str] = field(default_factory=dict)  # RunPlan.death_hints
    # seconds the config may take beyond its duration before it ends with status "timeout"
    # (None: no limit); the runner enforces it
    config_timeout: float | None = None
    # open loop replaying a file (config.arrivals): its arrival times, ns since the first
    trace_ns: np.ndarray | None = None

    @property
    def evaluating(self) -> bool:
        return self.dataset is not None


@dataclass
class ModelCopy:
    """One loaded model copy and what its lifecycle cost, in nanoseconds."""

    copy_id: int
    model: Any
    env_setup_ns: int = 0
    load_ns: int = 0
    setup_ns: int = 0
    warmup_ns: int = 0
    warmup_infers: int = 0

    def info(self) -> dict[str, int]:
        return {
            "copy_id": self.copy_id,
            "env_setup_ns": self.env_setup_ns,
            "load_ns": self.load_ns,
            "setup_ns": self.setup_ns,
            "warmup_ns": self.warmup_ns,
            "warmup_infers": self.warmup_infers,
        }


def _timed(fn: Callable[[], Any]) -> tuple[Any, int]:
    start = time.perf_counter_ns()
    value = fn()
    return value, time.perf_counter_ns() - start


def call_model(model: Any, model_input: Any) -> Any:
    """model(*input) for a tuple, model(input) otherwise (an array is never split)."""
    return model(*model_input) if isinstance(model_input, tuple) else model(model_input)


def load_copy(job: Job, copy_id: int) -> ModelCopy:
    """env_setup_fn -> load_fn -> setup_fn -> warm-up, each timed; in the copy's own process.

    Warm-up: at least ``warmup_infers`` calls (default ``WARMUP_INFERS``) and at least
    ``warmup_seconds``."""
    config = job.config.to_dict()
    start = time.perf_counter_ns()
    if job.copy_setup is not None:
        job.copy_setup(copy_id, config)  # the backend places the copy, before the user's setup
    if job.env_setup_fn is not None:
        job.env_setup_fn(copy_id, config)
    env_setup_ns = time.perf_counter_ns() - start
    model, load_ns = _timed(lambda: job.load_fn(job.config.model_filename, device_id=copy_id))
    copy = ModelCopy(copy_id, model, env_setup_ns=env_setup_ns, load_ns=load_ns)
    if job.setup_fn is not None:
        _, copy.setup_ns = _timed(lambda: job.setup_fn(copy_id, config, model))  # type: ignore[misc]
    if not job.evaluating:  # evaluation touches each record once; there is nothing to warm on
        start = time.perf_counter_ns()
        until = start + int(job.config.warmup_seconds * 1e9)
        calls = 0
        while calls < job.config.warmup_infers or time.perf_counter_ns() < until:
            _infer_once(job, model, job.model_input)
            calls += 1
        copy.warmup_ns = time.perf_counter_ns() - start
        copy.warmup_infers = calls
    return copy


def _as_args(model_input: Any) -> tuple[Any, ...]:
    return model_input if isinstance(model_input, tuple) else (model_input,)


def _infer_once(job: Job, model: Any, model_input: Any) -> Any:
    if job.preprocess_fn is not None:
        model_input = call_model(job.preprocess_fn, model_input)
    output = call_model(model, model_input)
    if job.postprocess_fn is not None:
        output = job.postprocess_fn(output)
    return output


_END = object()  # the end of a worker's rows


def _unbatch(output: Any) -> Any:
    """At batch size 1 a record is scored alone: drop an output's batch dimension of 1."""
    shape = getattr(output, "shape", None)
    return output[0] if shape is not None and len(shape) >= 1 and shape[0] == 1 else output


def _first(output: Any, n: int) -> Any:
    """The first ``n`` records of a batched output (a tensor or array, or a tuple of them)."""
    if isinstance(output, (tuple, list)):
        return type(output)(o[:n] for o in output)
    return output[:n]


class Stop:
    """The moment workers stop: a deadline any thread can pull in (Ctrl-C)."""

    def __init__(self, deadline_ns: int) -> None:
        self.at = [deadline_ns]  # a list, so the hot loop reads the live value cheaply
        # the windows (until_stable) that end when this does, by id: workers link and unlink
        # their own while another thread may call now()
        self.linked: dict[int, list[int]] = {}

    def now(self) -> None:
        self.at[0] = 0
        for at in list(self.linked.values()):
            at[0] = 0

    def window(self, end_ns: int) -> Stop:
        """A stop at ``end_ns`` or this one's moment, whichever comes first; ``unlink`` it
        when done."""
        window = Stop(min(self.at[0], end_ns))
        self.linked[id(window.at)] = window.at
        if self.at[0] == 0:  # stopped while linking
            window.at[0] = 0
        return window

    def unlink(self, window: Stop) -> None:
        self.linked.pop(id(window.at), None)


@dataclass
class WorkerResult:
    copy_id: int
    worker_id: int
    count: int
    last_end_ns: int
    stride: int  # each kept sample stands for `stride` inferences
    # perf_counter_ns readings per kept sample, shape (k, 2): start, end; (k, 5): the start
    # of each phase, end; open loop (k, 4): due, picked (taken off the queue), sent, end
    stamps: np.ndarray
    metrics: list[BaseEvalMetric]
    # open loop, on the copy's worker 0: the arrivals due in the copy's window that it never
    # started, and that window: the shared start to the deadline (or an earlier stop)
    late: int = 0
    open_window_ns: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        stamps = self.stamps
        phases: dict[str, np.ndarray] = {}
        extra: dict[str, Any] = {}
        if stamps.shape[1] == 2:
            phases["infer"] = stamps[:, 1] - stamps[:, 0]
        elif stamps.shape[1] == OPEN_LOOP_COLUMNS:
            phases["infer"] = stamps[:, 3] - stamps[:, 2]
            extra = {
                "picked_ns": np.ascontiguousarray(stamps[:, 1]),
                "sent_ns": np.ascontiguousarray(stamps[:, 2]),
                "late": self.late,
            }
        else:
            phases = {name: stamps[:, i + 1] - stamps[:, i] for i, name in enumerate(PHASES)}
        return {
            "copy_id": self.copy_id,
            "worker_id": self.worker_id,
            "count": self.count,
            "last_end_ns": self.last_end_ns,
            "stride": self.stride,
            "start_ns": np.ascontiguousarray(stamps[:, 0]),
            "end_ns": np.ascontiguousarray(stamps[:, -1]),
            "phases_ns": phases,
            **extra,
        }


class _Samples:
    """A fixed buffer of timestamp rows that thins itself out when full."""

    def __init__(self, capacity: int, width: int) -> None:
        self.columns = [np.empty(max(2, capacity), dtype=np.int64) for _ in range(width)]
        self.size = 0
        self.stride = 1
        self.next_kept = 0  # the next inference whose timestamps are kept

    def halve(self) -> None:
        """Keep every other sample (those at multiples of the doubled stride)."""
        half = len(self.columns[0]) // 2
        for column in self.columns:
            column[:half] = column[0 : 2 * half : 2]
        self.size = half
        self.stride *= 2

    def stamps(self) -> np.ndarray:
        return np.column_stack([c[: self.size] for c in self.columns])


def fast_loop(
    model: Any, model_input: Any, stop: Stop, limit: int, samples: _Samples, count: int = 0
) -> tuple[int, int]:
    """Call ``model`` on one fixed input until ``stop`` or ``limit``, counting on from
    ``count`` inferences already made (a window of until_stable goes on from the last).

    Returns the number of inferences and the end of the last one (0 when none ran).
    """
    clock = time.perf_counter_ns
    args = _as_args(model_input)
    starts, ends = samples.columns
    capacity = len(starts)
    stop_at = stop.at
    t1 = 0
    i = samples.size
    next_kept = samples.next_kept
    while count < limit:
        t0 = clock()
        model(*args)
        t1 = clock()
        if count == next_kept:
            if i == capacity:
                samples.size = i
                samples.halve()
                i = samples.size
            starts[i] = t0
            ends[i] = t1
            i += 1
            next_kept += samples.stride
        count += 1
        if t1 >= stop_at[0]:
            break
    samples.size = i
    samples.next_kept = next_kept
    return count, t1


def open_loop(
    serve: Callable[..., Any],
    args: tuple[Any, ...],
    schedule: arrivals.Schedule,
    start_ns: int,
    stop: Stop,
    limit: int,
    samples: _Samples,
    count: int = 0,
    clock: Callable[[], int] = time.perf_counter_ns,
    wait_until: Callable[[int, list[int], Callable[[], int]], bool] = arrivals.wait_until,
    held: list[int | None] | None = None,
) -> tuple[int, int]:
    """Serve ``schedule``'s arrivals, taken in turn with the copy's other workers, until
    ``stop`` or ``limit``: wait for each arrival's due time when early, send it at once when
    late (it queued). Keeps (due, picked, sent, end) per inference: latency counts from
    ``due``, the generator's lag is ``sent - due`` where the worker waited for it.

    Returns the number of inferences and the end of the last one (0 when none ran).
    ``held``: where an arrival taken but not yet due when ``stop`` came is kept, to be
    served first when the loop goes on (the next window of until_stable); without it the
    arrival would be lost. ``clock`` and ``wait_until``: a test's fake clock."""
    held = [None] if held is None else held
    due_col, picked_col, sent_col, end_col = samples.columns
    capacity = len(due_col)
    stop_at = stop.at
    t1 = 0
    i = samples.size
    next_kept = samples.next_kept
    while count < limit:
        offset, held[0] = held[0], None
        if offset is None:
            offset = schedule.take()
        if offset is None:  # a replay's last arrival was served
            break
        due = start_ns + offset
        if due >= stop_at[0]:  # it arrives after the window closes
            held[0] = offset
            break
        picked = clock()
        if picked < due and not wait_until(due, stop_at, clock):
            held[0] = offset
            break
        t0 = clock()
        serve(*args)
        t1 = clock()
        if count == next_kept:
            if i == capacity:
                samples.size = i
                samples.halve()
                i = samples.size
            due_col[i] = due
            picked_col[i] = picked
            sent_col[i] = t0
            end_col[i] = t1
            i += 1
            next_kept += samples.stride
        count += 1
        if t1 >= stop_at[0]:
            break
    samples.size = i
    samples.next_kept = next_kept
    return count, t1


def full_loop(
    job: Job,
    model: Any,
    rows: Iterator[Any],
    stop: Stop,
    limit: int,
    samples: _Samples,
    metrics: list[BaseEvalMetric],
    count: int = 0,
) -> tuple[int, int]:
    """Input -> preprocess -> model -> postprocess, each phase timed; scores metrics if any.

    Used for evaluation and whenever pre/postprocess functions are given. Counts on from
    ``count``, as ``fast_loop``.
    """
    clock = time.perf_counter_ns
    preprocess, postprocess = job.preprocess_fn, job.postprocess_fn
    target_col = job.eval_target_col
    batch_size = job.config.batch_size
    per_batch = batch_size > 1
    c0, c1, c2, c3, c4 = samples.columns
    capacity = len(c0)
    stop_at = stop.at
    t4 = 0
    i = samples.size
    next_kept = samples.next_kept
    while count < limit:
        t0 = clock()
        row: Any = next(rows, _END)
        if row is _END:
            break
        t1 = clock()
        if metrics:
            target = row[target_col]
            if len(row) == target_col + 1:  # the target last, as usual: one slice
                model_input = row[:target_col]
            else:
                model_input = row[:target_col] + row[target_col + 1 :]
        else:
            model_input = row
        if preprocess is not None:
            model_input = call_model(preprocess, model_input)
        t2 = clock()
        output = call_model(model, model_input)
        t3 = clock()
        if postprocess is not None:
            output = postprocess(output)
        t4 = clock()
        if metrics:
            if per_batch:
                n = len(target)
                if n != batch_size:  # a padded last batch: score its real records only
                    output = _first(output, n)
                for metric in metrics:
                    metric.process_batch(output, target)
            else:
                output = _unbatch(output)
                for metric in metrics:
                    metric.process_record(output, target)
        if count == next_kept:
            if i == capacity:
                samples.size = i
                samples.halve()
                i = samples.size
            c0[i] = t0
            c1[i] = t1
            c2[i] = t2
            c3[i] = t3
            c4[i] = t4
            i += 1
            next_kept += samples.stride
        count += 1
        if t4 >= stop_at[0]:
            break
    samples.size = i
    samples.next_kept = next_kept
    return count, t4


def sharded(job: Job) -> bool:
    """Whether each worker reads its own rows (``ShardedRows.shard``) rather than sharing."""
    return (
        job.dataset is not None
        and job.dataset_loader_fn is None
        and callable(getattr(job.dataset, "shard", None))
    )


def worker_rows(job: Job, shard: int, n_shards: int) -> Iterator[Any]:
    """The rows a worker reads on its own: the fixed input forever, the shard its
    ``dataset_loader_fn`` gives it, or the dataset's own ``shard`` (``ShardedRows``);
    other datasets are read through rows the workers share (``SharedRows``)."""
    if job.dataset is None:
        return itertools.repeat(job.model_input)
    if job.dataset_loader_fn is not None:
        return iter(job.dataset_loader_fn(job.dataset, shard, n_shards))
    if sharded(job):
        return iter(job.dataset.shard(shard, n_shards))  # type: ignore[attr-defined]
    raise RuntimeError("a dataset that cannot be sharded is read through shared rows")


class SharedRows:
    """One iterator shared by threads: each row goes to exactly one worker."""

    def __init__(self, rows: Iterable[Any]) -> None:
        self._rows = iter(rows)
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        with self._lock:
            return next(self._rows)


def copy_rows(job: Job, copy_id: int) -> SharedRows | None:
    """The rows one copy's workers share, in a process of its own: the copy's share of the
    dataset (rows ``copy_id, copy_id + n_models, ...``), each row read once.

    Workers share one iterator because a one-shot dataset (a generator) cannot be
    iterated by several of them at once. None without a dataset, or when each worker
    reads its own shard (``worker_rows``).
    """
    if job.dataset is None or job.dataset_loader_fn is not None or sharded(job):
        return None
    return SharedRows(itertools.islice(iter(job.dataset), copy_id, None, job.config.n_models))


def _in_windows(
    timed: Callable[[Stop, int], tuple[int, int]],
    stop: Stop,
    limit: int,
    samples: _Samples,
    board: WindowBoard,
) -> tuple[int, int]:
    """Time window after window, posting each to ``board``, until ``stop`` or ``limit`` (or
    the rows run out). Returns the inference count and the end of the last one."""
    count = last_end = window = 0
    while count < limit and stop.at[0] > last_end:
        end_ns = board.start_ns + (window + 1) * board.window_ns
        until = stop.window(end_ns)
        count, ended = timed(until, count)
        stop.unlink(until)
        if not ended:
            break
        last_end = ended
        if last_end < end_ns:  # stopped, at the limit or out of rows: no window to post
            break
        ends = samples.columns[-1][: samples.size]
        starts = samples.columns[0][: samples.size]
        while board.start_ns + (window + 1) * board.window_ns <= last_end:
            begin = board.start_ns + window * board.window_ns
            lo, hi = np.searchsorted(ends, [begin, begin + board.window_ns])
            board.post(window, int(hi - lo) * samples.stride, ends[lo:hi] - starts[lo:hi])
            window += 1
    return count, last_end


def calibrate_overhead_ns(samples_capacity: int = CALIBRATION_INFERS) -> float:
    """The harness's own cost per inference: the fast loop around a model that does nothing."""

    def null_model(*_: Any) -> None:
        return None

    samples = _Samples(samples_capacity, 2)
    start = time.perf_counter_ns()
    count, _ = fast_loop(null_model, (), Stop(NEVER), CALIBRATION_INFERS, samples)
    return (time.perf_counter_ns() - start) / count


def run_worker(
    job: Job,
    copy: ModelCopy,
    worker_id: int,
    rows: Iterator[Any],
    stop: Stop,
    limit: int,
    board: WindowBoard | None = None,
    schedule: arrivals.Schedule | None = None,
    start_ns: int = 0,
) -> WorkerResult:
    """One worker's whole timed run on ``copy``.

    ``rows``: the worker's own rows (``worker_rows``: a dataset that shards is read shard
    by shard, without a lock), or rows it shares with other workers (``SharedRows``).
    ``board`` (until_stable): the worker times one window at a time and posts each.
    ``schedule`` (open loop): the copy's arrivals, offsets from ``start_ns``.
    """
    metrics = [cls(**options) for _, cls, options in job.metrics]
    simple = not job.evaluating and job.preprocess_fn is None and job.postprocess_fn is None
    # Halving keeps samples evenly spaced only from a buffer of even size; a buffer
    # that holds the whole run never halves.
    capacity = limit if limit <= job.max_samples else job.max_samples - job.max_samples % 2
    width = OPEN_LOOP_COLUMNS if schedule is not None else 2 if simple else 5
    samples = _Samples(capacity, width)
    held: list[int | None] = [None]  # open loop: an arrival kept from one window to the next
    if schedule is not None:
        arrivals.precise_sleep()

    def timed(until: Stop, count: int) -> tuple[int, int]:
        if schedule is not None:
            if simple:
                serve, args = copy.model, _as_args(job.model_input)
            else:  # pre/postprocess are part of serving a request
                serve, args = (lambda x: _infer_once(job, copy.model, x)), (job.model_input,)
            return open_loop(
                serve, args, schedule, start_ns, until, limit, samples, count, held=held
            )
        if simple:
            return fast_loop(copy.model, job.model_input, until, limit, samples, count)
        return full_loop(job, copy.model, rows, until, limit, samples, metrics, count)

    if board is None:
        count, last_end = timed(stop, 0)
    else:
        count, last_end = _in_windows(timed, stop, limit, samples, board)
    return WorkerResult(
        copy.copy_id, worker_id, count, last_end, samples.stride, samples.stamps(), metrics
    )
