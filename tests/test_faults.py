"""Nothing measured is lost (issue 15 points 4-7): runs started in the same second, writes
that fail, models that hang, Ctrl-C and SIGTERM at any moment.

Faults that need a process of their own (a hang, a signal, concurrent runs, a full disk)
run a real script in a subprocess; their bounds are generous (a run that should take 2 s
may take 60) and only catch a run that never ends.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from processes import alive, run_script, wait_for

import neuronperf as npf
from neuronperf_core import files
from neuronperf_core.benchmarking import sweep

X = np.ones((1, 4), dtype=np.float32)
# three configs (1, 2 and 3 workers), each ended by max_infers at once
THREE: dict[str, Any] = {
    "batch_sizes": [1],
    "n_models": 1,
    "workers_per_model": [1, 2, 3],
    "duration": 60,
    "max_infers": 20,
    "runner": "threads",
    "stats_interval": 0,
    "model_name": "m",
}
DOUBLE = Path(__file__).with_name("cli_framework_double.py")


class Echo:
    def __call__(self, x: Any) -> Any:
        return x


def results_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("m.results-*.json"))


def pids_in(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


# -- 4: runs started in the same second -------------------------------------------------


def test_names_taken_in_the_same_second_are_two_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "results_stem", lambda name: f"{name}.results-20260101-000000")
    first = files.results_path(tmp_path, None, "m")
    second = files.results_path(tmp_path, None, "m")
    assert first is not None and second is not None
    assert (first.name, second.name) == (
        "m.results-20260101-000000.json",
        "m.results-20260101-000000-2.json",
    )
    assert first.read_bytes() == second.read_bytes() == files.PLACEHOLDER  # taken, both
    files.release(first)
    files.release(second)
    assert list(tmp_path.iterdir()) == []  # nothing measured: nothing left behind


CONCURRENT = """
    import os, sys, time
    import numpy as np
    import neuronperf as npf
    from neuronperf_core import files

    # the same second for certain: the clock's second is fixed
    files.results_stem = lambda name: f"{name}.results-20260101-000000"

    class Echo:
        def __call__(self, x):
            return x

    open(f"ready-{os.getpid()}", "w").close()
    while not os.path.exists("go"):  # every run starts together
        time.sleep(0.005)
    (report,) = npf.cpu.benchmark(Echo, np.ones((1, 4), dtype=np.float32), batch_sizes=[1],
                                  n_models=1, workers_per_model=1, duration=1, runner="threads",
                                  results_dir="out", model_name="m", verbosity=0)
    print(report["status"])
