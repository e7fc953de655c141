"""The "interpreters" runner: fresh interpreters that never import the user's script.

Copies start as neuronperf's own entry point (``benchmarking/fresh.py``) and get their job
over a socket, serialised with cloudpickle: a NeuronPerf 1.x script runs unguarded, and
what a script or a function defines (model and metric classes, lambdas) travels by
value. Copies take over the parent's sys.path and environment, leave Ctrl-C to the
parent and die with it. Nothing here asserts a time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from processes import alive, run_script, wait_for

import neuronperf as npf
from neuronperf_core.benchmarking import fresh
from neuronperf_core.benchmarking.config import BenchmarkConfig
from neuronperf_core.benchmarking.runners import JobNotPicklableError
from neuronperf_core.benchmarking.worker import WARMUP_INFERS, Job

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "pthread_sigmask"), reason="fresh interpreters need POSIX"
)

X = np.ones(4)
QUICK: dict[str, Any] = {
    "duration": 60,
    "max_infers": 40,
    "n_models": 2,
    "workers_per_model": 1,
    "stats_interval": 0,
    "results_dir": None,
    "runner": "interpreters",
}


def pids_in(log: Path, n: int) -> list[int]:
    wait_for(lambda: log.exists() and len(log.read_text().split()) >= n, f"{n} pids in {log}")
    return [int(pid) for pid in log.read_text().split()]


# -- a NeuronPerf 1.x script: top-level calls, no main guard ---------------------------

UNGUARDED = """
    import os
    import numpy as np
    import neuronperf as npf

    with open("imported.log", "a") as log:  # once per import of this script
        log.write(f"{os.getpid()}\\n")

    class Model:
        def __call__(self, x):
            return x

    class LocalMetric(npf.BaseEvalMetric):
        def __init__(self):
            super().__init__()
            self.n = 0

        def process_record(self, output=None, target=None):
            self.n += 1

        @staticmethod
        def aggregate(metrics):
            # the copies' instances come back as instances of this very class
            assert all(type(m) is LocalMetric for m in metrics), [type(m) for m in metrics]
            return sum(m.n for m in metrics)

    reports = npf.cpu.benchmark(Model, np.ones(4), batch_sizes=[1], duration=0, n_models=2,
                                runner="interpreters", results_dir=None, verbosity=0)
    npf.print_reports(reports)
    print("benchmark", [r["status"] for r in reports])
    rows = [(np.float32(i), i) for i in range(101)]
    evaluated = npf.cpu.evaluate(Model, rows, runner="interpreters", n_models=2,
                                 metrics=[LocalMetric], results_dir=None, verbosity=0)
    print("evaluate", evaluated[0]["status"], evaluated[0]["LocalMetric"])
"""


def test_an_unguarded_script_runs_once_and_prints_its_reports_once(tmp_path: Path) -> None:
    result = run_script(tmp_path, UNGUARDED)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.count("benchmark ['finished', 'finished']") == 1, result.stdout
    assert lines.count("evaluate finished 101") == 1, result.stdout
    assert sum(line.startswith("---") for line in lines) == 1, result.stdout  # one table
    imported = (tmp_path / "imported.log").read_text().split()
    assert len(imported) == 1  # no copy imported the script


# -- by value: what a function defines -------------------------------------------------


@pytest.mark.parametrize("runner", ["interpreters", "processes"])
def test_a_metric_class_defined_in_a_function_comes_back_from_copies(runner: str) -> None:
    class CountsRecords(npf.BaseEvalMetric):
        def __init__(self) -> None:
            super().__init__()
            self.n = 0
            self.pids: set[int] = set()

        def process_record(self, output: Any = None, target: Any = None) -> None:
            self.n += 1
            self.pids.add(os.getpid())

        @staticmethod
        def aggregate(metrics: Any) -> tuple[int, int]:
            assert all(type(m) is CountsRecords for m in metrics)
            pids = set().union(*(m.pids for m in metrics))
            return sum(m.n for m in metrics), len(pids - {os.getpid()})

    rows = [(i, i) for i in range(57)]
    (report,) = npf.cpu.evaluate(
        npf.DummyModel,
        rows,
        metrics=[CountsRecords],
        **{**QUICK, "duration": 0, "max_infers": None, "runner": runner},
    )
    assert report["status"] == "finished", report["error"]
    assert list(report["CountsRecords"]) == [57, 2]  # every record, scored in the two copies


def test_lambdas_and_closures_travel_by_value() -> None:
    offset = 2.0
    (report,) = npf.cpu.benchmark(
        lambda x: x * 2,  # the model itself
        X,
        preprocess_fn=lambda x: x + offset,  # a closure over a local
        **QUICK,
    )
    assert report["status"] == "finished", report["error"]
    assert report["total_infs"] == 40


# -- what a copy inherits ----------------------------------------------------------------

HELPER = """
    import os

    class EnvLoader:
        def __init__(self, log):
            self.log = log

        def __call__(self, filename, device_id=0):
            with open(self.log, "a") as f:
                f.write(f"{os.getpid()} {os.environ.get('NPF_FRESH_TEST')}\\n")
            return lambda x: x
