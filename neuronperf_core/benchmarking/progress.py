"""Progress of a sweep on stderr: a live bar on a terminal, plain lines otherwise.

Progress is for people, so it goes to stderr (stdout stays for reports and ``--json``) and
never runs inside the timed loop. On a terminal, rich draws the bar (imported only then) and
redraws it from its own thread twice a second: the config, what it is doing (loading copies,
measuring, stopping copies; for an evaluation, the records scored so far of how many), and
the time left, estimated from the configs that finished and eased towards each new estimate
rather than jumping to it. Elsewhere (a pipe, a log file) each config gets one plain line
as it starts, and an evaluation's config one more with the records it scored.

What a config is doing is known from the runner: it says when the timed window opens
(``window_opened``); a plugin runner that does not say still gets a bar, from the time the
config has taken. Records are counted where the rows are read, for runners that read them
in this process (``count_records``).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from neuronperf_core.benchmarking.config import BenchmarkConfig
from neuronperf_core.benchmarking.worker import Job

REDRAW_S = 0.5
BAR_WIDTH = 24
EASE = 0.25  # the share of the gap to a new time-left estimate the bar closes per redraw
RATE_AFTER = 0.1  # an evaluation's rate is trusted once this share of its records is scored

_active: Progress | None = None  # the sweep running in this process, for window_opened


def window_opened(start_ns: int) -> None:
    """A runner's word that the current config's timed window opens at ``start_ns``
    (``time.perf_counter_ns``): its copies are loaded and warmed up."""
    if _active is not None:
        _active.window_opened(start_ns)


def say(text: str, verbosity: int, out: TextIO | None = None) -> None:
    """One line for the person running neuronperf (stderr), unless ``verbosity`` is 0."""
    if verbosity >= 1:
        stream = out if out is not None else sys.stderr
        stream.write(f"{text}\n")
        stream.flush()


def config_text(config: BenchmarkConfig) -> str:
    """``batch 8, n_models 2, workers 1`` (+ pipeline size / cast mode when set)."""
    c = config
    text = f"batch {c.batch_size}, n_models {c.n_models}, workers {c.workers_per_model}"
    if c.pipeline_size != 1:
        text += f", pipeline {c.pipeline_size}"
    if c.cast_mode:
        text += f", {c.cast_mode}"
    return text


class _Records:
    """Records read from a config's rows, counted per iterator (each read by one thread, or
    under ``SharedRows``' lock), so the counts need no lock of their own."""

    def __init__(self) -> None:
        self.counts: list[list[int]] = []

    def done(self) -> int:
        return sum(c[0] for c in self.counts)


class _CountedRows:
    """A config's rows, counting the records each row holds as a worker reads it."""

    def __init__(self, rows: Iterable[Any], records: _Records, batched: bool, target: int):
        self.rows, self.records, self.batched, self.target = rows, records, batched, target

    def __iter__(self) -> Iterator[Any]:
        return self._counted(iter(self.rows))

    def _counted(self, rows: Iterator[Any]) -> Iterator[Any]:
        count = [0]
        self.records.counts.append(count)
        for row in rows:
            # a batch's target holds one entry per real record (a padded batch: fewer)
            count[0] += len(row[self.target]) if self.batched else 1
            yield row


class _CountedShards(_CountedRows):
    """Rows a backend shards across workers (``ShardedRows``), counted the same way."""

    def shard(self, shard: int, n_shards: int) -> Iterator[Any]:
        return self._counted(self.rows.shard(shard, n_shards))  # type: ignore[attr-defined]


@dataclasses.dataclass
class _Config:
    """Where the running config has got to, in ``time.monotonic`` seconds."""

    number: int
    text: str
    started: float
    window: float | None = None  # when its timed window opened (or opens)
    records: _Records | None = None


