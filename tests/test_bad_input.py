"""Bad input, met as a hostile or an unlucky user would (issue 15 points 2, 3, 5, 8-11;
issue 16 points 1-3): each gets a clear error, or a visible warning, before any work, and
nothing is written outside its folder or over a file the run did not create.

Command-line tests run the installed ``neuronperf`` script (not ``python -m``, which puts
the current folder on the import path by itself) in a subprocess, with the framework
double ``cli_framework_double`` (a test double of a framework plugin) installed as a fake
distribution.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neuronperf_core import plugins

DOUBLE = Path(__file__).with_name("cli_framework_double.py")


# -- 11: a plugin that raises any BaseException at import fails like any other ------------


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("raise KeyboardInterrupt('plugin pressed Ctrl-C')", "KeyboardInterrupt"),
        ("class Odd(BaseException):\n    pass\nraise Odd('odd')\n", "Odd: odd"),
    ],
    ids=["keyboard-interrupt", "base-exception"],
)
def test_a_plugin_raising_any_base_exception_at_import_is_a_failed_plugin(
    fake_site: Any, source: str, error: str
) -> None:
    fake_site.add_dist("npf-rude", "0.1", {"rude": "npf_rude"}, {"npf_rude": source})
    with pytest.warns(plugins.PluginWarning, match="'rude'"):
        host = plugins.get_host()
    (rude,) = [p for p in host.plugins if p.name == "rude"]
    assert rude.status == "failed" and error in str(rude.error)
    assert "accuracy" in host.metrics  # the host carries on


def test_a_plugin_raising_keyboard_interrupt_in_its_commands_hook_is_a_failed_plugin(
    fake_site: Any,
) -> None:
    source = (
        "from neuronperf_core import hookimpl\n"
        "@hookimpl\ndef neuronperf_register_commands(cli):\n"
        "    raise KeyboardInterrupt\n"
    )
    fake_site.add_dist("npf-rude", "0.1", {"rude": "npf_rude"}, {"npf_rude": source})
    import click

    with pytest.warns(plugins.PluginWarning, match="'rude'"):
        plugins.get_host().add_commands(click.Group())
    (rude,) = [p for p in plugins.get_host().plugins if p.name == "rude"]
    assert rude.status == "failed" and "KeyboardInterrupt" in str(rude.error)


# -- 8 and 9: bad keyword values and arguments, refused before anything loads --------------

QUICK: dict[str, Any] = {
    "duration": 0,
    "max_infers": 5,
    "n_models": 1,
    "workers_per_model": 1,
    "stats_interval": 0,
    "results_dir": None,
}


class Echo:
    """A model that returns its input (module level: copies may unpickle it)."""

    def __call__(self, x: Any) -> Any:
        return x


def test_benchmark_with_an_empty_metric_list_is_refused_not_timed() -> None:
    import neuronperf as npf

    with pytest.raises(npf.NeuronPerfError, match=r"eval_metrics=\[\] names no metric"):
        npf.cpu.benchmark(Echo, np.ones((1, 3)), eval_metrics=[], **QUICK)


@pytest.mark.parametrize("metrics", [[], (), None])
def test_evaluate_without_metrics_is_refused(metrics: Any) -> None:
    import neuronperf as npf

    rows = [(np.ones((1, 3)), 0)]
    with pytest.raises(npf.NeuronPerfError, match="names no metric"):
        npf.cpu.evaluate(Echo, rows, metrics=metrics, batch_sizes=[1], results_dir=None)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_models": []}, r"n_models=\[\] selects nothing"),
        ({"workers_per_model": []}, r"workers_per_model=\[\] selects nothing"),
        ({"pipeline_sizes": 0}, "pipeline_sizes must be whole numbers of at least 1"),
        ({"stats_interval": math.nan}, "stats_interval must be a finite number"),
        ({"stats_interval": "0.5"}, "stats_interval must be a finite number"),
        ({"cost_per_hour": math.nan}, "cost_per_hour must be a finite number"),
        ({"cost_per_hour": math.inf}, "cost_per_hour must be a finite number"),
        ({"cost_per_hour": "1"}, "cost_per_hour must be a finite number"),
        ({"verbosity": "1"}, "verbosity must be 0"),
        ({"device_type": "tpu"}, "device_type='tpu' is not a device"),
        ({"device_type": 123}, "device_type must be a device name"),
        ({"preprocess_fn": 5}, "preprocess_fn must be a function"),
        ({"env_setup_fn": "setup"}, "env_setup_fn must be a function"),
    ],
)
def test_a_bad_keyword_value_is_refused_before_the_first_config(
    kwargs: dict[str, Any], fragment: str
) -> None:
    import neuronperf as npf

    loads: list[str] = []

    def load_fn(name: str, device_id: int = 0) -> Any:
        loads.append(name)
        return Echo()

    with pytest.raises(npf.NeuronPerfError, match=fragment):
        npf.benchmark(load_fn, "m", np.ones((1, 3)), **{**QUICK, "device_type": "cpu", **kwargs})
    assert loads == []  # nothing loaded, nothing measured to lose


def test_none_as_the_model_is_refused_before_any_copy_loads() -> None:
    import neuronperf as npf

    with pytest.raises(npf.NeuronPerfError, match="the model is None"):
        npf.cpu.benchmark(None, np.ones((1, 3)), **QUICK)


def test_an_input_whose_first_dimension_is_not_its_batch_size_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import neuronperf as npf

    with caplog.at_level(logging.WARNING, logger="neuronperf"):
        (report,) = npf.cpu.benchmark(Echo, np.ones((1, 3)), batch_sizes=[4], **QUICK)
    assert report["status"] == "finished"
    (warning,) = [r.getMessage() for r in caplog.records if "first dimension" in r.getMessage()]
    assert "batch size 4 has first dimension 1" in warning and "4x" in warning
    assert "batch_sizes=[1]" in warning


def test_a_matching_or_unbatched_input_is_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import neuronperf as npf

    with caplog.at_level(logging.WARNING, logger="neuronperf"):
        npf.cpu.benchmark(Echo, np.ones((4, 3)), batch_sizes=[4], **QUICK)
        npf.cpu.benchmark(Echo, np.ones(3), batch_sizes=[4], **QUICK)  # 1-D: no batch dim
    assert not [r for r in caplog.records if "first dimension" in r.getMessage()]


def test_evaluating_rows_whose_batch_is_not_the_batch_size_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import neuronperf as npf

    rows = [(np.ones((4, 3)), np.zeros(4, dtype=int))]
    with caplog.at_level(logging.WARNING, logger="neuronperf"):
        npf.cpu.evaluate(Echo, rows, batch_sizes=[1], results_dir=None)
    assert [r for r in caplog.records if "batch size 1) has first dimension 4" in r.getMessage()]


@pytest.mark.parametrize("dataset", [5, 2.5, "val.npz", Path("val.npz")])
def test_evaluating_something_that_holds_no_rows_is_refused(dataset: Any) -> None:
    import neuronperf as npf

    with pytest.raises(npf.NeuronPerfError, match="evaluation dataset"):
        npf.cpu.evaluate(Echo, dataset, batch_sizes=[1], results_dir=None)


def test_an_index_with_missing_model_files_is_refused_but_names_for_a_load_fn_are_not(
    tmp_path: Path,
) -> None:
    import neuronperf as npf
    from neuronperf_core import api, model_index
    from neuronperf_core.cpu import PythonBackend

    class FileBackend(PythonBackend):  # a backend whose copies read their model files
        def plan_run(self, target: Any, configs: Any, options: Any) -> Any:
            return dataclasses.replace(super().plan_run(target, configs, options), model_files=True)

    index = model_index.save(model_index.create("gone.bin", batch_size=1), tmp_path / "m.json")
    with pytest.raises(npf.NeuronPerfError, match=r"lists 1 model file\(s\) that do not exist"):
        api.benchmark(FileBackend(lambda f, device_id=0: Echo()), index, np.ones((1, 3)), **QUICK)
    # NeuronPerf 1.x: a user's load_fn may take the index's filenames as names
    (report,) = npf.benchmark(lambda f, device_id=0: Echo(), index, np.ones((1, 3)), **QUICK)
    assert report["status"] == "finished"


@pytest.mark.parametrize(
    ("where", "error", "fragment"),
    [
        ("missing/r.json", FileNotFoundError, "its folder {tmp}/missing does not exist"),
        ("a_file/r.json", NotADirectoryError, "{tmp}/a_file is a file, not a folder"),
        ("a_folder", IsADirectoryError, "it is a folder"),
    ],
)
def test_write_json_where_it_cannot_names_the_path_not_a_temporary_file(
    tmp_path: Path, where: str, error: type[OSError], fragment: str
) -> None:
    import neuronperf as npf

    (tmp_path / "a_file").write_text("mine")
    (tmp_path / "a_folder").mkdir()
    with pytest.raises(error) as raised:
        npf.write_json([{"batch_size": 1}], tmp_path / where)
    message = str(raised.value)
    assert f"cannot write {tmp_path / where}" in message
    assert fragment.format(tmp=tmp_path) in message and ".tmp" not in message
    assert (tmp_path / "a_file").read_text() == "mine"


# -- 2 and 3: nothing written outside its folder, nothing written over ----------------------


def test_an_index_naming_its_model_with_a_path_writes_nothing_outside_its_folder(
    tmp_path: Path,
) -> None:
    import neuronperf as npf
    from neuronperf_core import model_index

    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    index = model_index.create("m.bin", batch_size=1, model_name="../../pwned")
    path = work / "given.json"
    path.write_text(json.dumps(index))
    with pytest.raises(npf.NeuronPerfError, match=re.escape("names its model '../../pwned'")):
        npf.benchmark(
            lambda f, device_id=0: Echo(), path, np.ones((1, 3)), **{**QUICK, "results_dir": work}
        )
    with pytest.raises(
        npf.NeuronPerfError, match=re.escape("model_name='../../pwned' cannot name")
    ):
        model_index.save(path, root_dir=work)  # its default name is the model's
    # the user names the run: results go where asked
    (report,) = npf.benchmark(
        lambda f, device_id=0: Echo(),
        path,
        np.ones((1, 3)),
        **{**QUICK, "results_dir": work, "model_name": "mine"},
    )
    assert report["status"] == "finished"
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert [str(p.parent) for p in written] == ["a/b", "a/b"]
    assert any(p.name.startswith("mine.results-") for p in written)


@pytest.mark.parametrize("name", ["../../x", "/tmp/x", "a/b", "a\\b", ".."])
def test_a_model_name_that_is_a_path_is_refused_for_results_files(
    tmp_path: Path, name: str
) -> None:
    import neuronperf as npf

    with pytest.raises(npf.NeuronPerfError, match="cannot name a file"):
        npf.cpu.benchmark(
            Echo, np.ones((1, 3)), **{**QUICK, "results_dir": tmp_path, "model_name": name}
        )
    assert list(tmp_path.iterdir()) == []


def test_a_run_never_writes_its_results_over_the_index_it_benchmarks(tmp_path: Path) -> None:
    import neuronperf as npf
    from neuronperf_core import model_index

    path = Path(model_index.save(model_index.create("m.bin", batch_size=1), tmp_path / "m.json"))
    before = path.read_bytes()
    with pytest.raises(npf.NeuronPerfError, match="exists and is not a results file"):
        npf.benchmark(
            lambda f, device_id=0: Echo(), path, np.ones((1, 3)), **{**QUICK, "results_file": path}
        )
    assert path.read_bytes() == before


def test_a_named_results_file_replaces_only_results(tmp_path: Path) -> None:
    import neuronperf as npf

    run = {**QUICK, "results_file": tmp_path / "before.json"}
    npf.cpu.benchmark(Echo, np.ones((1, 3)), **run)
    (report,) = npf.cpu.benchmark(Echo, np.ones((1, 3)), **run)  # twice, as a README says
    assert json.loads((tmp_path / "before.json").read_text()) == [report]
    (tmp_path / "notes.json").write_text('{"mine": true}')
    with pytest.raises(npf.NeuronPerfError, match="is not a results file"):
        npf.cpu.benchmark(Echo, np.ones((1, 3)), **{**run, "results_file": tmp_path / "notes.json"})
    assert (tmp_path / "notes.json").read_text() == '{"mine": true}'


def test_a_new_results_name_skips_a_csv_the_run_did_not_write(tmp_path: Path) -> None:
    from neuronperf_core import files

    first = files.results_path(tmp_path, None, "m")
    assert first is not None
    first.with_suffix(".csv").write_text("someone else's")
    second = files.results_path(tmp_path, None, "m")
    assert second is not None and second != first and not second.with_suffix(".csv").exists()


# -- the command line: one line and a documented status, never a traceback for a mistake --

NEURONPERF = shutil.which("neuronperf", path=os.path.dirname(sys.executable))
BUGGY_PLUGIN = """
from neuronperf_core import hookimpl
from cli_framework_double import ScaleBackend


