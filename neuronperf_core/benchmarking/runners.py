"""The built-in runners: worker threads in this process, or one process per model copy.

A runner takes a ``Job`` and returns a raw result (``results.py``). Runners
are plugins: ``neuronperf_core.builtin_runners`` registers this module's
``THREADS``, ``PROCESSES`` and ``INTERPRETERS`` by import path through the
``neuronperf_register_runners`` hook (so that loading plugins does not import
this module), and a plugin can add its own (Ray, say) the same way.

Start methods, chosen on purpose:
- "processes" forks: children inherit the user's load_fn, closures and data
  without pickling, and start fast. Forking is only safe while the parent
  holds no framework runtime that forbids it (the Neuron runtime, CUDA): the
  children are forked before this process starts any thread of its own, and
  frameworks that must not be forked use "interpreters".
- "interpreters" starts a fresh interpreter per copy (``fresh.py``): nothing of
  the parent's runtime state is inherited, and the user's script is never
  imported again, so it needs no ``if __name__ == "__main__":`` guard. The job
  goes over a socket, serialised with cloudpickle: what the script defined
  travels by value. The price is a slower start.

A copy in a process of its own, either way, follows ``copy_life``: load, say
"ready", wait for "go" (a shared start time), run, say "done" (or "error");
the parent may say "stop" (Ctrl-C) at any time after "go". A copy dies with
its parent, and the parent kills its copies on the way out.

Every runner waits on a config in short polls (``Watch``): the sweep's stop
request (``STOP_REQUESTED``: Ctrl-C, SIGTERM) ends the config within a second
or two, keeping what its copies measured, and a config that takes longer than
its duration plus ``config_timeout`` (a model hanging while it loads or in a
call) ends with status "timeout": copies in processes are killed, threads
are left behind (``ThreadsRunner``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from neuronperf_core import uncertainty
from neuronperf_core.benchmarking import arrivals, fresh, progress
from neuronperf_core.benchmarking.results import RawResult
from neuronperf_core.benchmarking.stability import StableVotes, WindowBoard
from neuronperf_core.benchmarking.stats import StatsSampler
from neuronperf_core.benchmarking.worker import (
    NEVER,
    Job,
    ModelCopy,
    SharedRows,
    Stop,
    WorkerResult,
    calibrate_overhead_ns,
    copy_rows,
    load_copy,
    run_worker,
    sharded,
    worker_rows,
)
from neuronperf_core.errors import NeuronPerfError

logger = logging.getLogger("neuronperf.runners")

START_DELAY_NS = 20_000_000  # lets every worker reach its loop before the window opens
# An evaluation is one pass, its rows handed out or sharded, and its window opens at the
# first worker's first batch: a worker that starts late delays nothing but itself. So the
# threads runner gives an evaluation's threads this long each (at most START_DELAY_NS)
# instead of START_DELAY_NS, which a short evaluation spent idle (20 ms of 110 ms scoring
# 20,000 records in bench/evaluate.py).
THREAD_START_DELAY_NS = 1_000_000
POLL_S = 0.1  # how often a runner waiting on a config looks at the stop request and the clock
STOP_GRACE_S = 2.0  # after a stop request, how long the copies get to report what they measured
KILL_GRACE_S = 1.0  # how long a copy told to terminate gets before it is killed

# Set by the sweep's signal handler (``sweep.StopOnSignals``) on Ctrl-C or SIGTERM: the
# running config stops and reports what it measured, and no later config starts. A runner
# polls it while it waits (a plugin's runner may too).
STOP_REQUESTED = threading.Event()


class Runner(Protocol):
    def run(self, job: Job, stats_interval: float) -> RawResult: ...


@dataclass(frozen=True)
class Failure:
    """Why a config could not finish: a raw result's status and error."""

    status: str
    error: str


INTERRUPTED = Failure("interrupted", "interrupted by the user (Ctrl-C or SIGTERM)")


