"""Raw results: what a runner returns for one benchmark config.

Plain, serialisable data (dicts, lists, numbers, strings and int64/float64
numpy arrays), so a runner on another process or machine fits the same
interface. Runners never format reports; ``neuronperf_core.reporting`` turns
raw results into report dicts.

A raw result (``RawResult``)::

    {
      "config": {...},            # BenchmarkConfig.to_dict(): every field of the config
      "status": "finished" | "error" | "killed" | "interrupted" | "timeout",
      "error": None | str,        # what went wrong, with a hint what to do
      "window_ns": [t0, t1] | None,  # first start to last end, all workers (perf_counter_ns)
      "copies": [                 # one per model copy, in copy_id order
        {"copy_id": 0, "env_setup_ns": int, "load_ns": int, "setup_ns": int,
         "warmup_ns": int, "warmup_infers": int},
      ],
      "workers": [                # one per worker thread of every copy
        {"copy_id": 0, "worker_id": 0,
         "count": n,              # inferences this worker completed
         "stride": s,             # samples kept: inferences 0, s, 2s, ... (k = ceil(n / s))
         "last_end_ns": int,      # end of its last inference (kept or not)
         "start_ns": int64[k], "end_ns": int64[k],   # end-to-end bounds of each kept inference
         "phases_ns": {"input": int64[n], "preprocess": int64[n],
                       "infer": int64[n], "postprocess": int64[n]}},  # only phases that ran
         # open loop only: start_ns is each request's due time, and
         "picked_ns": int64[k], "sent_ns": int64[k],  # taken off the queue; sent
         "late": int,             # due in the copy's window, never started (its worker 0)
      ],
      "overhead_ns": float,       # the harness's own cost per inference (calibrated)
      "stats": {"interval_s": float, "cpu_percent": float64[k], "mem_percent": float64[k]},
      "metrics": {name: value},   # evaluation results, empty when not evaluating
    }

Durations in "copies" are nanoseconds (0 where a hook was not given). When
there are no pre/postprocess functions "phases_ns" holds only "infer", and
then infer == end - start. A worker keeps at most ``max_samples`` samples:
past that it keeps every 2nd (4th, ...) inference, so memory stays bounded
and the samples stay spread evenly over the run; each kept sample then
stands for ``stride`` inferences.
"""

from __future__ import annotations

from typing import Any, Literal

Status = Literal["finished", "error", "killed", "interrupted", "timeout"]
RawResult = dict[str, Any]

PHASES = ("input", "preprocess", "infer", "postprocess")
