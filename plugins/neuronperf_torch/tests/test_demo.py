"""neuronperf_torch.demo.demo: the digits model trained (or read from the cache), compiled,
benchmarked, evaluated and plotted; and everything it refuses before doing any of that."""

from __future__ import annotations

import csv
import json
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from neuronperf_torch import demo as demo_module
from neuronperf_torch.errors import DeviceUnavailableError, TorchArgumentError

import neuronperf as npf
from neuronperf_core import model_index
from neuronperf_core.errors import RegistrationError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QUICK_PLAN = {(b, 1, w) for b in (1, 8, 32) for w in (1, 2)}  # batch, n_models, workers


class TouchOnUnpickle:
    """Unpickling it creates a file: what a malicious pickle could do with any call."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


@dataclass
class DemoRun:
    result: dict[str, Any]
    output_dir: Path
    cache_dir: Path


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """demo(quick=True) once, from an empty cache."""
    root = tmp_path_factory.mktemp("demo")
    result = demo_module.demo(root / "out", quick=True, cache_dir=root / "cache", verbosity=0)
    return DemoRun(result, root / "out", root / "cache")


def plan_of(reports: list[dict[str, Any]]) -> set[tuple[int, int, int]]:
    return {(r["batch_size"], r["n_models"], r["workers_per_model"]) for r in reports}


@pytest.mark.slow
def test_quick_demo_writes_reports_evaluation_and_plot(quick_run: DemoRun) -> None:
    result, out = quick_run.result, quick_run.output_dir
    assert result["device_type"] == "cpu"  # no torch-neuronx here
    assert result["model_cached"] is False and result["train_s"] > 0
    assert result["test_accuracy"] > 0.9
    files = result["files"]
    assert set(files) == {"json", "csv", "plot", "index", "evaluation"}
    stamp = r"\d{8}-\d{6}(-\d+)?"
    for name, expected in [
        ("json", rf"digits_mlp\.results-{stamp}\.json"),
        ("csv", rf"digits_mlp\.results-{stamp}\.csv"),
        ("plot", rf"digits_mlp\.results-{stamp}\.png"),
        ("index", r"demo\.index\.json"),
        ("evaluation", rf"digits_mlp\.evaluation-{stamp}\.json"),
    ]:
        assert Path(files[name]).is_absolute() and Path(files[name]).parent == out
        assert re.fullmatch(expected, Path(files[name]).name), files[name]
    assert len({Path(files[k]).stem.split("-", 1)[1] for k in ("json", "evaluation")}) == 1

    reports = json.loads(Path(files["json"]).read_text())
    assert len(reports) == len(QUICK_PLAN) and plan_of(reports) == QUICK_PLAN
    for report in reports:
        assert report["status"] == "finished", report["error"]
        assert report["device_type"] == "cpu" and report["throughput_avg"] > 0
    assert reports == result["benchmark"]
    with open(files["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(QUICK_PLAN) and {r["status"] for r in rows} == {"finished"}

    evaluation = json.loads(Path(files["evaluation"]).read_text())
    assert evaluation == result["evaluation"]
    assert sorted(r["batch_size"] for r in evaluation) == [1, 8, 32]
    for report in evaluation:
        assert report["status"] == "finished", report["error"]
        assert report["total_infs"] * report["batch_size"] == demo_module.TEST_RECORDS
        assert report["accuracy"] > 0.85
        # The compiled model scores the held-out records as the eager one did.
        assert report["accuracy"] == pytest.approx(result["test_accuracy"], abs=2 / 448)
        assert 0.85 < report["precision_macro"] <= 1
        assert report["accuracy"] <= report["topk_3"] <= 1

    assert Path(files["plot"]).read_bytes().startswith(PNG_SIGNATURE)
    configs = model_index.load(files["index"])["model_configs"]
    assert [(c["batch_size"], c["status"]) for c in configs] == [
        (1, "finished"),
        (8, "finished"),
        (32, "finished"),
    ]
    cache_files = list(quick_run.cache_dir.iterdir())
    assert [f.name for f in cache_files] == [f"demo-{demo_module.ARCH}.pt"]  # no temp file left


@pytest.mark.slow
def test_a_second_run_reads_the_cache_and_replaces_the_models(quick_run: DemoRun) -> None:
    first = quick_run.result
    old_models = {c["filename"] for c in model_index.load(first["files"]["index"])["model_configs"]}
    # As after a first demo in this process: the metric names are taken, by the same metrics.
    npf.register_metric_from_existing("precision", "precision_macro", average="macro")
    npf.register_metric_from_existing("topk", "topk_3", k=3)
    second = demo_module.demo(
        quick_run.output_dir, quick=True, cache_dir=quick_run.cache_dir, verbosity=0
    )
    assert second["model_cached"] is True and second["train_s"] == 0.0
    assert second["test_accuracy"] == first["test_accuracy"]  # the same weights
    accuracies = [r["accuracy"] for r in second["evaluation"]]
    assert accuracies == [r["accuracy"] for r in first["evaluation"]]
    new_models = {
        c["filename"] for c in model_index.load(second["files"]["index"])["model_configs"]
    }
    assert not old_models & new_models
    assert {str(p) for p in (quick_run.output_dir / "models").iterdir()} == new_models
    # each run's results under their own names: the first run's are still there
    for kind in ("json", "csv", "plot", "evaluation"):
        assert first["files"][kind] != second["files"][kind]
        assert Path(first["files"][kind]).is_file() and Path(second["files"][kind]).is_file()


@pytest.mark.slow
def test_a_corrupt_cache_is_retrained_and_rewritten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = demo_module._cache_file(tmp_path / "cache")
    cache.parent.mkdir()
    cache.write_bytes(b"PK\x03\x04 half a zip")
    with caplog.at_level(logging.WARNING, logger="neuronperf.torch.demo"):
        result = demo_module.demo(
            tmp_path / "out", quick=True, cache_dir=tmp_path / "cache", verbosity=0
        )
    assert result["model_cached"] is False and result["test_accuracy"] > 0.9
    assert any("ignoring the cached demo model" in r.getMessage() for r in caplog.records)
    state = torch.load(cache, weights_only=True)  # rewritten, readable
    assert state["hidden.weight"].shape == (demo_module.N_HIDDEN, demo_module.N_FEATURES)


@pytest.mark.slow
def test_with_torch_neuronx_the_demo_runs_on_neuron(  # type: ignore[no-untyped-def]
    neuronx_double, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default device is Neuron once torch-neuronx imports (here the test double)."""
    from neuronperf_torch import neuron

    monkeypatch.setattr(neuron, "instance_target", lambda: "inf2")  # as on an inf2 instance
    result = demo_module.demo(tmp_path / "out", quick=True, cache_dir=tmp_path / "c", verbosity=0)
    assert result["device_type"] == "neuron"
    assert plan_of(result["benchmark"]) == QUICK_PLAN
    assert {r["device_type"] for r in result["benchmark"] + result["evaluation"]} == {"neuron"}
    assert {r["status"] for r in result["benchmark"] + result["evaluation"]} == {"finished"}
    traces = neuronx_double.records("trace")
    assert len(traces) == 3 and all("inf2" in t["compiler_args"] for t in traces)