class Watch:
    """What ends a runner's wait on a config early: the sweep's stop request, and the
    config's time limit (its duration plus ``config_timeout``, counted from the start)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        limit = job.config_timeout
        self.give_up_at = None if limit is None else time.monotonic() + job.config.duration + limit
        self.stop_sent_at: float | None = None

    def check(self, stop_copies: Callable[[], None] | None, stage: str = "") -> Failure | None:
        """None: wait on. ``stop_copies``: how to ask the copies to stop and report what they
        measured, which they get ``STOP_GRACE_S`` for (None: nothing is measured yet, give
        up at once). ``stage``: what the copies were doing, for the timeout's message."""
        now = time.monotonic()
        if STOP_REQUESTED.is_set():
            if stop_copies is None:
                return INTERRUPTED
            if self.stop_sent_at is None:
                self.stop_sent_at = now
                stop_copies()
            elif now > self.stop_sent_at + STOP_GRACE_S:
                return Failure(
                    "interrupted",
                    f"{INTERRUPTED.error}; the model did not return within {STOP_GRACE_S:g} s "
                    "of it, so nothing of this config was kept",
                )
            return None
        if self.give_up_at is not None and now > self.give_up_at:
            return Failure(
                "timeout",
                f"the config took longer than its duration ({self.job.config.duration:g} s) "
                f"plus config_timeout ({self.job.config_timeout:g} s)"
                f"{f' while {stage}' if stage else ''}: a model that hangs while loading or "
                "in a call? It was ended; pass a larger config_timeout (0: no limit) if it "
                "needs longer.",
            )
        return None


class JobNotPicklableError(NeuronPerfError, TypeError):
    """A job bound for a fresh interpreter holds something cloudpickle cannot send."""