class Buggy(ScaleBackend):  # a plugin with a bug: its compile plan divides by zero
    name = "buggy"

    def owns(self, target):
        return False

    def plan_compile(self, model, options):
        return 1 / 0


class BrokenFramework(ScaleBackend):  # its framework's own module cannot import
    name = "brokenfw"

    def owns(self, target):
        return False

    def plan_compile(self, model, options):
        import broken_framework  # noqa: F401

        raise AssertionError("unreachable")


@hookimpl
def neuronperf_register_backends(register):
    register(Buggy())
    register(BrokenFramework())
"""
USER_MODULE = """
from cli_framework_double import ScaleModel


def build():
    return ScaleModel(3.0)


def explodes():
    raise RuntimeError("factory exploded")


def no_rows():
    raise ValueError("dataset exploded")
"""


class Cli:
    """Runs the installed ``neuronperf`` script in a folder, the framework double installed."""

    def __init__(self, cwd: Path, site: Path) -> None:
        self.cwd = cwd
        self.env = {**os.environ, "PYTHONPATH": str(site)}
        self.env.pop("NEURONPERF_DISABLE_PLUGINS", None)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert NEURONPERF is not None, "the neuronperf script is not installed beside python"
        return subprocess.run(
            [NEURONPERF, *args], cwd=self.cwd, env=self.env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip

    def fails(self, status: int, *args: str) -> str:
        """stderr of a run that exits ``status`` without a traceback, its error on one line."""
        result = self.run(*args)
        assert result.returncode == status, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        return result.stderr


@pytest.fixture
def cli(fake_site: Any, tmp_path: Path) -> Cli:
    fake_site.add_dist(
        "npf-scale-double", "1.0", {"scale": "cli_framework_double"},
        {"cli_framework_double": DOUBLE.read_text()},
    )  # fmt: skip
    fake_site.add_dist("npf-buggy", "1.0", {"buggy": "npf_buggy"}, {"npf_buggy": BUGGY_PLUGIN})
    (fake_site.root / "broken_framework.py").write_text(
        "raise ImportError('libframework.so: cannot open shared object file')\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "mymodels.py").write_text(USER_MODULE)
    return Cli(work, fake_site.root)


@pytest.fixture
def index(cli: Cli) -> Path:
    result = cli.run("compile", "mymodels:build", "--input-shape", "1x4", "--batch-sizes", "1,4",
                     "--out", "models")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return cli.cwd / "models" / "build.json"


def test_a_module_attr_spec_imports_from_the_current_folder(cli: Cli) -> None:
    # the installed script, unlike `python -m`, does not put the current folder on sys.path
    result = cli.run("compile", "mymodels:build", "--input-shape", "1x4", "--out", "models")
    assert result.returncode == 0, result.stderr
    assert json.loads((cli.cwd / "models" / "build.json").read_text())["model_name"] == "build"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["compile", "mymodels:explodes", "--input-shape", "1x4"],
         "mymodels:explodes() raised RuntimeError: factory exploded while building MODEL"),
        (["compile", "nomodule_here.py:build", "--input-shape", "1x4"],
         "nomodule_here.py does not exist"),
    ],
)  # fmt: skip
def test_a_user_factory_that_raises_is_a_user_error(
    cli: Cli, args: list[str], fragment: str
) -> None:
    err = cli.fails(2, *args)
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_a_dataset_factory_that_raises_is_a_user_error(cli: Cli, index: Path) -> None:
    err = cli.fails(2, "evaluate", str(index), "--dataset", "mymodels:no_rows")
    assert "mymodels:no_rows() raised ValueError: dataset exploded" in err
    assert len(err.strip().splitlines()) == 1


def test_a_module_that_fails_to_import_is_a_user_error(cli: Cli) -> None:
    (cli.cwd / "badmod.py").write_text("import no_such_dependency_anywhere\n")
    err = cli.fails(2, "compile", "badmod:build", "--input-shape", "1x4")
    assert "importing 'badmod' for MODEL failed: ModuleNotFoundError" in err
    assert "-v shows where" in err
    # -v shows the traceback, for whoever wants it
    assert "Traceback" in cli.run("compile", "badmod:build", "--input-shape", "1x4", "-v").stderr


def test_a_framework_that_fails_to_import_is_a_user_error(cli: Cli) -> None:
    err = cli.fails(2, "compile", "mymodels:build", "--input-shape", "1x4", "--backend", "brokenfw")
    assert "a module failed to import: ImportError: libframework.so" in err
    assert len(err.strip().splitlines()) == 1


def test_a_crash_of_neuronperf_or_a_plugin_has_its_own_status_and_traceback(cli: Cli) -> None:
    result = cli.run("compile", "mymodels:build", "--input-shape", "1x4", "--backend", "buggy")
    assert result.returncode == 70, result.stderr
    assert "Traceback" in result.stderr and "ZeroDivisionError" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("neuronperf compile: internal error: ZeroDivisionError")
    assert "bug in neuronperf or a plugin" in last


def test_a_refused_compile_leaves_no_out_folder(cli: Cli) -> None:
    (cli.cwd / "other.py").write_text("def build():\n    return object()\n")
    err = cli.fails(2, "compile", "other:build", "--input-shape", "1x4", "--backend", "scale",
                    "--out", "fresh")  # fmt: skip
    assert "the scale double compiles ScaleModel" in err
    assert not (cli.cwd / "fresh").exists()


def test_a_refused_run_leaves_no_output_dir_and_names_the_flag(cli: Cli, index: Path) -> None:
    err = cli.fails(2, "benchmark", str(index), "--input-shape", "1x4", "--device", "tpu",
                    "--output-dir", "fresh")  # fmt: skip
    assert "--device tpu is not a device the 'scale' backend runs on" in err
    assert "device_type" not in err
    assert not (cli.cwd / "fresh").exists()


def test_evaluate_shows_the_configs_own_error_with_a_hint_in_flags(cli: Cli, index: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 4)).astype("float32")
    np.savez(cli.cwd / "val.npz", x=x, y=x.argmax(axis=1))  # 4 classes: multiclass
    result = cli.run("evaluate", str(index), "--dataset", "val.npz", "--metrics", "recall")
    assert result.returncode == 1, result.stderr  # a config failed, as docs/cli.md says
    assert "Traceback" not in result.stderr and "Unknown column" not in result.stderr
    assert "the data is multiclass" in result.stderr
    assert "--metrics recall:average=macro" in result.stderr
    assert "register_metric_from_existing" not in result.stderr
    assert "error" in result.stdout  # the table still shows each config, with its status


def test_an_index_whose_model_files_are_gone_says_so(cli: Cli, index: Path) -> None:
    for artifact in (cli.cwd / "models").glob("*.scale"):
        artifact.unlink()
    err = cli.fails(2, "benchmark", str(index), "--input-shape", "1x4")
    assert "lists model files that do not exist" in err and "no installed framework" not in err


def test_an_index_naming_its_model_with_a_path_asks_for_name(cli: Cli, index: Path) -> None:
    data = json.loads(index.read_text())
    data["model_name"] = "../../pwned"
    index.write_text(json.dumps(data))
    before = sorted(p for p in cli.cwd.parent.rglob("*") if "site" not in p.parts)
    err = cli.fails(2, "benchmark", str(index), "--input-shape", "1x4", "--duration", "0.1")
    assert "give --name NAME" in err
    assert sorted(p for p in cli.cwd.parent.rglob("*") if "site" not in p.parts) == before
    result = cli.run("benchmark", str(index), "--input-shape", "1x4", "--duration", "0.1",
                     "--n-models", "1", "--workers-per-model", "1", "--name", "mine")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(list(cli.cwd.glob("mine.results-*.json"))) == 1


@pytest.mark.parametrize("target", ["index", "csv_twin", "csv"])
def test_results_file_never_replaces_a_file_the_run_did_not_write(
    cli: Cli, index: Path, target: str
) -> None:
    (cli.cwd / "r.csv").write_text("mine")
    path = {"index": str(index), "csv_twin": "r.json", "csv": "x.csv"}[target]
    before = index.read_text()
    err = cli.fails(2, "benchmark", str(index), "--input-shape", "1x4", "--results-file", path)
    assert "--results-file" in err
    assert index.read_text() == before and (cli.cwd / "r.csv").read_text() == "mine"
    assert not (cli.cwd / "r.json").exists() and not (cli.cwd / "x.csv").exists()


def test_the_same_results_file_twice_replaces_the_first_runs(cli: Cli, index: Path) -> None:
    run = ["benchmark", str(index), "--input-shape", "1x4", "--duration", "0.1", "--n-models",
           "1", "--workers-per-model", "1", "--results-file", "before.json"]  # fmt: skip
    for _ in range(2):
        result = cli.run(*run)
        assert result.returncode == 0, result.stderr
    assert len(json.loads((cli.cwd / "before.json").read_text())) == 2  # batch sizes 1, 4


@pytest.fixture
def full_disk(tmp_path: Path) -> Any:
    """A small tmpfs, filled: writes there fail with ENOSPC. Needs root (mount)."""
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here to fill: {mounted.stderr.strip()}")
    try:
        with open(folder / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"x" * 4096)
            except OSError:
                pass
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_full_output_disk_is_one_line_not_a_traceback(
    cli: Cli, index: Path, full_disk: Path
) -> None:
    result = cli.run("benchmark", str(index), "--input-shape", "1x4", "--duration", "0.1",
                     "--n-models", "1", "--workers-per-model", "1",
                     "--output-dir", str(full_disk))  # fmt: skip
    assert result.returncode in (1, 2), result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot write" in result.stderr and str(full_disk) in result.stderr
    assert "No space left on device" in result.stderr and ".tmp" not in result.stderr


def test_a_folder_path_that_is_a_file_is_named_as_such(tmp_path: Path) -> None:
    import neuronperf as npf
    from neuronperf_core import model_index

    blocker = tmp_path / "a_file"
    blocker.write_text("mine")
    index = model_index.create(str(blocker), batch_size=1)
    with pytest.raises(npf.NeuronPerfError, match="a_file' is a file, not a folder"):
        model_index.save(index, "i.json", root_dir=blocker)
    with pytest.raises(npf.NeuronPerfError, match="a_file' is a file, not a folder"):
        model_index.save(index, blocker / "sub" / "i.json")
    with pytest.raises(npf.NeuronPerfError, match="a_file' is a file, not a folder"):
        model_index.copy(index, tmp_path / "n.json", blocker)
    with pytest.raises(npf.NeuronPerfError, match="is a file, not a folder"):
        npf.cpu.benchmark(Echo, np.ones((1, 3)), **{**QUICK, "results_dir": blocker})
    assert blocker.read_text() == "mine"


def test_compile_into_a_models_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    from neuronperf_core import api
    from neuronperf_core.options import OptionError

    sys.path.insert(0, str(DOUBLE.parent))
    try:
        from cli_framework_double import ScaleBackend, ScaleModel
    finally:
        sys.path.remove(str(DOUBLE.parent))
    blocker = tmp_path / "models"
    blocker.write_text("mine")
    with pytest.raises(OptionError, match=r"models_dir .*models is a file, not a folder"):
        api.compile(ScaleBackend(), ScaleModel(), np.ones((1, 4)), models_dir=blocker)
    assert blocker.read_text() == "mine"


def test_a_dataset_whose_first_row_raises_is_the_users_error() -> None:
    import neuronperf as npf

    class Broken:
        def __iter__(self) -> Any:
            raise OSError("the disk with the data is gone")

    with pytest.raises(npf.NeuronPerfError, match=r"reading the first row .* disk with the data"):
        npf.cpu.evaluate(Echo, Broken(), batch_sizes=[1], results_dir=None)


def test_a_multiclass_binary_metric_error_names_the_spec_that_scores_it() -> None:
    import neuronperf as npf

    rows = [(np.eye(4)[[i]], i) for i in range(4)]  # 4 classes, batches of 1
    (report,) = npf.cpu.evaluate(Echo, rows, metrics="recall", batch_sizes=[1],
                                 results_dir=None, verbosity=0)  # fmt: skip
    assert report["status"] == "error"
    assert "the data is multiclass" in report["error"]
    assert "metrics=['recall:average=macro']" in report["error"]
    (fixed,) = npf.cpu.evaluate(Echo, rows, metrics="recall:average=macro", batch_sizes=[1],
                                results_dir=None, verbosity=0)  # fmt: skip
    assert fixed["status"] == "finished" and fixed["recall:average=macro"] == 1.0


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/b"])
def test_compile_never_names_an_artifact_or_index_outside_its_folder(
    tmp_path: Path, name: str
) -> None:
    from neuronperf_core import api
    from neuronperf_core.files import OutputPathError

    sys.path.insert(0, str(DOUBLE.parent))
    try:
        from cli_framework_double import ScaleBackend, ScaleModel
    finally:
        sys.path.remove(str(DOUBLE.parent))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(OutputPathError, match="cannot name a file"):
        api.compile(ScaleBackend(), ScaleModel(), np.ones((1, 4)), model_name=name,
                    models_dir=work / "models")  # fmt: skip
    assert list(tmp_path.rglob("*")) == [work]


def test_cli_name_that_is_a_path_is_refused_naming_the_flag(cli: Cli, index: Path) -> None:
    err = cli.fails(2, "compile", "mymodels:build", "--input-shape", "1x4", "--name", "../x")
    assert "--name ../x cannot name a file" in err
    err = cli.fails(2, "benchmark", str(index), "--input-shape", "1x4", "--name", "../x")
    assert "--name ../x cannot name a file" in err
    assert not (cli.cwd.parent / "x.json").exists()
    assert not list(cli.cwd.parent.glob("x.results-*"))