# -- the cache, without running the demo -------------------------------------------------


def test_cache_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEURONPERF_CACHE_DIR", str(tmp_path / "own"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert demo_module.default_cache_dir() == tmp_path / "own"
    monkeypatch.setenv("NEURONPERF_CACHE_DIR", "")
    assert demo_module.default_cache_dir() == tmp_path / "xdg" / "neuronperf"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert demo_module.default_cache_dir() == tmp_path / "home" / ".cache" / "neuronperf"


def _bad_states() -> dict[str, object]:
    good = demo_module.DigitsMLP().state_dict()
    nan = dict(good)
    nan["out.bias"] = torch.full_like(good["out.bias"], float("nan"))
    return {
        "wrong shape": {**good, "hidden.weight": torch.zeros(64, 64)},
        "missing key": {k: v for k, v in good.items() if k != "out.bias"},
        "wrong dtype": {**good, "out.bias": good["out.bias"].double()},
        "non-finite": nan,
        "not a dict": [torch.zeros(2)],
    }


@pytest.mark.parametrize("case", sorted(_bad_states()))
def test_a_cache_that_does_not_fit_the_model_is_ignored(
    case: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cached.pt"
    torch.save(_bad_states()[case], path)
    with caplog.at_level(logging.WARNING, logger="neuronperf.torch.demo"):
        assert demo_module._load_cached(path) is None
    assert "training it again" in caplog.text


def test_a_cache_holding_code_is_ignored_unread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "code_ran"
    torch.save({"hidden.weight": TouchOnUnpickle(marker)}, tmp_path / "cached.pt")
    with caplog.at_level(logging.WARNING, logger="neuronperf.torch.demo"):
        assert demo_module._load_cached(tmp_path / "cached.pt") is None
    assert not marker.exists() and "UnpicklingError" in caplog.text


def test_training_is_seeded_and_leaves_the_callers_rng_alone(tmp_path: Path) -> None:
    x_train, x_test, y_train, y_test = demo_module._digits()
    assert len(x_test) == demo_module.TEST_RECORDS and len(x_train) + len(x_test) == 1797
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    first = demo_module._train(x_train, y_train)
    assert torch.equal(torch.rand(3), expected_draw)
    assert demo_module._accuracy(first, x_test, y_test) > 0.9
    second = demo_module._train(x_train, y_train)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    demo_module._save_cached(first, tmp_path / "c" / "w.pt")
    loaded = demo_module._load_cached(tmp_path / "c" / "w.pt")
    assert loaded is not None
    assert torch.equal(loaded.out.weight, first.out.weight)
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["w.pt"]


# -- refused before any work ----------------------------------------------------------------


def assert_nothing_done(tmp_path: Path) -> None:
    assert not (tmp_path / "cache").exists()  # nothing trained
    assert not (tmp_path / "out").exists()


def test_an_output_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("a file")
    with pytest.raises(TorchArgumentError, match=r"output_dir .* is a file"):
        demo_module.demo(tmp_path / "out", quick=True, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
    assert (tmp_path / "out").read_text() == "a file"


@pytest.mark.parametrize(("module", "name"), [("sklearn", "scikit-learn"), ("matplotlib", "")])
def test_missing_demo_dependencies_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, name: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # importlib.util.find_spec: not installed
    message = rf"the demo needs {name or module}: pip install 'neuronperf-torch\[demo\]'"
    with pytest.raises(TorchArgumentError, match=message):
        demo_module.demo(tmp_path / "out", quick=True, cache_dir=tmp_path / "cache")
    assert_nothing_done(tmp_path)


def test_devices_that_are_not_here_are_refused_first(tmp_path: Path) -> None:
    with pytest.raises(DeviceUnavailableError, match="torch-neuronx"):
        demo_module.demo(tmp_path / "out", device_type="neuron", cache_dir=tmp_path / "cache")
    with pytest.raises(TorchArgumentError, match="device_type='tpu'"):
        demo_module.demo(tmp_path / "out", device_type="tpu", cache_dir=tmp_path / "cache")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="no CUDA GPU"):
            demo_module.demo(tmp_path / "out", device_type="cuda", cache_dir=tmp_path / "cache")
    assert_nothing_done(tmp_path)


def test_a_metric_name_taken_by_another_metric_is_refused(tmp_path: Path) -> None:
    npf.register_metric_from_existing("precision", "precision_macro", average="micro")
    with pytest.raises(RegistrationError, match=r"precision_macro.*average"):
        demo_module.demo(tmp_path / "out", quick=True, cache_dir=tmp_path / "cache")
    assert_nothing_done(tmp_path)
