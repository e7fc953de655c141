"""The `neuronperf` command line, each command run in a subprocess as a user runs it.

Framework commands run against ``cli_framework_double`` (a test double of a framework
plugin: backend ``scale``, found through a fake installed distribution) and the real
engine; the torch plugin's tests run the same commands with torch.
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest

DOUBLE = Path(__file__).with_name("cli_framework_double.py")
QUICK = ["--duration", "0.2", "--n-models", "1", "--workers-per-model", "1,2"]


class Cli:
    """Runs `python -m neuronperf ...` in a folder, with the framework double installed."""

    def __init__(self, cwd: Path, site: Path | None) -> None:
        self.cwd = cwd
        self.env = {**os.environ, "PYTHONPATH": str(site) if site else ""}
        self.env.pop("NEURONPERF_DISABLE_PLUGINS", None)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "neuronperf", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def user_error(self, *args: str) -> str:
        """The one line a user error prints; exit status 2, no traceback."""
        result = self.run(*args)
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result.stderr


@pytest.fixture
def cli(fake_site, tmp_path: Path) -> Cli:
    fake_site.add_dist(
        "npf-scale-double", "1.0", {"scale": "cli_framework_double"},
        {"cli_framework_double": DOUBLE.read_text()},
    )  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    return Cli(work, fake_site.root)


@pytest.fixture
def index(cli: Cli) -> Path:
    cli.ok("compile", "cli_framework_double:make_model", "--input-shape", "1x4",
           "--batch-sizes", "1,4", "--out", "models")  # fmt: skip
    return cli.cwd / "models" / "make_model.json"


def dataset(path: Path, n: int = 40, classes: int = 4) -> Path:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, classes)).astype("float32")
    np.savez(path, x=x, y=x.argmax(axis=1))  # ScaleModel(2) keeps the argmax: accuracy 1
    return path


# -- help -------------------------------------------------------------------------------------

COMMANDS = ["compile", "benchmark", "evaluate", "report", "plugins", "metrics"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(cli, command):
    out = cli.ok(command, "--help").stdout
    assert "example:\n  neuronperf " + command in out
    assert "--json" in out and "-v, --verbose" in out and "-q, --quiet" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_and_argument_has_a_line_of_help(cli, command):
    from neuronperf_core.cli.app import cli as group

    params = group.commands[command].params
    missing = [p.name for p in params if not getattr(p, "help", None) and not p.hidden]
    assert missing == []
    out = cli.ok(command, "--help").stdout
    for param in params:
        if isinstance(param, click.Argument):  # listed with its help, before the options
            assert f"Positional arguments:\n  {param.make_metavar(click.Context(group))}" in out
    output_dir = [line for line in out.splitlines() if "--output-dir" in line]
    assert all("None" not in line for line in output_dir)  # Python's word, not the CLI's


def test_top_level_help_lists_every_command_and_the_plugins_commands(cli):
    out = cli.ok("--help").stdout
    for command in [*COMMANDS, "scale-hello"]:  # scale-hello: the double's commands hook
        assert f"\n  {command} " in out
    assert "_NEURONPERF_COMPLETE=bash_source neuronperf" in out
    assert cli.ok("-h").stdout == out


def test_a_plugin_adds_a_command(cli):
    assert cli.ok("scale-hello", "--name", "you").stdout == "hello you, from the scale backend\n"
    plugins = {p["name"]: p for p in cli.json("plugins")}
    assert plugins["scale"]["registered"] == {"backends": ["scale"], "commands": ["scale-hello"]}


def test_help_imports_neither_numpy_nor_torch_nor_the_engine(cli):
    for args in (["--help"], ["metrics"]):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "neuronperf_core.cli", *args],
            cwd=cli.cwd, env=cli.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        imported = [line.rpartition("|")[2].strip() for line in result.stderr.splitlines()]
        heavy = [m for m in imported if m.split(".")[0] in ("numpy", "torch")]
        heavy += [m for m in imported if m.startswith("neuronperf_core.benchmarking")]
        assert heavy == [], args


def test_usage_errors_from_click_exit_2(cli):
    result = cli.run("benchmark")  # INDEX_OR_MODEL missing
    assert result.returncode == 2 and "Missing argument 'INDEX_OR_MODEL'" in result.stderr
    result = cli.run("benchmark", "x.json", "--no-such-flag")
    assert result.returncode == 2 and "No such option" in result.stderr
    assert "--no-such-flag" in result.stderr
    result = cli.run("bench")
    assert result.returncode == 2 and "Did you mean 'benchmark'?" in result.stderr
    result = cli.run("report", "a.json", "-v", "-q")
    assert result.returncode == 2 and "contradict" in result.stderr


# -- compile ---------------------------------------------------------------------------------


def test_compile_writes_an_index_of_one_artifact_per_batch_size(cli, index):
    configs = json.loads(index.read_text())["model_configs"]
    assert [(c["batch_size"], c["status"]) for c in configs] == [(1, "finished"), (4, "finished")]
    assert all((index.parent / c["filename"]).is_file() for c in configs)


def test_compile_prints_the_index_as_json(cli):
    data = cli.json("compile", "cli_framework_double:make_model", "--input-shape", "1x4",
                    "--out", "m", "--name", "scaled")  # fmt: skip
    assert data["index"] == str(cli.cwd / "m" / "scaled.json")
    assert data["model_index"]["model_name"] == "scaled"


def test_compile_from_a_saved_model_file(cli):
    (cli.cwd / "two.scalemodel").write_text('{"scale": 3}')
    out = cli.ok("compile", "two.scalemodel", "--input-shape", "1x4", "--out", "m").stdout
    assert "model index: m/two.json" in out
    assert "finished" in out


def test_compile_refuses_to_overwrite_an_index(cli, index):
    before = index.read_text()
    err = cli.user_error("compile", "cli_framework_double:make_model", "--input-shape", "1x4",
                         "--out", "models")  # fmt: skip
    assert "exists" in err and "--name" in err
    assert index.read_text() == before


# -- benchmark -------------------------------------------------------------------------------


def test_benchmark_random_inputs_writes_json_and_csv(cli, index):
    data = cli.json("benchmark", str(index), "--input-shape", "1x4", *QUICK, "--output-dir", "out")
    reports = data["reports"]
    assert [(r["batch_size"], r["workers_per_model"]) for r in reports] == [
        (1, 1), (1, 2), (4, 1), (4, 2)
    ]  # fmt: skip
    assert all(r["status"] == "finished" and r["throughput_avg"] > 0 for r in reports)
    assert json.loads(Path(data["files"]["json"]).read_text()) == reports
    with open(data["files"]["csv"]) as f:
        assert len(list(csv.DictReader(f))) == 4
    assert Path(data["files"]["json"]).parent == cli.cwd / "out"


def test_benchmark_an_index_with_the_inputs_it_records(cli, index):
    """No --input-shape: each config gets random inputs of the shapes (and dtypes) the index
    records for it, at its own batch size."""
    data = cli.json("benchmark", str(index), *QUICK, "--output-dir", "out")
    assert [(r["batch_size"], r["status"]) for r in data["reports"]] == [
        (1, "finished"), (1, "finished"), (4, "finished"), (4, "finished")
    ]  # fmt: skip
    configs = json.loads(index.read_text())["model_configs"]
    configs[1]["input_dtypes"] = ["bfloat16"]
    index.write_text(json.dumps({**json.loads(index.read_text()), "model_configs": configs}))
    err = cli.user_error("benchmark", str(index), *QUICK)
    assert "records the input dtype bfloat16" in err and "--inputs FILE" in err


def test_benchmark_inputs_file_and_a_table_with_progress_lines(cli, index):
    np.savez(cli.cwd / "in.npz", x=np.ones((4, 4), dtype="float32"))
    result = cli.ok("benchmark", str(index), "--inputs", "in.npz", "--batch-sizes", "4", *QUICK)
    header = result.stdout.splitlines()[0].split()
    assert header[:3] == ["throughput_avg", "latency_ms_p50", "latency_ms_p99"]
    assert "json: " in result.stdout and "csv: " in result.stdout
    # not a terminal: progress is one plain line per config, on stderr
    assert "[1/2] batch 4, n_models 1, workers 1" in result.stderr
    assert "[2/2] batch 4, n_models 1, workers 2" in result.stderr
    assert "\r" not in result.stderr


def test_benchmark_progress_on_a_terminal_is_a_bar(cli, index):
    import fcntl
    import pty
    import termios

    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 120 columns
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuronperf", "benchmark", str(index), "--input-shape", "1x4",
         "--duration", "1.2", "--n-models", "1", "--workers-per-model", "1", "--batch-sizes", "1"],
        cwd=cli.cwd, env=cli.env, stdout=subprocess.DEVNULL, stderr=child,
    )  # fmt: skip
    os.close(child)
    seen = b""
    while True:
        try:
            chunk = os.read(parent, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=60) == 0
    text = seen.decode()
    assert "[1/1]" in text and "s left" in text  # rich's bar, redrawn in place
    assert "measuring: batch 1, n_models 1, workers 1" in text


def test_tables_fit_100_columns_best_config_first_with_short_file_names(cli, index):
    """The benchmark's table, the comparison and the plugins listing in a terminal 100
    columns wide (COLUMNS, as a shell sets it); into a pipe without COLUMNS, one line per row."""
    results = _results(cli, index, "run")
    reports = json.loads(results.read_text())
    cli.env["COLUMNS"] = "100"
    for args in (["report", str(results)], ["report", str(results), str(results)], ["plugins"]):
        lines = cli.ok(*args).stdout.splitlines()
        assert max(map(len, lines)) <= 100, "\n".join(lines)
    out = cli.ok("report", str(results)).stdout
    best = max(reports, key=lambda r: r["throughput_peak"])
    assert str(Path(best["model_filename"]).parent) not in out  # file names, not folders
    del cli.env["COLUMNS"]
    lines = cli.ok("report", str(results)).stdout.splitlines()
    assert len(lines) == 2 + len(reports)  # header, rule, one line per config
    header = lines[0].split()
    first = dict(zip(header, lines[2].replace(" +/- ", "+/-").split(), strict=True))
    assert first["model_filename"] == Path(best["model_filename"]).name
    assert float(first["throughput_peak"]) == pytest.approx(best["throughput_peak"], abs=0.05)


# -- evaluate --------------------------------------------------------------------------------


def test_evaluate_scores_each_batch_size(cli, index):
    dataset(cli.cwd / "val.npz")
    data = cli.json("evaluate", str(index), "--dataset", "val.npz",
                    "--metrics", "accuracy,precision:average=macro")  # fmt: skip
    reports = data["reports"]
    assert [r["batch_size"] for r in reports] == [1, 4]
    assert all(r["accuracy"] == 1.0 and r["precision:average=macro"] == 1.0 for r in reports)
    assert [r["total_infs"] for r in reports] == [40, 10]  # every record scored once


def test_evaluate_progress_says_evaluating_and_the_records_scored(cli, index):
    dataset(cli.cwd / "val.npz")
    err = cli.ok("evaluate", str(index), "--dataset", "val.npz", "--output-dir", "out").stderr
    (results,) = (cli.cwd / "out").glob("*.json")
    assert f"evaluating 2 configs; results: {results}" in err
    assert "benchmarking" not in err
    assert "[1/2] batch 1, n_models 1, workers 1: evaluating" in err
    assert "[1/2] batch 1, n_models 1, workers 1: 40 records scored" in err
    assert "[2/2] batch 4, n_models 1, workers 1: 40 records scored" in err


def test_evaluate_table_shows_the_metrics(cli, index):
    dataset(cli.cwd / "val.npz")
    out = cli.ok("evaluate", str(index), "--dataset", "val.npz", "--batch-sizes", "4").stdout
    assert out.splitlines()[0].split()[:2] == ["batch_size", "accuracy"]
    assert out.splitlines()[2].split()[:2] == ["4", "1.000"]


# -- report ----------------------------------------------------------------------------------


def _results(cli: Cli, index: Path, out: str) -> Path:
    data = cli.json("benchmark", str(index), "--input-shape", "1x4", *QUICK, "--output-dir", out)
    return Path(data["files"]["json"])


def test_report_shows_sorts_and_plots_one_run(cli, index):
    results = _results(cli, index, "run")
    out = cli.ok("report", str(results), "--sort-by", "workers_per_model", "--cols",
                 "batch_size,workers_per_model").stdout  # fmt: skip
    lines = out.splitlines()
    assert lines[0].split() == ["batch_size", "workers_per_model"]
    # the file holds (1, 1), (1, 2), (4, 1), (4, 2): sorted by workers, batch sizes interleave
    assert [line.split() for line in lines[2:6]] == [["1", "1"], ["4", "1"], ["1", "2"], ["4", "2"]]
    default = cli.ok("report", str(results), "--cols", "throughput_peak").stdout.splitlines()
    peaks = [float(line) for line in default[2:6]]
    assert peaks == sorted(peaks, reverse=True)  # best throughput_peak first unless told
    assert cli.json("report", str(results)) == json.loads(results.read_text())
    pytest.importorskip("matplotlib")
    out = cli.ok("report", str(results), "--plot", "run.png").stdout
    png = (cli.cwd / "run.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24])[0] > 0
    assert f"plot: {cli.cwd / 'run.png'}" in out


def test_report_compares_two_runs_and_gates_on_slowdown(cli, index):
    old = _results(cli, index, "old")
    reports = json.loads(old.read_text())
    for r in reports:  # steady windows (1% apart), so what is significant is known
        r["latency_histogram"] = r["other_cpu_share"] = None  # and no busy machine to note
        r["windows"] = {
            "throughput": [r["throughput_avg"] * (1 + 0.01 * (k % 3 - 1)) for k in range(9)],
            **{
                f"latency_ms_{p}": [
                    r[f"latency_ms_{p}"] * (1 + 0.01 * (k % 3 - 1)) for k in range(9)
                ]
                for p in ("p50", "p90", "p95", "p99")
            },
        }
    old.write_text(json.dumps(reports))
    slower = json.loads(old.read_text())
    for r in slower:  # a run 30% slower in every config and every window
        r["throughput_avg"] *= 0.7
        r["windows"]["throughput"] = [v * 0.7 for v in r["windows"]["throughput"]]
        for p in ("p50", "p90", "p95", "p99"):
            r[f"latency_ms_{p}"] /= 0.7
            r["windows"][f"latency_ms_{p}"] = [v / 0.7 for v in r["windows"][f"latency_ms_{p}"]]
    new = cli.cwd / "new.json"
    new.write_text(json.dumps(slower))
    out = cli.ok("report", str(old), str(new)).stdout
    assert out.count("worse") >= 4
    data = cli.json("report", str(old), str(new))
    assert len(data["rows"]) == 4
    assert data["gate"]["pass"] is False and len(data["gate"]["configs"]) == 4
    assert data["rows"][0]["changes"]["throughput_avg"]["significant"] is True
    gate = cli.run("report", str(old), str(new), "--fail-if-slower", "10")
    assert gate.returncode == 1
    lines = gate.stderr.splitlines()
    assert sum(": throughput -30.0% (95% interval" in line for line in lines) == 4
    assert sum(": p50 +42.9% (95% interval" in line for line in lines) == 4
    assert all(line.endswith("slower by more than 10%, significant") for line in lines)
    only_p99 = cli.run("report", str(old), str(new), "--fail-if-slower", "10", "--gate", "p99")
    assert only_p99.returncode == 1 and only_p99.stderr.count(": p99 +42.9%") == 4
    assert ": p50" not in only_p99.stderr
    assert cli.run("report", str(old), str(new), "--fail-if-slower", "50").returncode == 0
    assert cli.run("report", str(old), str(old), "--fail-if-slower", "1").returncode == 0
    broken = json.loads(old.read_text())
    broken[0].update(status="error", throughput_avg=None, latency_ms_p50=None)
    new.write_text(json.dumps(broken[:3]))  # one config failed, one is missing
    gate = cli.run("report", str(old), str(new), "--fail-if-slower", "50")
    assert gate.returncode == 1
    assert "slower: b1 n1 w1: did not finish: old: finished, new: error" in gate.stderr
    assert "slower: b4 n1 w2: missing from the new run" in gate.stderr
    unknown = cli.run("report", str(old), str(new), "--fail-if-slower", "5", "--gate", "p75")
    assert (
        unknown.returncode == 2 and "choose from throughput, p50, p90, p95, p99" in unknown.stderr
    )


# -- user errors: one line, exit 2 -----------------------------------------------------------


def test_missing_model_file(cli):
    err = cli.user_error("benchmark", "nowhere.json", "--input-shape", "1x4")
    assert err == "neuronperf benchmark: error: INDEX_OR_MODEL nowhere.json does not exist\n"


def test_bad_shape_string(cli, index):
    result = cli.run("benchmark", str(index), "--input-shape", "1x3xa")
    assert result.returncode == 2
    assert "expected positive dimensions joined by x" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_metric_names_the_closest(cli, index):
    dataset(cli.cwd / "val.npz")
    err = cli.user_error("evaluate", str(index), "--dataset", "val.npz", "--metrics", "acuracy")
    assert "Unknown metric 'acuracy'. Closest known names: 'Accuracy'" in err


def test_no_plugin_for_the_artifact(cli):
    (cli.cwd / "model.onnx").write_bytes(b"\0")
    err = cli.user_error("benchmark", "model.onnx", "--input-shape", "1x4")
    assert "no installed framework plugin can load model.onnx" in err
    assert "pip install neuronperf-torch" in err


def test_no_framework_installed(tmp_path):
    from importlib.metadata import entry_points

    bare = Cli(tmp_path, None)
    installed = [ep.name for ep in entry_points(group="neuronperf")]  # where plugins are around
    bare.env["NEURONPERF_DISABLE_PLUGINS"] = ",".join(installed)
    (tmp_path / "m.pt2").write_bytes(b"\0")
    err = bare.user_error("benchmark", "m.pt2", "--input-shape", "1x4")
    assert "no framework plugin is installed" in err and "pip install neuronperf-torch" in err
    err = bare.user_error("demo", "--quick")  # the torch plugin's command: not here
    assert "No such command 'demo'" in err and "neuronperf plugins" in err


def test_inputs_missing_or_conflicting(cli, index):
    data = json.loads(index.read_text())
    for config in data["model_configs"]:
        del config["input_shapes"]  # as an index of a backend that records none
    bare = index.with_name("bare.json")
    bare.write_text(json.dumps(data))
    err = cli.user_error("benchmark", str(bare))
    assert "records no input shapes" in err and "--input-shape" in err
    assert "--dtype applies to --input-shape" in cli.user_error(
        "benchmark", str(index), "--dtype", "int64"
    )
    np.savez(cli.cwd / "in.npz", x=np.ones((2, 4), dtype="float32"))
    err = cli.user_error("benchmark", str(index), "--inputs", "in.npz")
    assert "holds 2 rows; batch size 4 needs at least 4" in err
    err = cli.user_error("benchmark", str(index), "--inputs", "in.npz", "--input-shape", "1x4")
    assert "not both" in err


def test_backend_chosen_by_name(cli, index):
    dataset(cli.cwd / "val.npz")
    data = cli.json("evaluate", str(index), "--dataset", "val.npz", "--backend", "scale")
    assert [r["accuracy"] for r in data["reports"]] == [1.0, 1.0]
    data = cli.json("evaluate", str(index), "--dataset", "val.npz", "--framework", "scale")
    assert [r["accuracy"] for r in data["reports"]] == [1.0, 1.0]  # --backend's old name
    err = cli.user_error("benchmark", str(index), "--input-shape", "1x4", "--backend", "nope")
    assert "no backend 'nope' is installed" in err and "scale" in err
    assert "--framework" not in cli.ok("benchmark", "--help").stdout  # hidden


def test_report_errors(cli, index):
    assert "is a model index" in cli.user_error("report", str(index))
    (cli.cwd / "bad.json").write_text("{")
    assert "cannot read" in cli.user_error("report", "bad.json")


def test_bad_numbers_and_files(cli, index):
    for value in ("nan", "inf", "-1"):
        result = cli.run("benchmark", str(index), "--input-shape", "1x4", "--duration", value)
        assert result.returncode == 2 and "expected a number >= 0" in result.stderr
    np.savez(cli.cwd / "scalar.npz", x=np.float32(1))
    err = cli.user_error("benchmark", str(index), "--inputs", "scalar.npz")
    assert "x is a single value" in err
    (cli.cwd / "broken.npz").write_bytes(b"PK\x03\x04 not really")
    assert "cannot read" in cli.user_error("evaluate", str(index), "--dataset", "broken.npz")
    (cli.cwd / "empty.json").write_text("[]")
    assert "not a results file" in cli.user_error("report", "empty.json")
    (cli.cwd / "other.json").write_text('[{"a": 1}]')
    assert "not a results file" in cli.user_error("report", "other.json")


def test_verbose_shows_the_traceback(cli):
    result = cli.run("benchmark", "nowhere.json", "--input-shape", "1x4", "--verbose")
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "does not exist" in result.stderr


def test_output_to_a_closed_pipe_is_quiet(cli):
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuronperf", "metrics"],
        cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""


# -- Ctrl-C ----------------------------------------------------------------------------------


def test_ctrl_c_keeps_what_finished_and_exits_130(cli, index):
    log = cli.cwd / "stderr.txt"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "neuronperf", "benchmark", str(index), "--input-shape", "1x4",
             "--duration", "60", "--n-models", "1", "--workers-per-model", "1,2",
             "--batch-sizes", "1", "--output-dir", "out"],
            cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while "[1/2]" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # loaded and warmed up: inside the first config's 60 s timed window
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, log.read_text()
    assert "interrupted" in log.read_text()
    out = cli.cwd / "out"
    (results,) = out.glob("*.json")
    (report,) = json.loads(results.read_text())
    assert report["status"] == "interrupted" and report["total_infs"] > 0
    assert len(list(out.glob("*.csv"))) == 1
    assert "interrupted" in stdout.splitlines()[2].split()  # the table shows the status


# -- the same backend from Python: the contract is complete -----------------------------------


def test_the_double_backend_runs_from_python_too(fake_site, tmp_path, monkeypatch):
    fake_site.add_dist(
        "npf-scale-double", "1.0", {"scale": "cli_framework_double"},
        {"cli_framework_double": DOUBLE.read_text()},
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    import neuronperf as npf

    try:
        double = importlib.import_module("cli_framework_double")
        x = np.random.default_rng(0).standard_normal((40, 4)).astype("float32")
        y = x.argmax(axis=1)
        index = npf.scale.compile(
            double.make_model(), [x[:1], x[:4]], batch_sizes=[1, 4], models_dir=tmp_path / "m"
        )
        configs = json.loads(Path(index).read_text())["model_configs"]
        assert [(c["batch_size"], c["status"]) for c in configs] == [
            (1, "finished"),
            (4, "finished"),
        ]
        reports = npf.scale.benchmark(
            index, [x[:1], x[:4]], duration=0.1, n_models=1, workers_per_model=1, results_dir=None
        )
        assert [(r["batch_size"], r["status"]) for r in reports] == [
            (1, "finished"),
            (4, "finished"),
        ]
        scored = npf.scale.evaluate(
            index, list(zip(x, y, strict=True)), metrics=["accuracy", "precision:average=macro"],
            results_dir=None,
        )  # fmt: skip
        assert [(r["batch_size"], r["accuracy"], r["total_infs"]) for r in scored] == [
            (1, 1.0, 40), (4, 1.0, 10)
        ]  # fmt: skip
        assert npf.scale.load(configs[0]["filename"])(np.ones(2)).tolist() == [2.0, 2.0]
    finally:
        sys.modules.pop("neuronperf.scale", None)