"""


def test_copies_see_the_parents_sys_path_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "npf_fresh_helper.py").write_text(textwrap.dedent(HELPER))
    monkeypatch.syspath_prepend(str(site))  # only this process knows the folder
    monkeypatch.setenv("NPF_FRESH_TEST", "from the parent")
    import npf_fresh_helper  # an importable module: sent by reference, imported in the copy

    log = tmp_path / "copies.log"
    (report,) = npf.benchmark(npf_fresh_helper.EnvLoader(str(log)), "m.model", X, **QUICK)
    assert report["status"] == "finished", report["error"]
    lines = [line.split(" ", 1) for line in log.read_text().splitlines()]
    assert len(lines) == 2
    assert {pid for pid, _ in lines} - {str(os.getpid())} == {pid for pid, _ in lines}
    assert [env for _, env in lines] == ["from the parent", "from the parent"]


# -- refused before anything starts ----------------------------------------------------


def test_a_job_that_cannot_be_serialised_fails_before_any_process_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_process(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a copy was started")

    monkeypatch.setattr(fresh, "FreshProcess", no_process)
    lock = threading.Lock()
    with pytest.raises(JobNotPicklableError, match=r"cannot pickle '_thread\.lock'") as caught:
        npf.cpu.benchmark(lambda x: x, X, preprocess_fn=lambda x: lock and x, **QUICK)
    assert "cloudpickle" in str(caught.value) and "multiprocess=False" in str(caught.value)
    assert isinstance(caught.value.__cause__, TypeError)


# -- failures and signals ----------------------------------------------------------------


class KillsItself:
    """A model the OS kills (SIGKILL, as the OOM killer does) after warm-up and a few calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: Any) -> Any:
        self.calls += 1
        if self.calls > WARMUP_INFERS + 5:
            os.kill(os.getpid(), signal.SIGKILL)
        return x


def test_a_copy_killed_by_a_signal_is_reported() -> None:
    (report,) = npf.cpu.benchmark(KillsItself, X, **{**QUICK, "max_infers": 1000})
    assert report["status"] == "killed"
    assert "SIGKILL" in report["error"] and "fewer n_models" in report["error"]


def test_a_job_that_cannot_be_unpickled_in_the_copy_is_reported(tmp_path: Path) -> None:
    source = """
        import sys
        sys.path.insert(0, "site")
        import numpy as np
        import neuronperf as npf
        import vanishing

        del sys.path[0]  # the copies cannot import it
        (report,) = npf.cpu.benchmark(vanishing.Model, np.ones(4), duration=0, n_models=1,
                                      workers_per_model=1, runner="interpreters",
                                      results_dir=None, verbosity=0)
        print(report["status"], report["error"])
    """
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "vanishing.py").write_text("class Model:\n    pass\n")
    result = run_script(tmp_path, source)
    assert result.returncode == 0, result.stderr
    assert "error model copy 0 failed: its job could not be unpickled" in result.stdout
    assert "No module named 'vanishing'" in result.stdout