def worker_limits(job: Job) -> list[int]:
    """Each worker's share of max_infers (duration=0 with a fixed input: one inference)."""
    n_workers = job.config.n_models * job.config.workers_per_model
    total = job.config.max_infers
    if total is None and job.config.duration == 0 and not job.evaluating:
        total = 1  # one pass over the config's single input
    if total is None:
        return [NEVER] * n_workers
    return [total // n_workers + (1 if k < total % n_workers else 0) for k in range(n_workers)]


def _deadline(job: Job, start_ns: int) -> int:
    if job.config.duration == 0:
        return NEVER  # one pass: the rows or max_infers end the run
    return start_ns + int(job.config.duration * 1e9)


# A loaded model may offer this method: each worker thread calls it once, before the timed
# window, so thread-local runtime state is set outside the measured loop.
WORKER_SETUP = "neuronperf_worker_setup"


def _board(job: Job, start_ns: int, on_stable: Callable[[bool], None]) -> WindowBoard | None:
    """until_stable: the board a copy's workers post their windows to (None otherwise)."""
    config = job.config
    if not config.until_stable or config.duration == 0 or job.evaluating:
        return None
    window_s = uncertainty.window_length_s(config.window_s, config.duration) or config.duration
    minimum = min(config.duration, uncertainty.MIN_VALID_DURATION_S)
    return WindowBoard(
        config.workers_per_model,
        start_ns,
        int(window_s * 1e9),
        config.stability_pct / 100,
        int(minimum * 1e9),
        on_stable,
        config.open_loop,
    )


def run_workers(
    job: Job,
    copy: ModelCopy,
    rows: Any,
    stop: Stop,
    start_ns: int,
    on_stable: Callable[[bool], None] = lambda stable: None,
) -> list[WorkerResult]:
    """Run the workers of one copy in threads, all released at ``start_ns``; with
    until_stable, ``on_stable(stable)`` hears whenever the copy's stability changes."""
    per_copy = job.config.workers_per_model
    limits = worker_limits(job)
    n_shards = job.config.n_models * per_copy
    results: list[WorkerResult | BaseException | None] = [None] * per_copy
    board = _board(job, start_ns, on_stable)
    schedule = copy_schedule(job, copy.copy_id)

    def work(worker_id: int) -> None:
        shard = copy.copy_id * per_copy + worker_id
        worker_input = rows if rows is not None else worker_rows(job, shard, n_shards)
        try:
            setup = getattr(copy.model, WORKER_SETUP, None)
            if setup is not None:
                setup()  # per-thread runtime state (OpenMP's thread count), before the clock
            while time.perf_counter_ns() < start_ns:  # a shared start, even across processes
                time.sleep(min(0.001, max(0.0, (start_ns - time.perf_counter_ns()) / 1e9)))
            results[worker_id] = run_worker(
                job, copy, worker_id, worker_input, stop, limits[shard], board, schedule, start_ns
            )
        except BaseException as exc:
            results[worker_id] = exc
            stop.now()  # one failed worker ends the config for all

    threads = [
        threading.Thread(target=work, args=(w,), name=f"neuronperf-worker-{copy.copy_id}-{w}")
        for w in range(per_copy)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    workers = [r for r in results if isinstance(r, WorkerResult)]
    if schedule is not None and workers:
        first = copy.copy_id * per_copy
        # a stop request, until_stable or max_infers ended it before the deadline
        cut = stop.at[0] == 0 or any(w.count >= limits[first + w.worker_id] for w in workers)
        close_open_loop(schedule, workers, start_ns, None if cut else stop.at[0])
    return workers


def close_open_loop(
    schedule: arrivals.Schedule, workers: list[WorkerResult], start_ns: int, deadline: int | None
) -> None:
    """Record a copy's open-loop window on its worker 0: from the shared start to the
    ``deadline``, or to its last end when something ended it sooner (None); and ``late``,
    the arrivals due in that window that no worker started (left queued)."""
    ended = max((w.last_end_ns for w in workers if w.count), default=start_ns)
    window = (start_ns, ended if deadline is None else deadline)
    started = sum(w.count for w in workers)
    workers[0].open_window_ns = window
    workers[0].late = max(0, schedule.due_before(window[1] - start_ns) - started)


def copy_schedule(job: Job, copy_id: int) -> arrivals.Schedule | None:
    """Open loop: the arrivals of copy ``copy_id`` (None: a closed loop)."""
    config = job.config
    if config.arrival_rate is None and job.trace_ns is None:
        return None
    return arrivals.Schedule(
        config.arrivals,
        config.arrival_rate,
        config.n_models,
        copy_id,
        config.arrival_seed,
        job.trace_ns,
    )


def raw_result(
    job: Job,
    status: str,
    error: str | None = None,
    copies: list[dict[str, int]] | None = None,
    workers: list[WorkerResult] | None = None,
    overhead_ns: float | None = None,
    stats: dict[str, Any] | None = None,
) -> RawResult:
    """Assemble a raw result; merges the workers' metric instances with ``aggregate``."""
    workers = workers or []
    timed = [w for w in workers if w.count]
    window = (
        [min(int(w.stamps[0, 0]) for w in timed), max(w.last_end_ns for w in timed)]
        if timed
        else None
    )
    opened = [w.open_window_ns for w in workers if w.open_window_ns is not None]
    if window is not None and opened:  # an open loop's window is its schedule's
        window = [min(o[0] for o in opened), max(window[1], *(o[1] for o in opened))]
    metrics: dict[str, Any] = {}
    if status == "finished":
        for position, (name, cls, _) in enumerate(job.metrics):
            try:
                metrics[name] = cls.aggregate([w.metrics[position] for w in workers])
            except Exception as exc:
                status, error = "error", f"metric {name!r} could not be aggregated: {exc}"
                settings = "".join(f":{k}={v}" for k, v in getattr(exc, "settings", {}).items())
                if settings:  # the spec as written, with what would score this data
                    error += f" Ask for it as metrics=['{name}{settings}']."
                metrics = {}
                break
    return {
        "config": job.config.to_dict(),
        "status": status,
        "error": error,
        "window_ns": window,
        "copies": copies or [],
        "workers": [w.to_dict() for w in workers],
        "overhead_ns": overhead_ns,
        "stats": stats or {},
        "metrics": metrics,
    }


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class ThreadsRunner:
    """Every model copy and worker in this process (multiprocess=False).

    The config runs in daemon threads while the calling thread waits on it (``Watch``), so
    that a stop request or the time limit ends it even when a model never returns from
    loading or from a call. Such a thread cannot be killed: it is left behind, holding its
    model (and a core, if it spins) until the process ends, which it never delays (daemon
    threads). A model that may hang is better run by a process runner: its copies are
    killed."""

    def run(self, job: Job, stats_interval: float) -> RawResult:
        stop = Stop(NEVER)  # its deadline is set when the window opens
        sampler = StatsSampler(stats_interval)
        timing = threading.Event()  # the window is open: workers can stop and report
        outcome: list[RawResult | BaseException] = []
        done = threading.Event()

        def config() -> None:
            try:
                outcome.append(self._config(job, stop, sampler, timing))
            except BaseException as exc:  # raised here as it would be without the thread
                outcome.append(exc)
            finally:
                done.set()

        threading.Thread(target=config, name="neuronperf-config", daemon=True).start()
        watch = Watch(job)
        try:
            while not done.wait(POLL_S):
                failure = watch.check(stop.now if timing.is_set() else None)
                if failure is not None:
                    return raw_result(job, failure.status, failure.error)
        finally:
            if not done.is_set():  # given up on (or a second Ctrl-C): its threads stop
                stop.now()  # after the call they are in, if it ever returns
                sampler.stop()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    @staticmethod
    def _config(job: Job, stop: Stop, sampler: StatsSampler, timing: threading.Event) -> RawResult:
        """Load the copies, run their workers in threads, wait for them (in a thread the
        runner may give up on)."""
        try:
            copies = [load_copy(job, copy_id) for copy_id in range(job.config.n_models)]
        except Exception as exc:
            return raw_result(job, "error", f"loading a model copy failed: {_error_text(exc)}")
        if stop.at[0] == 0:  # given up on while loading: nobody waits for this result
            return raw_result(job, INTERRUPTED.status, INTERRUPTED.error)
        overhead = calibrate_overhead_ns()
        shared = None
        if job.dataset is not None and job.dataset_loader_fn is None and not sharded(job):
            shared = SharedRows(job.dataset)  # threads share one iterator: each row read once
        delay = START_DELAY_NS
        if job.evaluating:
            n_threads = job.config.n_models * (1 + job.config.workers_per_model)
            delay = min(delay, n_threads * THREAD_START_DELAY_NS)
        start_ns = time.perf_counter_ns() + delay
        progress.window_opened(start_ns)
        stop.at[0] = min(stop.at[0], _deadline(job, start_ns))
        timing.set()
        outcome: list[list[WorkerResult] | BaseException] = []
        done = [threading.Event() for _ in copies]
        votes = StableVotes(len(copies), stop.now)  # until_stable: stop once all are stable

        def run_copy(copy: ModelCopy, copy_done: threading.Event) -> None:
            def on_stable(stable: bool) -> None:
                votes.vote(copy.copy_id, stable)

            try:
                outcome.append(run_workers(job, copy, shared, stop, start_ns, on_stable))
            except BaseException as exc:
                outcome.append(exc)
            finally:
                copy_done.set()

        threads = [
            threading.Thread(target=run_copy, args=(c, d), daemon=True)
            for c, d in zip(copies, done, strict=True)
        ]
        sampler.start()
        for thread in threads:
            thread.start()
        for copy_done in done:
            copy_done.wait()
        stats = sampler.stop()
        status, error = "finished", None
        workers: list[WorkerResult] = []
        for item in outcome:
            if isinstance(item, BaseException):
                status, error = "error", f"inference failed: {_error_text(item)}"
            else:
                workers.extend(item)
        if STOP_REQUESTED.is_set():  # what failed may have failed of it (a reader's process)
            error = INTERRUPTED.error + ("" if error is None else f"; {error}")
            status = INTERRUPTED.status
        return raw_result(job, status, error, [c.info() for c in copies], workers, overhead, stats)


# -- one process per copy -------------------------------------------------------


def _copy_process(
    job: Job, copy_id: int, conn: Connection, inherited: list[Connection], parent_pid: int
) -> None:
    """A forked child (multiprocessing's target)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C for everyone
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler: terminate ends it
    for other in inherited:  # the parent's ends: held here, the pipe would outlive the parent
        other.close()
    fresh.die_with_parent(parent_pid)
    copy_life(job, copy_id, conn, lambda message: fresh.send(conn, message))  # by value


def fresh_copy_main() -> None:
    """A copy's interpreter: take over the parent's sys.path and argv, receive the job,
    run the copy (``copy_life``). Started by ``fresh.FreshProcess`` as ``fresh.BOOT``."""
    fd, parent_pid, copy_id = (int(arg) for arg in sys.argv[2:5])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C for everyone
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a pending one is dropped
    fresh.die_with_parent(parent_pid)
    conn = Connection(fd)
    try:
        header = conn.recv()
        sys.path[:] = header["sys_path"]
        sys.argv[:] = header["sys_argv"]
        payload = conn.recv_bytes()
    except (EOFError, OSError):
        os._exit(fresh.EXIT_ORPHANED)

    try:
        job = pickle.loads(payload)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            fresh.send(
                conn,
                (
                    "error",
                    f"its job could not be unpickled in a fresh interpreter: "
                    f"{type(exc).__name__}: {exc}",
                    traceback.format_exc(),
                ),
            )
        conn.close()
        return
    del payload
    copy_life(job, copy_id, conn, lambda message: fresh.send(conn, message))


def copy_life(
    job: Job, copy_id: int, conn: Connection, send: Callable[[tuple[Any, ...]], None]
) -> None:
    """A copy's life in a process of its own: load, report ready, wait for the start, run,
    send the results (or the error). ``send``: how a message reaches the parent."""
    parent = _Parent(conn, job)
    try:
        copy = load_copy(job, copy_id)
        send(("ready", calibrate_overhead_ns()))
        start_ns = parent.wait_for_go()
        workers = run_workers(
            job,
            copy,
            copy_rows(job, copy_id),
            parent.stop,
            start_ns,
            lambda stable: send(("stable", stable)),  # the parent stops every copy
        )
        send(("done", copy.info(), workers))
    except BaseException as exc:
        with contextlib.suppress(OSError):  # the parent is gone
            send(("error", _error_text(exc), traceback.format_exc()))
    finally:
        parent.finished = True
        conn.close()


class _Parent:
    """In a copy's process: the parent's messages, read by one thread from the start. "go"
    opens the window (and sets its deadline), "stop" ends it early (the parent got Ctrl-C).
    The pipe closing before the copy finished means the parent died: the copy exits, as
    nobody is left to read its result."""

    def __init__(self, conn: Connection, job: Job) -> None:
        self.conn = conn
        self.job = job
        self.stop = Stop(NEVER)
        self.start_ns = 0
        self.finished = False
        self._go = threading.Event()
        threading.Thread(target=self._listen, name="neuronperf-parent", daemon=True).start()

    def wait_for_go(self) -> int:
        self._go.wait()
        return self.start_ns

    def _listen(self) -> None:
        try:
            while True:
                message = self.conn.recv()
                if message[0] == "go":
                    self.start_ns = message[1]
                    deadline = _deadline(self.job, self.start_ns)
                    self.stop.at[0] = min(self.stop.at[0], deadline)
                    self._go.set()
                elif message[0] == "stop":
                    self.stop.now()
        except (EOFError, OSError):
            if not self.finished:
                os._exit(fresh.EXIT_ORPHANED)


class ProcessRunner:
    """One process per model copy, its workers as threads inside it."""

    def __init__(self, start_method: str) -> None:
        self.start_method = start_method

    def check(self, job: Job) -> None:
        """Fail before any process starts if a fresh interpreter cannot receive the job."""
        if self.start_method == "fork":
            if "torch" in sys.modules:  # seen, not imported: the check must stay cheap
                warnings.warn(
                    "torch is loaded in this process, and forked model copies hang if torch "
                    "already ran multi-threaded operations here (its OpenMP runtime is not "
                    "fork-safe). Use npf.torch.benchmark, or multiinterpreter=True.",
                    RuntimeWarning,
                    stacklevel=4,
                )
            return
        _serialised(job, fresh.check_serialisable)

    def run(self, job: Job, stats_interval: float) -> RawResult:
        processes: list[Any] = []  # multiprocessing.Process or fresh.FreshProcess
        conns: list[Connection] = []  # the parent's end of each copy's pipe
        if self.start_method == "fork":
            self.check(job)
            start = self._fork
        else:
            payload = _serialised(job, fresh.dumps)
            start = functools.partial(self._start_fresh, payload)
        try:
            start(job, processes, conns)
            return self._measure(job, stats_interval, processes, conns)
        except KeyboardInterrupt:  # a second Ctrl-C: no waiting for the copies
            return raw_result(job, INTERRUPTED.status, INTERRUPTED.error)
        finally:
            _end(processes)
            for conn in conns:
                conn.close()

    @staticmethod
    def _fork(job: Job, processes: list[Any], conns: list[Connection]) -> None:
        # Copies send their metric instances back by value (a class defined in a function
        # has no import path). Serialising the classes here first gives each one a
        # cloudpickle tracking id that the forked copies inherit, so what comes back is
        # an instance of the caller's own class, not of a look-alike.
        fresh.dumps([metric_class for _, metric_class, _ in job.metrics])
        context: Any = multiprocessing.get_context("fork")
        for copy_id in range(job.config.n_models):
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=_copy_process,
                args=(job, copy_id, child_end, [*conns, parent_end], os.getpid()),
                name=f"neuronperf-copy-{copy_id}",
                daemon=True,
            )
            process.start()
            child_end.close()
            processes.append(process)
            conns.append(parent_end)

    @staticmethod
    def _start_fresh(
        payload: bytes, job: Job, processes: list[Any], conns: list[Connection]
    ) -> None:
        for copy_id in range(job.config.n_models):  # every copy starts up in parallel ...
            process = fresh.FreshProcess(copy_id)
            processes.append(process)
            conns.append(process.conn)
        for process in processes:  # ... and unpickles its job as soon as it has it
            process.send_job(payload)

    def _measure(
        self, job: Job, stats_interval: float, processes: list[Any], conns: list[Connection]
    ) -> RawResult:
        """Wait for every copy to load, start them together, collect their results."""
        sampler = StatsSampler(stats_interval)
        watch = Watch(job)
        try:
            ready = self._collect(conns, processes, {}, job.death_hints, lambda: watch.check(None))
            if isinstance(ready, Failure):
                return raw_result(job, ready.status, ready.error)
            overhead = max(message[1] for message in ready)
            start_ns = time.perf_counter_ns() + START_DELAY_NS
            progress.window_opened(start_ns)
            sampler.start()
            for conn in conns:
                with contextlib.suppress(OSError):  # a copy that died: collected below
                    conn.send(("go", start_ns))
            stop_all = functools.partial(_send_all, conns, ("stop",))
            votes = StableVotes(len(conns), stop_all)
            done = self._collect(
                conns,
                processes,
                {},
                job.death_hints,
                lambda: watch.check(stop_all),  # a stop request: the copies report what they have
                on_stable=votes.vote,
            )
        except KeyboardInterrupt:  # a second Ctrl-C: nothing to report
            sampler.stop()
            raise
        stats = sampler.stop()
        if isinstance(done, Failure):
            return raw_result(job, done.status, done.error, stats=stats)
        status, error = "finished", None
        if watch.stop_sent_at is not None:
            status, error = INTERRUPTED.status, INTERRUPTED.error
        return self._result(job, status, error, done, overhead, stats)

    @staticmethod
    def _result(
        job: Job,
        status: str,
        error: str | None,
        done: list[tuple[Any, ...]],
        overhead: int,
        stats: dict[str, Any],
    ) -> RawResult:
        copies = [message[1] for message in done]
        workers = [w for message in done for w in message[2]]
        return raw_result(job, status, error, copies, workers, overhead, stats)

    @staticmethod
    def _collect(
        conns: list[Connection],
        processes: list[Any],
        messages: dict[int, tuple[Any, ...]],
        hints: dict[str, str],
        watch: Callable[[], Failure | None],
        on_stable: Callable[[int, bool], None] | None = None,
    ) -> list[tuple[Any, ...]] | Failure:
        """The next message of every child, in copy order, or the first failure (a copy
        that died gets the backend's hint for its signal, ``hints``; ``watch()``, asked
        every ``POLL_S``, may give up). ``messages`` fills as they come. A copy's
        ("stable", bool) on the way (until_stable) goes to ``on_stable(copy, stable)``."""
        sentinels = [p.sentinel for p in processes]  # None: seen through its pipe alone
        while len(messages) < len(conns):
            failure = watch()
            if failure is not None:
                return failure
            waiting = [c for i, c in enumerate(conns) if i not in messages]
            ended = [s for i, s in enumerate(sentinels) if i not in messages and s is not None]
            for ready in wait(waiting + ended, POLL_S):
                index = conns.index(ready) if ready in conns else sentinels.index(ready)
                if index in messages:
                    continue
                if ready is not conns[index]:  # the process ended
                    processes[index].join()
                    if not conns[index].poll():
                        return _died(index, processes[index].exitcode, hints)
                try:
                    message = conns[index].recv()
                except EOFError:  # it ended without a word (killed, say)
                    processes[index].join()
                    return _died(index, processes[index].exitcode, hints)
                if message[0] == "stable" and on_stable is not None:
                    on_stable(index, message[1])
                    continue
                if message[0] == "error":
                    logger.debug("model copy %d failed:\n%s", index, message[2])
                    return Failure("error", f"model copy {index} failed: {message[1]}")
                messages[index] = message
        return [messages[i] for i in range(len(conns))]


def _end(processes: list[Any]) -> None:
    """Terminate the copies still running, kill those that do not end, and reap them all."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(KILL_GRACE_S)
        if process.is_alive():  # a model stuck where SIGTERM is not acted upon
            process.kill()
            process.join()
        process.close()


def _send_all(conns: list[Connection], message: tuple[Any, ...]) -> None:
    for conn in conns:
        with contextlib.suppress(OSError):  # that copy has already reported and exited
            conn.send(message)


def _serialised(job: Job, serialise: Callable[[Job], Any]) -> Any:
    """``serialise(job)``, or a clear error before any process starts."""
    try:
        return serialise(job)
    except Exception as exc:
        raise JobNotPicklableError(
            "model copies run in fresh interpreters (runner 'interpreters'), which receive "
            f"the job serialised with cloudpickle, and it cannot be serialised: "
            f"{_error_text(exc)}. What your script defines travels by value (functions, "
            "lambdas, classes), but not locks, open files, sockets, generators or runtime "
            "handles: create those in load_fn or setup_fn (they run in the copy), pass a "
            "dataset that can be iterated again (a list, a class with __iter__) rather than "
            "a generator, or pass multiprocess=False to run copies as threads here."
        ) from exc


def _died(copy_id: int, exitcode: int | None, hints: dict[str, str]) -> Failure:
    """A copy that ended before it reported: killed, or an error; interrupted when a stop
    request came too (a SIGTERM sent to the whole process group reaches the copies)."""
    failure = _death_message(copy_id, exitcode, hints)
    if STOP_REQUESTED.is_set():
        return Failure(INTERRUPTED.status, f"{INTERRUPTED.error}; {failure.error}")
    return failure


def _death_message(copy_id: int, exitcode: int | None, hints: dict[str, str]) -> Failure:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = (
            " The OS kills processes this way when memory runs out: try fewer n_models "
            "(or a smaller batch size)."
            if -exitcode == signal.SIGKILL
            else ""
        )
        if name in hints:
            hint += " " + hints[name]
        return Failure("killed", f"model copy {copy_id} was killed by signal {name}.{hint}")
    return Failure(
        "error",
        f"model copy {copy_id} exited with status {exitcode} before reporting a result; "
        "run with multiprocess=False to see the error in this process.",
    )


# The built-in runners, registered by import path in neuronperf_core.builtin_runners.
THREADS = ThreadsRunner()
PROCESSES = ProcessRunner("fork")
INTERPRETERS = ProcessRunner("spawn")
