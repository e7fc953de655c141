"""Progress of a sweep on stderr: a live bar on a terminal, one plain line per config otherwise.

Progress is for people, so it goes to stderr (stdout stays for reports and
``--json``) and never runs inside the timed loop: the bar is redrawn by its own
thread twice a second, which costs the workers nothing measurable.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from neuronperf_core.benchmarking.config import BenchmarkConfig

BAR_WIDTH = 20
REDRAW_S = 0.5


def config_text(config: BenchmarkConfig) -> str:
    """``batch 8, n_models 2, workers 1`` (+ pipeline size / cast mode when set)."""
    c = config
    text = f"batch {c.batch_size}, n_models {c.n_models}, workers {c.workers_per_model}"
    if c.pipeline_size != 1:
        text += f", pipeline {c.pipeline_size}"
    if c.cast_mode:
        text += f", {c.cast_mode}"
    return text


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
    ):
        self.total = total
        self.duration = duration
        self.out = out if out is not None else sys.stderr
        self.enabled = verbosity >= 1
        self.tty = self.enabled and self.out.isatty()
        self.count = 0
        self.label = ""
        self.started = time.monotonic()
        self.config_started = self.started
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if self.enabled:
            estimate = f", about {total * duration:.0f} s of timed runs" if duration else ""
            configs = "1 config" if total == 1 else f"{total} configs"
            verb = "evaluating" if evaluating else "benchmarking"
            self._line(f"{verb} {configs}{estimate}")

    def start_config(self, config: BenchmarkConfig) -> None:
        with self._lock:
            self.count += 1
            self.label = config_text(config)
            self.config_started = time.monotonic()
        if not self.enabled:
            return
        if self.tty:
            if self._thread is None:
                self._thread = threading.Thread(target=self._redraw, daemon=True)
                self._thread.start()
            self._draw()
        else:
            self._line(f"[{self.count}/{self.total}] {self.label}; {self._left():.0f} s left")

    def end_config(self) -> None:
        """Clear the bar between configs, so warnings about the last one print on clean lines."""
        with self._lock:
            self.label = ""
            if self.tty:
                self.out.write("\r\033[K")
                self.out.flush()

    def done(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            self.end_config()

    def _left(self) -> float:
        """Seconds left: the mean time per finished config (loading included) times the
        configs not finished; before any finished, the timed durations alone."""
        now = time.monotonic()
        finished = self.count - 1
        per_config = (self.config_started - self.started) / finished if finished else self.duration
        in_this = now - self.config_started
        return max(0.0, per_config * (self.total - finished) - in_this)

    def _draw(self) -> None:
        with self._lock:
            if not self.label:  # between configs
                return
            done = float(self.count - 1)
            if self.duration:
                done += min(1.0, (time.monotonic() - self.config_started) / self.duration)
            filled = int(BAR_WIDTH * done / self.total) if self.total else BAR_WIDTH
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            text = f"[{bar}] {self.count}/{self.total} {self.label}; ~{self._left():.0f} s left"
            # under the lock: a bar drawn after end_config() cleared the line would stay
            self.out.write(f"\r\033[K{text}")
            self.out.flush()

    def _redraw(self) -> None:
        while not self._stop.wait(REDRAW_S):
            self._draw()

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
