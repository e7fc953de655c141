"""Runner "ray": each model copy a Ray actor (``actor.CopyActor``), on the nodes of a Ray
cluster (``ray_address``) or of a local Ray started for the run.

Per run (``session``): join the cluster, or start a local Ray, and check that it can hold
every config's copies, before anything loads. Per config (``run``):

1. a placement group for the copies, ready before anything loads (``ray_placement``:
   "spread", one copy per node, strictly; "pack"; or None, Ray's default scheduling and no
   placement group), each copy asking for ``placement.copy_bundle``;
2. the actors start, say where they run, load and warm up their copy;
3. the driver estimates each actor's clock offset (``timing.estimate_offset``) and gives
   every actor the same start on its own clock: a start barrier without messages in the
   timed window;
4. each actor times its workers on its own clock and sends back durations since its start;
   the driver places them on its own clock, and a benchmark's timed window is the overlap
   of the copies' windows (inferences outside it are left out). An evaluation (one pass
   over the dataset, each copy its share of the rows) keeps every inference, and its
   window is the first start to the last end;
5. every actor is killed and the placement group removed, whatever happened.

A copy that fails or dies (its process, its node) ends the config with status "error",
naming the copy and its node; the sweep goes on. A stop request (the sweep's
``STOP_REQUESTED``: Ctrl-C, SIGTERM) stops every copy, and the config reports what they
measured with status "interrupted" (while placing or loading: nothing measured); past its
duration plus ``config_timeout`` a config ends with status "timeout". Either way every
actor is killed. Reports gain ``ray_*`` fields: where each copy ran, each node's clock
offset and its uncertainty, each copy's window.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from neuronperf_core.benchmarking import fresh, progress
from neuronperf_core.benchmarking.results import RawResult
from neuronperf_core.benchmarking.runners import (
    INTERRUPTED,
    POLL_S,
    Watch,
    raw_result,
)
from neuronperf_core.benchmarking.stats import StatsSampler
from neuronperf_core.benchmarking.worker import Job
from neuronperf_core.errors import NeuronPerfError
from neuronperf_core.options import BenchmarkOptions
from neuronperf_ray import placement, timing
from neuronperf_ray.actor import CopyActor

logger = logging.getLogger("neuronperf.ray")

# Between the last clock estimate and the start: every actor hears its start before it comes
# (plus 4 times the slowest round trip seen, for a cluster far away).
START_DELAY_NS = 100_000_000
SCHEDULE_TIMEOUT_S = 120.0  # a placement group or actor Ray cannot place in this long: error
# Warn when the copies' windows line up less well than this share of the timed window.
CLOCK_WARN_FRACTION = 0.01


class RayRunnerError(NeuronPerfError):
    """The Ray runner cannot run this: no cluster, too few resources, a job Ray cannot send."""


class _Ended(Exception):
    """The config ends early: a copy failed or died, a stop request, its time limit."""

    def __init__(self, status: str, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class RayRunner:
    """The registered runner object (``RAY``), shared by every config of every run; what one
    config needs lives in ``_ConfigRun``."""

    places_copies = True  # on the cluster's nodes: this machine's device count is no bound

    def __init__(self) -> None:
        self._placement: str | None = None  # the session's ray_placement

    def check(self, job: Job) -> None:
        """Before anything starts: refuse what this runner cannot do."""
        if job.config.until_stable:
            raise RayRunnerError(
                "until_stable is not supported with runner='ray' yet (its copies would need "
                "to vote across the cluster): pass a fixed duration instead."
            )
        try:
            fresh.check_serialisable(job)
        except Exception as exc:
            raise RayRunnerError(
                "runner='ray' sends the job to each copy's actor serialised with cloudpickle, "
                f"and it cannot be serialised: {type(exc).__name__}: {exc}. What your script "
                "defines travels by value (functions, lambdas, classes), but not locks, open "
                "files, sockets, generators or runtime handles: create those in load_fn or "
                "setup_fn (they run in the copy), and pass a dataset that can be iterated "
                "again (a list) rather than a generator."
            ) from exc

    @contextlib.contextmanager
    def session(self, jobs: Sequence[Job], options: BenchmarkOptions) -> Iterator[None]:
        """Join ``options.ray_address`` (or start a local Ray), check that the cluster holds
        every config's copies, and leave (or stop the local Ray) after the run. A script that
        called ``ray.init`` itself keeps its own connection."""
        import ray

        joined = not ray.is_initialized()
        if joined:
            _connect(options.ray_address, jobs)
        try:
            nodes = _nodes()
            for job in jobs:
                bundle = placement.copy_bundle(job.config)
                problem = placement.capacity_problem(
                    bundle, job.config.n_models, options.ray_placement, nodes
                )
                if problem is not None:
                    raise RayRunnerError(problem)
            self._placement = options.ray_placement
            yield
        finally:
            self._placement = None
            if joined:
                ray.shutdown()

    def run(self, job: Job, stats_interval: float) -> RawResult:
        import ray

        if not ray.is_initialized():  # called outside a run's session (directly, say)
            with self.session([job], BenchmarkOptions()):
                return self.run(job, stats_interval)
        return _ConfigRun(job, self._placement).run(stats_interval)


def _connect(address: str | None, jobs: Sequence[Job]) -> None:
    import ray

    if address is None:
        # A local Ray declares at least the CPUs the largest config asks for (Ray's CPUs are
        # logical): whatever runner="processes" runs here, runner="ray" runs too.
        needed = max(
            placement.copy_bundle(j.config)[placement.CPU] * j.config.n_models for j in jobs
        )
        ray.init(
            address="local",
            num_cpus=max(os.cpu_count() or 1, int(needed)),
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
        return
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise RayRunnerError(
            f"could not join the Ray cluster at ray_address={address!r}: {exc}. Start it with "
            "`ray start --head` on the head node and pass its address (HOST:6379; 'auto' on a "
            "node of the cluster; ray://HOST:10001 through Ray Client), or leave ray_address "
            "out to start a local Ray for the run."
        ) from exc


def _nodes() -> list[placement.Node]:
    import ray

    return [
        (f"{n['NodeManagerAddress']} ({n['NodeID'][:8]})", n.get("Resources", {}))
        for n in ray.nodes()  # type: ignore[no-untyped-call]
        if n.get("Alive")
    ]


class _ConfigRun:
    """One config on the cluster: its placement group, actors, where they run, their clocks."""

    def __init__(self, job: Job, placement_name: str | None) -> None:
        self.job = job
        self.placement = placement_name
        self.bundle = placement.copy_bundle(job.config)
        self.group: Any = None  # the placement group
        self.actors: list[Any] = []
        self.nodes: dict[int, dict[str, Any]] = {}  # copy -> CopyActor.where()
        self.clocks: list[timing.ClockOffset] = []
        self.watch = Watch(job)  # the stop request and the config's time limit

    def run(self, stats_interval: float) -> RawResult:
        sampler = StatsSampler(stats_interval)
        self.watch = Watch(self.job)  # the time limit counts from here
        try:
            return self._run(sampler)
        except KeyboardInterrupt:  # outside the sweep's StopOnSignals, or a second Ctrl-C
            return self._result(INTERRUPTED.status, INTERRUPTED.error, stats=sampler.stop())
        except _Ended as ended:
            return self._result(ended.status, ended.error, stats=sampler.stop())
        finally:
            self._release()

    def _run(self, sampler: StatsSampler) -> RawResult:
        import ray
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        n_models = self.job.config.n_models
        began = time.perf_counter()
        strategy: Any = None
        if self.placement is not None:
            self.group = placement_group(
                [self.bundle] * n_models, strategy=placement.STRATEGIES[self.placement]
            )
            self._gather([self.group.ready()], "being placed", SCHEDULE_TIMEOUT_S)
        job = ray.put(self.job)  # once into the object store; each node fetches it once
        asks = placement.actor_options(self.bundle)
        # made per config: an actor class made under an earlier connection (another cluster,
        # a local Ray since stopped) creates actors Ray removes at once
        actor_class = ray.remote(CopyActor)
        for copy_id in range(n_models):
            if self.group is not None:
                strategy = PlacementGroupSchedulingStrategy(
                    self.group, placement_group_bundle_index=copy_id
                )
            actor = actor_class.options(max_concurrency=2, scheduling_strategy=strategy, **asks)
            self.actors.append(actor.remote(job, copy_id))
        where = self._gather(
            [a.where.remote() for a in self.actors], "starting", SCHEDULE_TIMEOUT_S
        )
        self.nodes = dict(enumerate(where))
        started = time.perf_counter()
        overheads = self._gather([a.load.remote() for a in self.actors], "loading")
        loaded = time.perf_counter()
        self.clocks = [timing.estimate_offset(_pinger(actor)) for actor in self.actors]
        logger.debug(
            "%d copies placed and started in %.2f s, loaded in %.2f s, clocks read in %.3f s",
            n_models, started - began, loaded - started, time.perf_counter() - loaded,
        )  # fmt: skip
        delay = START_DELAY_NS + 4 * max(c.round_trip_ns for c in self.clocks)
        start_ns = time.perf_counter_ns() + delay
        progress.window_opened(start_ns)
        sampler.start()
        runs = [
            a.run.remote(start_ns + c.offset_ns)
            for a, c in zip(self.actors, self.clocks, strict=True)
        ]
        done = self._gather(runs, "running")
        status, error = "finished", None
        if self.watch.stop_sent_at is not None:  # the copies stopped early, with what they measured
            status, error = INTERRUPTED.status, INTERRUPTED.error
        return self._result(status, error, done, start_ns, max(overheads), sampler.stop())

    def _gather(self, refs: list[Any], stage: str, timeout_s: float | None = None) -> list[Any]:
        """Every result of ``refs`` (one per copy, or the placement group's), in short polls
        that look at the sweep's stop request and the config's time limit (``_check``); the
        first failure ends the config (``_Ended``). ``timeout_s``: how long Ray may take to
        place what ``refs`` wait on."""
        import ray
        from ray.exceptions import RayError

        index = {ref: k for k, ref in enumerate(refs)}
        values: dict[int, Any] = {}
        pending = list(refs)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)
            for ref in done:
                try:
                    values[index[ref]] = ray.get(ref)
                except RayError as exc:
                    raise _Ended("error", self._failure(index[ref], stage, exc)) from exc
            if pending:
                self._check(stage)
                if deadline is not None and time.monotonic() > deadline:
                    raise _Ended("error", self._unplaced(stage, timeout_s or 0.0, len(pending)))
        return [values[k] for k in range(len(refs))]

    def _check(self, stage: str) -> None:
        """End the config on a stop request (Ctrl-C, SIGTERM: copies that run are told to
        stop and get ``STOP_GRACE_S`` to send what they measured) or past its time limit."""

        def stop_copies() -> None:
            for actor in self.actors:
                actor.stop_now.remote()

        failure = self.watch.check(stop_copies if stage == "running" else None, stage)
        if failure is not None:
            raise _Ended(failure.status, failure.error)

    def _failure(self, copy_id: int, stage: str, exc: Exception) -> str:
        from ray.exceptions import RayActorError, RayTaskError

        if stage == "being placed":
            return f"the copies' placement group failed: {type(exc).__name__}: {exc}"
        node = self._node_text(copy_id)
        if isinstance(exc, RayTaskError):  # the copy raised: the user's code, or the model's
            cause = exc.cause
            logger.debug("model copy %d failed:\n%s", copy_id, exc)
            what = f"{type(cause).__name__}: {cause}"
            return f"model copy {copy_id} on {node} failed while {stage}: {what}"
        if isinstance(exc, RayActorError):
            gone = self._node_gone(copy_id)
            return (
                f"model copy {copy_id} on {node} died while {stage}"
                f"{' (its node left the cluster)' if gone else ''}: {_death_reason(exc)}"
            )
        return f"model copy {copy_id} on {node} failed while {stage}: {type(exc).__name__}: {exc}"

    def _unplaced(self, stage: str, timeout_s: float, waiting: int) -> str:
        what = "the copies' placement group" if stage == "being placed" else f"{waiting} copies"
        return (
            f"{what} could not be placed within {timeout_s:.0f} s: each copy asks for "
            f"{placement._text(self.bundle)}, and the cluster holds enough in total, so other "
            "work holds those resources now (`ray status` shows what is in use). Free them, or "
            "run fewer copies."
        )

    def _node_text(self, copy_id: int) -> str:
        where = self.nodes.get(copy_id)
        if where is not None:
            return f"node {where['node_ip']} ({where['node_id'][:8]}, {where['host']})"
        node_id = self._bundle_node(copy_id)
        return f"node {node_id[:8]}" if node_id else "a node not known yet"

    def _bundle_node(self, copy_id: int) -> str | None:
        """The node the placement group reserved for ``copy_id`` (before it says itself)."""
        if self.group is None:
            return None
        from ray.util.placement_group import placement_group_table

        with contextlib.suppress(Exception):
            node = placement_group_table(self.group).get("bundles_to_node_id", {}).get(copy_id)
            return str(node) if node else None
        return None

    def _node_gone(self, copy_id: int) -> bool:
        import ray

        node_id = self.nodes.get(copy_id, {}).get("node_id") or self._bundle_node(copy_id)
        if node_id is None:
            return False
        return any(n["NodeID"] == node_id and not n.get("Alive") for n in ray.nodes())  # type: ignore[no-untyped-call]

    def _result(
        self,
        status: str,
        error: str | None,
        runs: list[timing.CopyRun] | None = None,
        start_ns: int = 0,
        overhead_ns: float | None = None,
        stats: dict[str, Any] | None = None,
    ) -> RawResult:
        if runs is None:
            raw = raw_result(self.job, status, error, stats=stats)
            windows: list[tuple[int, int] | None] = []
            window = None
        else:
            placed = [[timing.shifted(w, start_ns) for w in run.workers] for run in runs]
            windows = [timing.copy_window(workers) for workers in placed]
            workers = [w for copy_workers in placed for w in copy_workers]
            # a benchmark times the copies together: the time all of them ran
            window = None if self.job.evaluating else timing.overlap(windows)
            if window is not None:
                workers = [timing.trimmed(w, window) for w in workers]
            raw = raw_result(
                self.job, status, error, [r.copy for r in runs], workers, overhead_ns, stats
            )
            if window is not None:
                raw["window_ns"] = list(window)
        extra = raw["config"].setdefault("extra", {})
        extra.update(self._report_fields(raw.get("window_ns"), windows))
        return raw

    def _report_fields(
        self, window: list[int] | None, windows: list[tuple[int, int] | None]
    ) -> dict[str, Any]:
        """Where each copy ran and how well the nodes' clocks are known (``ray_*`` fields)."""
        n_models = self.job.config.n_models
        nodes = [self.nodes.get(k, {}) for k in range(n_models)]
        fields: dict[str, Any] = {
            "ray_placement": self.placement or "default",
            "ray_node_ips": [n.get("node_ip") for n in nodes],
            "ray_node_ids": [n.get("node_id") for n in nodes],
            "ray_accelerators": [n.get("accelerators") for n in nodes],
            "ray_clock_offset_us": [c.offset_ns / 1e3 for c in self.clocks] or None,
            "ray_clock_error_us": [c.error_ns / 1e3 for c in self.clocks] or None,
            "ray_copy_windows_ms": None,
            "ray_clock_warning": None,
        }
        if window is None or not self.clocks:
            return fields
        fields["ray_copy_windows_ms"] = [
            None if w is None else [(w[0] - window[0]) / 1e6, (w[1] - window[0]) / 1e6]
            for w in windows
        ]
        length = window[1] - window[0]
        error = max(c.error_ns for c in self.clocks)
        if length > 0 and error > CLOCK_WARN_FRACTION * length:
            warning = (
                f"the nodes' clock offsets are known to within {error / 1e3:.0f} us (half the "
                f"fastest round trip to a copy), {100 * error / length:.1f}% of the "
                f"{length / 1e9:.3f} s timed window: the copies' windows line up only that "
                "well. Run longer (duration), or the driver nearer the cluster."
            )
            logger.warning("%s", warning)
            fields["ray_clock_warning"] = warning
        return fields

    def _release(self) -> None:
        """Kill every actor and remove the placement group, whatever happened."""
        import ray
        from ray.util.placement_group import remove_placement_group

        for actor in self.actors:
            with contextlib.suppress(Exception):  # already dead
                ray.kill(actor, no_restart=True)
        if self.group is not None:
            with contextlib.suppress(Exception):
                remove_placement_group(self.group)
        self.actors, self.group = [], None


def _pinger(actor: Any) -> Callable[[], int]:
    """A call that reads ``actor``'s clock."""
    import ray

    return lambda: int(ray.get(actor.clock.remote()))


def _death_reason(exc: Any) -> str:
    """Ray's own words on why an actor died, without its boilerplate."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if getattr(exc, "actor_init_failed", False) and lines:  # the last line: what was raised
        reason = f"its actor could not be created: {lines[-1]}"
        if "No module named" in reason:
            reason += (
                ". The model's code must be importable on every node: install its package "
                "there, or define it in the script you run (it then travels by value)"
            )
        return reason
    why = [line for line in lines if line.startswith(("The actor is dead", "The actor died"))]
    reason = why[0] if why else (lines[0] if lines else type(exc).__name__)
    cut = reason.find(" Some common causes")
    return reason[:cut] if cut > 0 else reason[:400]


RAY = RayRunner()  # the object the plugin registers by import path