"""


def test_runs_started_in_the_same_second_write_a_results_file_each(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "script.py").write_text(textwrap.dedent(CONCURRENT))
    runs = [
        subprocess.Popen(
            [sys.executable, "script.py"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:  # go once every interpreter has started and imported neuronperf
        wait_for(lambda: len(list(tmp_path.glob("ready-*"))) == 3, "the runs to start")
    finally:
        (tmp_path / "go").touch()
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0 and out.split() == ["finished"], err
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [
        "m.results-20260101-000000-2.json",
        "m.results-20260101-000000-3.json",
        "m.results-20260101-000000.json",
    ]
    for path in (tmp_path / "out").iterdir():
        assert [r["status"] for r in json.loads(path.read_text())] == ["finished"]


# -- 5: a write that fails after the first config -----------------------------------------


def test_a_full_disk_after_the_first_config_loses_no_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    written = sweep.write_json
    calls: list[int] = []
    in_file: list[int] = []

    def disk_full_at_the_second_write(reports: Any, filename: Any) -> str:  # a TEST DOUBLE
        calls.append(len(reports))
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, f"cannot write {filename}: No space left on device")
        return written(reports, filename)

    def before_each_config(copy_id: int, config: dict[str, Any]) -> None:
        (path,) = results_in(tmp_path)
        in_file.append(len(json.loads(path.read_text())))

    monkeypatch.setattr(sweep, "write_json", disk_full_at_the_second_write)
    with caplog.at_level(logging.WARNING, "neuronperf"):
        reports = npf.cpu.benchmark(
            Echo, X, results_dir=tmp_path, env_setup_fn=before_each_config, **THREE
        )
    assert [r["status"] for r in reports] == ["finished"] * 3  # measuring went on
    assert in_file == [0, 1, 1]  # the failed write left the file as it was
    (path,) = results_in(tmp_path)
    assert len(json.loads(path.read_text())) == 3  # the next write put everything back
    assert "No space left on device" in caplog.text and "tries again" in caplog.text


def test_a_results_file_replaced_by_a_folder_loses_no_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def replace_by_a_folder(copy_id: int, config: dict[str, Any]) -> None:
        if config["workers_per_model"] == 2:
            (path,) = results_in(tmp_path)
            path.unlink()
            path.mkdir()

    with caplog.at_level(logging.WARNING, "neuronperf"):
        reports = npf.cpu.benchmark(
            Echo, X, results_dir=tmp_path, env_setup_fn=replace_by_a_folder, **THREE
        )
    assert [r["status"] for r in reports] == ["finished"] * 3
    assert "it is a folder" in caplog.text
    assert "lacks the last configs" in caplog.text and "npf.write_json" in caplog.text


def test_a_results_file_that_is_a_folder_is_refused_before_any_model_loads(
    tmp_path: Path,
) -> None:
    loaded: list[int] = []

    def load(filename: str, device_id: int = 0) -> Echo:
        loaded.append(device_id)
        return Echo()

    with pytest.raises(files.OutputPathError, match="is a folder"):
        npf.benchmark(load, "m.model", X, results_file=tmp_path, **THREE)
    assert loaded == []


DISKS = """
    import json, os, sys
    import numpy as np
    import neuronperf as npf
    from neuronperf_core.options import OptionError

    disk = sys.argv[1]

    class Echo:
        def __call__(self, x):
            return x

    def load(filename, device_id=0):
        with open("loaded.log", "a") as log:  # outside the small disks
            log.write("loaded\\n")
        return Echo()

    def results():
        (name,) = [n for n in os.listdir(disk) if n.endswith(".json")]
        return os.path.join(disk, name)

    in_file = []

    def fill_then_free(copy_id, config):
        in_file.append(len(json.load(open(results()))))
        filler = os.path.join(disk, "filler")
        if config["workers_per_model"] == 2:  # the disk fills up after the first config
            with open(filler, "wb", buffering=0) as f:
                for size in (65536, 4096, 1):
                    try:
                        while True:
                            f.write(b"x" * size)
                    except OSError:
                        pass
        elif config["workers_per_model"] == 3:  # and is freed before the third ends
            os.unlink(filler)

    common = dict(batch_sizes=[1], n_models=1, duration=60, max_infers=20, runner="threads",
                  stats_interval=0, model_name="m")
    try:
        npf.benchmark(load, "m.model", np.ones((1, 4)), results_dir=os.path.join(disk, "ro"),
                      workers_per_model=1, **common)
        refused = None
    except OptionError as exc:
        refused = str(exc)
    loaded_before = os.path.exists("loaded.log")
    reports = npf.benchmark(load, "m.model", np.ones((1, 4)), results_dir=disk,
                            workers_per_model=[1, 2, 3], env_setup_fn=fill_then_free, **common)
    print(json.dumps({
        "refused": refused,
        "loaded_before_refusal": loaded_before,
        "statuses": [r["status"] for r in reports],
        "in_file": in_file,
        "at_the_end": len(json.load(open(results()))),
    }))