PARENT = """
    import os
    import time
    import numpy as np
    import neuronperf as npf

    PHASE = {phase!r}

    def load(filename, device_id=0):
        if PHASE == "loading":
            with open("copies.log", "a") as log:
                log.write(f"{{os.getpid()}}\\n")
            time.sleep(120)
        return Model()

    class Model:
        calls = 0

        def __call__(self, x):
            self.calls += 1
            if self.calls == {warmup} + 1:  # the timed run is on
                with open("copies.log", "a") as log:
                    log.write(f"{{os.getpid()}}\\n")
            time.sleep(0.001)
            return x

    reports = npf.benchmark(load, "m.model", np.ones(4), n_models=2, workers_per_model=1,
                            duration=120, runner="interpreters", results_dir=None,
                            stats_interval=0)
    print(reports[0]["status"], reports[0]["total_infs"] > 0, flush=True)
"""


def start_parent(folder: Path, phase: str) -> subprocess.Popen[str]:
    script = folder / "parent.py"
    script.write_text(textwrap.dedent(PARENT.format(phase=phase, warmup=WARMUP_INFERS)))
    return subprocess.Popen(
        [sys.executable, str(script)],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a script run from a terminal
    )


@pytest.mark.parametrize("phase", ["loading", "running"])
def test_the_parent_killed_leaves_no_copy_alive(tmp_path: Path, phase: str) -> None:
    parent = start_parent(tmp_path, phase)
    try:
        copies = pids_in(tmp_path / "copies.log", 2)
        assert all(alive(pid) for pid in copies)
        parent.kill()  # SIGKILL: no handler, no cleanup in the parent
        parent.communicate(timeout=30)
        wait_for(lambda: not any(alive(pid) for pid in copies), "the copies to die", 15)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.communicate()


def test_ctrl_c_in_a_terminal_stops_the_copies_which_report_what_they_have(
    tmp_path: Path,
) -> None:
    parent = start_parent(tmp_path, "running")
    try:
        copies = pids_in(tmp_path / "copies.log", 2)
        os.killpg(parent.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        out, err = parent.communicate(timeout=60)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.communicate()
    assert parent.returncode == 0, err
    assert out.split() == ["interrupted", "True"]  # the copies ignored it and reported
    assert not any(alive(pid) for pid in copies)


def quick_job(load_fn: Callable[..., Any]) -> Job:
    config = BenchmarkConfig(
        model_name="m",
        model_filename="m.model",
        input_idx=0,
        batch_size=1,
        pipeline_size=1,
        cast_mode=None,
        n_models=1,
        workers_per_model=1,
        device_type="cpu",
        runner="interpreters",
        duration=0,
        max_infers=None,
    )
    return Job(config=config, load_fn=load_fn, model_input=X)


def load_slowly(marker: str) -> Callable[..., Any]:
    def load(filename: str, device_id: int = 0) -> None:
        Path(marker).touch()
        time.sleep(120)

    return load


@pytest.mark.parametrize("when", ["before its job", "while loading"])
def test_a_copy_exits_when_its_pipe_closes(when: str, tmp_path: Path) -> None:
    """Without the kernel's help (PR_SET_PDEATHSIG, Linux only): the parent's end of the
    pipe closing is what every platform sees of a parent's death."""
    copy = fresh.FreshProcess(0)
    try:
        if when == "while loading":
            marker = tmp_path / "loading"
            copy.send_job(fresh.dumps(quick_job(load_slowly(str(marker)))))
            wait_for(marker.exists, "the copy to load")
        copy.conn.close()
        copy.join(30)
        assert copy.exitcode == fresh.EXIT_ORPHANED
    finally:
        if copy.is_alive():
            copy.terminate()
        copy.join()
        copy.close()