class Progress:
    """Where a sweep of ``total`` configs of ``duration`` seconds each has got to."""

    def __init__(
        self,
        total: int,
        duration: float,
        verbosity: int,
        out: TextIO | None = None,
        *,
        evaluating: bool = False,
        results: Path | None = None,
    ):
        self.total = total
        self.duration = duration
        self.evaluating = evaluating
        self.out = out if out is not None else sys.stderr
        self.enabled = verbosity >= 1
        self.tty = self.enabled and _isatty(self.out)
        self.current: _Config | None = None
        self.walls: list[float] = []  # seconds each finished config took
        self.records_total: int | None = None  # what one config scores (every config alike)
        self._shown: float | None = None  # the time left the bar shows
        self._shown_at = 0.0
        self._lock = threading.Lock()
        self._bar: Any = None  # rich's Progress, while a config runs on a terminal
        self._described: tuple[float, tuple[str, str, str]] | None = None
        if self.enabled:
            configs = "1 config" if total == 1 else f"{total} configs"
            verb = "evaluating" if evaluating else "benchmarking"
            timed = f", about {total * duration:.0f} s of timed runs" if duration else ""
            where = f"; results: {results.absolute()}" if results is not None else ""
            self._line(f"{verb} {configs}{timed}{where}")

    # -- what the sweep says ------------------------------------------------------------

    def count_records(self, job: Job, in_this_process: bool) -> Job:
        """``job`` with its rows counted as workers read them, when it evaluates a dataset
        and its rows are read in this process (a copy in a process of its own counts where
        nobody sees); else ``job`` as it is."""
        if not (self.enabled and job.evaluating and in_this_process):
            return job
        if job.dataset is None or job.dataset_loader_fn is not None:
            return job  # the user's loader function reads the dataset as it is
        records = _Records()
        kind = _CountedShards if callable(getattr(job.dataset, "shard", None)) else _CountedRows
        batched = job.config.batch_size > 1
        rows = kind(job.dataset, records, batched, job.eval_target_col)
        return dataclasses.replace(job, dataset=rows)

    def start_config(self, config: BenchmarkConfig, job: Job | None = None) -> None:
        global _active
        number = len(self.walls) + 1
        records = None
        if job is not None and isinstance(job.dataset, _CountedRows):
            records = job.dataset.records
        with self._lock:
            self.current = _Config(number, config_text(config), time.monotonic(), None, records)
        _active = self
        if not self.enabled:
            return
        if not self.tty:
            if self.evaluating:
                self._line(f"[{number}/{self.total}] {self.current.text}: evaluating")
            else:
                left = self._estimate(time.monotonic())
                about = f"; about {left:.0f} s left" if left is not None else ""
                self._line(f"[{number}/{self.total}] {self.current.text}{about}")
            return
        self._start_bar()

    def window_opened(self, start_ns: int) -> None:
        with self._lock:
            if self.current is not None:
                self.current.window = time.monotonic() + (start_ns - time.perf_counter_ns()) / 1e9

    def end_config(self) -> None:
        """The config is over: its bar is cleared, so warnings about it print on clean
        lines; off a terminal, an evaluation says how many records the config scored."""
        global _active
        self._stop_bar()  # first: its last frame still shows the config
        with self._lock:
            config, self.current = self.current, None
        _active = None
        if config is None:
            return
        self.walls.append(time.monotonic() - config.started)
        if config.records is not None:
            scored = config.records.done()
            self.records_total = self.records_total or scored
            if self.enabled and not self.tty:
                self._line(f"[{config.number}/{self.total}] {config.text}: {scored} records scored")

    def done(self) -> None:
        self.end_config()

    # -- estimates ----------------------------------------------------------------------

    def _estimate(self, now: float) -> float | None:
        """Seconds left in the sweep: the config running and those not started, each taking
        the timed duration plus what loading and stopping took the configs that finished
        (before any did: the time this one has spent loading so far). None when unknown."""
        current = self.current
        started = current.started if current is not None else now
        not_started = self.total - len(self.walls) - (current is not None)
        if self.evaluating:
            return self._evaluation_left(now, current, not_started)
        if self.walls:
            overhead = max(0.0, sum(self.walls) / len(self.walls) - self.duration)
        elif current is not None and current.window is not None:
            overhead = max(0.0, current.window - started)
        else:
            overhead = now - started
        per_config = self.duration + overhead
        this = 0.0
        if current is not None:
            this = max(0.0, per_config - (now - started))
            if current.window is None:  # still loading: all of its timed run is ahead
                this = max(this, self.duration)
            elif now < current.window + self.duration:
                this = max(this, current.window + self.duration - now)
        return this + not_started * per_config

    def _evaluation_left(
        self, now: float, current: _Config | None, not_started: int
    ) -> float | None:
        per_config = sum(self.walls) / len(self.walls) if self.walls else None
        this: float | None = 0.0
        if current is not None:
            this = None
            done = current.records.done() if current.records is not None else 0
            total = self.records_total
            if total and current.window is not None and done >= RATE_AFTER * total:
                rate = done / max(now - current.window, 1e-9)
                this = max(0.0, (total - done) / rate)
            elif per_config is not None:
                this = max(0.0, per_config - (now - current.started))
        if this is None or (not_started and per_config is None):
            return None
        return this + not_started * (per_config or 0.0)

    def _eased(self, now: float) -> float | None:
        """The time left to show: counting down between redraws, and moving a share of the
        way to each new estimate, so one slow config does not make it jump."""
        estimate = self._estimate(now)
        if estimate is None:
            return None
        if self._shown is None:
            self._shown = estimate
        else:
            counted_down = max(0.0, self._shown - (now - self._shown_at))
            self._shown = counted_down + EASE * (estimate - counted_down)
        self._shown_at = now
        return self._shown

    def _doing(self, now: float) -> str:
        current = self.current
        if current is None:
            return ""
        if current.window is None or now < current.window:
            return "loading copies"
        if self.evaluating:
            if current.records is None:
                return "scoring"
            total = f"/{self.records_total}" if self.records_total else ""
            return f"scoring {current.records.done()}{total} records"
        if now < current.window + self.duration:
            return "measuring"
        return "stopping copies"

    def _completed(self, now: float) -> float:
        """Configs done, the running one as a fraction (its timed window, or its records)."""
        done = float(len(self.walls))
        current = self.current
        if current is None or current.window is None or now < current.window:
            return done
        if self.evaluating:
            if current.records is not None and self.records_total:
                return done + min(1.0, current.records.done() / self.records_total)
            return done
        return done + (min(1.0, (now - current.window) / self.duration) if self.duration else 0)

    # -- drawing ------------------------------------------------------------------------

    def _describe(self) -> tuple[str, str, str]:
        """The bar's texts now: the config's number, its time left, and the config with what
        it is doing; worked out once per redraw (three columns ask)."""
        now = time.monotonic()
        with self._lock:
            if self._described is not None and now - self._described[0] < REDRAW_S / 4:
                return self._described[1]
            current = self.current
            if current is None:
                return "", "", ""
            left = self._eased(now)
            texts = (
                f"[{current.number}/{self.total}]",
                "" if left is None else f"~{left:.0f} s left",
                f"{self._doing(now)}: {current.text}",  # cut short from the end: the config
            )
            self._described = (now, texts)
            return texts

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, ProgressColumn, TaskProgressColumn
        from rich.progress import Progress as Bar
        from rich.text import Text

        owner = self

        class Described(ProgressColumn):
            def __init__(self, part: int) -> None:
                super().__init__()
                self.part = part

            def render(self, task: Any) -> Text:
                # one line, cut short on a narrow terminal rather than wrapped
                return Text(owner._describe()[self.part], no_wrap=True, overflow="ellipsis")

        class Moving(BarColumn):
            def render(self, task: Any) -> Any:
                task.completed = owner._completed(time.monotonic())  # read where drawn
                return super().render(task)

        console = Console(file=self.out, highlight=False, markup=False, emoji=False)
        self._bar = Bar(
            Described(0),
            Moving(bar_width=BAR_WIDTH),
            TaskProgressColumn(),
            Described(1),
            Described(2),
            console=console,
            transient=True,  # cleared when the config ends: warnings print on clean lines
            refresh_per_second=1 / REDRAW_S,
            redirect_stdout=False,  # stdout is the reports' and --json's, never the bar's
            redirect_stderr=False,
        )
        self._bar.add_task("", total=float(self.total))
        self._bar.start()

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False