"""


def test_a_full_disk_and_a_read_only_folder_on_real_small_disks(tmp_path: Path) -> None:
    """A tmpfs of 1 MiB that fills up mid-run, and a read-only one, mounted in a user and
    mount namespace of its own (unshare): no privileges needed where the kernel allows
    unprivileged user namespaces."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare(1) here: cannot mount a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounts = (
        'mount -t tmpfs -o size=1m tmpfs "$1" && mkdir "$1/ro" && '
        'mount -t tmpfs -o ro,size=64k tmpfs "$1/ro"'
    )
    probe = subprocess.run(
        [unshare, "--user", "--map-root-user", "--mount", "sh", "-c", mounts, "sh", str(disk)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {probe.stderr.strip()}")
    (tmp_path / "script.py").write_text(textwrap.dedent(DISKS))
    result = subprocess.run(
        [unshare, "--user", "--map-root-user", "--mount", "sh", "-c",
         f'{mounts} && exec "$2" script.py "$1"', "sh", str(disk), sys.executable],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert "cannot create the results file" in outcome["refused"]
    assert "Read-only file system" in outcome["refused"]
    assert not outcome["loaded_before_refusal"]  # refused before any model loaded
    assert outcome["statuses"] == ["finished"] * 3
    assert outcome["in_file"] == [0, 1, 1]  # the full disk's write left the first config
    assert outcome["at_the_end"] == 3  # and once freed, the next write had them all
    assert "No space left on device" in result.stderr


# -- 6: a model that hangs ------------------------------------------------------------------


HANGS = """
    import os, sys, threading, time
    import numpy as np
    import neuronperf as npf

    runner, where = sys.argv[1:3]

    def first(name):
        '''Whether this is the first copy to get here, in any process.'''
        try:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            return False

    def hang():
        with open("hung.log", "a") as log:
            log.write(f"{os.getpid()}\\n")
        threading.Event().wait()  # for ever

    class Model:
        def __init__(self):
            self.calls = 0
            if where == "load" and first("load.marker"):
                hang()

        def __call__(self, x):
            self.calls += 1
            if where == "call" and self.calls > 20 and first("call.marker"):
                hang()
            return x

    start = time.monotonic()
    reports = npf.cpu.benchmark(Model, np.ones((1, 4)), batch_sizes=[1], n_models=1,
                                workers_per_model=[1, 2], duration=0.5, config_timeout=1,
                                runner=runner, results_dir=None, stats_interval=0)
    print(*[r["status"] for r in reports], flush=True)
    print(reports[0]["error"], flush=True)
"""


@pytest.mark.parametrize("where", ["load", "call"])
@pytest.mark.parametrize("runner", ["threads", "processes", "interpreters"])
def test_a_model_that_hangs_times_out_and_the_sweep_moves_on(
    tmp_path: Path, runner: str, where: str
) -> None:
    result = run_script(tmp_path, HANGS, runner, where)  # exits: no thread keeps it alive
    assert result.returncode == 0, result.stderr
    statuses, error = result.stdout.splitlines()[:2]
    assert statuses.split() == ["timeout", "finished"]
    assert "config_timeout" in error
    (hung,) = pids_in(tmp_path / "hung.log")
    if runner != "threads":
        assert not alive(hung)  # the copy was killed, not left behind


# -- 7: Ctrl-C and SIGTERM --------------------------------------------------------------------


SIGNALLED = """
    import json, os, sys, threading, time
    import numpy as np
    import neuronperf as npf
    from neuronperf_core.benchmarking.worker import WARMUP_INFERS

    runner, phase = sys.argv[1:3]

    def log_pid():
        with open("copies.log", "a") as log:
            log.write(f"{os.getpid()}\\n")

    class Model:
        def __init__(self):
            self.calls = 0
            self.slow = False

        def __call__(self, x):
            self.calls += 1
            if self.slow and self.calls == WARMUP_INFERS + 1:  # the second config's window
                log_pid()
            if self.slow:
                time.sleep(0.01)
            return x

    def load(filename, device_id=0):
        if phase == "loading":
            log_pid()
            threading.Event().wait()
        return Model()

    def setup(copy_id, config, model):
        model.slow = config["workers_per_model"] == 2  # the first config ends at once

    reports = npf.benchmark(load, "m.model", np.ones((1, 4)), batch_sizes=[1], n_models=2,
                            workers_per_model=[1, 2], duration=60, max_infers=100000,
                            setup_fn=setup, runner=runner, results_dir="out", model_name="m",
                            stats_interval=0)
    print(*[r["status"] for r in reports], flush=True)
"""


def start_script(folder: Path, source: str, *args: str) -> subprocess.Popen[str]:
    (folder / "script.py").write_text(textwrap.dedent(source))
    (folder / "out").mkdir()
    return subprocess.Popen(
        [sys.executable, "script.py", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal gives a command
    )


def signal_once_copies_run(
    proc: subprocess.Popen[str], log: Path, n_copies: int, signum: int, group: bool
) -> tuple[list[int], str, str]:
    """Send ``signum`` once ``n_copies`` copies have written their pids to ``log``."""
    try:
        wait_for(lambda: len(pids_in(log)) >= n_copies or proc.poll() is not None, "the copies")
        copies = pids_in(log)
        if group:  # what Ctrl-C in a terminal does
            os.killpg(proc.pid, signum)
        else:  # kill PID
            proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return copies, out, err


@pytest.mark.parametrize("runner", ["threads", "processes", "interpreters"])
def test_sigterm_keeps_what_finished_and_leaves_no_copy_running(
    tmp_path: Path, runner: str
) -> None:
    proc = start_script(tmp_path, SIGNALLED, runner, "running")
    copies, _, err = signal_once_copies_run(
        proc, tmp_path / "copies.log", 2, signal.SIGTERM, group=False
    )
    assert proc.returncode == -signal.SIGTERM, err  # it still ends by SIGTERM ...
    (results,) = (tmp_path / "out").glob("m.results-*.json")  # ... once the results are saved
    reports = json.loads(results.read_text())
    assert [r["status"] for r in reports] == ["finished", "interrupted"]
    assert reports[1]["total_infs"] > 0  # what the copies measured before it
    wait_for(lambda: not any(alive(pid) for pid in copies), "the copies to end", 15)
    assert "BrokenPipe" not in err


@pytest.mark.parametrize("runner", ["threads", "processes", "interpreters"])
def test_ctrl_c_while_copies_load_returns_at_once(tmp_path: Path, runner: str) -> None:
    proc = start_script(tmp_path, SIGNALLED, runner, "loading")
    n_copies = 1 if runner == "threads" else 2  # threads load one copy after the other
    copies, out, err = signal_once_copies_run(
        proc, tmp_path / "copies.log", n_copies, signal.SIGINT, group=True
    )
    assert proc.returncode == 0, err
    assert out.split() == ["interrupted"]  # returned, though the loading never ends
    if runner != "threads":
        wait_for(lambda: not any(alive(pid) for pid in copies), "the copies to end", 15)
    (results,) = (tmp_path / "out").glob("m.results-*.json")
    assert [r["status"] for r in json.loads(results.read_text())] == ["interrupted"]


class Rows:
    """An evaluation dataset whose reader fails of the Ctrl-C it sends (as a torch
    DataLoader's worker processes die of the Ctrl-C that reaches their process group)."""

    def __init__(self) -> None:
        self.sent = False

    def __iter__(self) -> Any:
        for i in range(100000):
            if i == 50 and not self.sent:
                self.sent = True
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)
                raise RuntimeError("the loader's worker process died")
            yield (np.float32(i), i % 2)


def test_ctrl_c_in_an_evaluation_starts_no_other_config(tmp_path: Path) -> None:
    reports = npf.cpu.evaluate(
        Echo, Rows(), "accuracy", workers_per_model=[1, 2], runner="threads", results_dir=None
    )
    assert [r["status"] for r in reports] == ["interrupted"]
    assert "loader's worker process died" in reports[0]["error"]


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_the_command_line_exits_130_on_ctrl_c_and_143_on_sigterm_keeping_what_finished(
    fake_site: Any, tmp_path: Path, signum: int, status: int
) -> None:
    fake_site.add_dist(
        "npf-scale-double", "1.0", {"scale": "cli_framework_double"},
        {"cli_framework_double": DOUBLE.read_text()},
    )  # fmt: skip
    paths = [str(fake_site.root), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    env.pop("NEURONPERF_DISABLE_PLUGINS", None)
    command = [sys.executable, "-m", "neuronperf"]
    compiled = subprocess.run(
        [*command, "compile", "cli_framework_double:make_model", "--input-shape", "1x4",
         "--batch-sizes", "1", "--out", "models"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            [*command, "benchmark", "models/make_model.json", "--input-shape", "1x4",
             "--duration", "60", "--n-models", "1", "--workers-per-model", "1,2",
             "--runner", "processes", "--output-dir", "out"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_for(lambda: "[1/2]" in log.read_text() or proc.poll() is not None, "a config")
            time.sleep(1.0)  # loaded and warmed up: inside the first config's timed window
            if signum == signal.SIGINT:  # Ctrl-C in a terminal: the whole process group
                os.killpg(proc.pid, signum)
            else:  # kill PID
                proc.send_signal(signum)
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == status, log.read_text()
    assert "interrupted; what finished is saved" in log.read_text()
    (results,) = (tmp_path / "out").glob("*.json")
    (report,) = json.loads(results.read_text())
    assert report["status"] == "interrupted"
