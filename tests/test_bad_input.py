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
import re
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
    with pytest.raises(npf.NeuronPerfError, match="exists; a run writes only files it creates"):
        npf.benchmark(
            lambda f, device_id=0: Echo(), path, np.ones((1, 3)), **{**QUICK, "results_file": path}
        )
    assert path.read_bytes() == before


def test_a_new_results_name_skips_a_csv_the_run_did_not_write(tmp_path: Path) -> None:
    from neuronperf_core import files

    first = files.results_path(tmp_path, None, "m")
    assert first is not None
    first.with_suffix(".csv").write_text("someone else's")
    second = files.results_path(tmp_path, None, "m")
    assert second is not None and second != first and not second.with_suffix(".csv").exists()
