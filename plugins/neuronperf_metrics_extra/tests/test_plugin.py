"""The plugin: discovered through its entry point, registers every metric, imports nothing heavy."""

from __future__ import annotations

import inspect
import io
import json
import subprocess
import sys
from pathlib import Path

import neuronperf_metrics_extra
import numpy as np
import pytest
from helpers import DIST, ENTRY_POINT, is_installed
from sklearn import metrics as skm

import neuronperf as npf
from neuronperf_core import plugins
from neuronperf_core.errors import UnknownNameError
from neuronperf_core.metrics.registry import create_metric, get_metric, metric_table

METRICS = {
    "BalancedAccuracy": (),
    "MatthewsCorrelation": ("MCC",),
    "CohenKappa": (),
    "ConfusionMatrix": (),
    "LogLoss": ("CrossEntropy",),
    "ExpectedCalibrationError": ("ECE",),
    "ROCAUC": ("AUROC",),
    "AveragePrecision": (),
    "RootMeanSquaredError": ("RMSE",),
    "R2Score": ("R2",),
    "MeanAbsolutePercentageError": ("MAPE",),
    "ExplainedVariance": (),
    "MaxError": (),
    "PearsonCorrelation": ("Pearson",),
    "Perplexity": (),
    "ExactMatch": ("SequenceAccuracy",),
}
HEAVY = ("torch", "torchmetrics", "sklearn", "scipy", "pandas")


def plugin_info() -> plugins.PluginInfo:
    (info,) = [p for p in plugins.get_host().plugins if p.name == ENTRY_POINT]
    return info


def test_the_entry_point_registers_every_metric(plugin_env: dict[str, str]) -> None:
    info = plugin_info()
    assert (info.distribution, info.version, info.source) == (DIST, "0.1.0", "entry point")
    assert (info.status, info.error) == ("active", None)
    assert info.hooks == ["neuronperf_register_metrics"]
    assert info.registered == {"metrics": list(METRICS)}


def test_every_metric_has_a_one_line_description_in_list_metrics(
    plugin_env: dict[str, str],
) -> None:
    rows = {r["name"]: r for r in metric_table() if r["provider"] == ENTRY_POINT}
    assert set(rows) == set(METRICS) | {alias for aliases in METRICS.values() for alias in aliases}
    printed = io.StringIO()
    npf.list_metrics(file=printed)
    for name in METRICS:
        description = rows[name]["description"]
        assert description and "\n" not in description and len(description) <= 90
        assert f"{name}  " in printed.getvalue() and description in printed.getvalue()


def test_aliases_and_spellings_resolve(plugin_env: dict[str, str]) -> None:
    for name, aliases in METRICS.items():
        cls = getattr(neuronperf_metrics_extra, name)
        for spelling in (name, name.lower(), *aliases):
            assert get_metric(spelling).value is cls
    assert type(create_metric("r2_score")).__name__ == "R2Score"


def test_every_metric_documents_its_input_shapes() -> None:
    for name in METRICS:
        cls = getattr(neuronperf_metrics_extra, name)
        documentation = (cls.__doc__ or "") + (inspect.getmodule(cls).__doc__ or "")
        assert "(N" in documentation, f"{name}: its docstrings should say the input shapes"


def test_variants_with_options_register_at_run_time(plugin_env: dict[str, str]) -> None:
    npf.register_metric_from_existing("LogLoss", "log_loss_logits", from_logits=True)
    metric = create_metric("log_loss_logits")
    metric.process_batch([0.0, 0.0], [0, 1])
    assert type(metric).aggregate([metric]) == pytest.approx(np.log(2.0))


def test_evaluate_scores_with_the_plugin_metrics(plugin_env: dict[str, str]) -> None:
    """Through the benchmark engine: two worker processes, merged with aggregate."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    predicted = np.where(rng.random(600) < 0.7, labels, rng.integers(0, 3, 600))
    dataset = [(int(p), int(t)) for p, t in zip(predicted, labels, strict=True)]
    (report,) = npf.cpu.evaluate(
        npf.DummyModel, dataset, metrics=["MCC", "ConfusionMatrix"], results_dir=None
    )
    assert report["status"] == "finished", report["error"]
    assert report["MCC"] == pytest.approx(skm.matthews_corrcoef(labels, predicted))
    assert report["ConfusionMatrix"] == skm.confusion_matrix(labels, predicted).tolist()


def test_the_cli_lists_the_plugin_and_its_metrics(plugin_env: dict[str, str]) -> None:
    def cli(*args: str) -> str:
        command = [sys.executable, "-m", "neuronperf_core.cli", *args]
        done = subprocess.run(command, env=plugin_env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = {p["name"]: p for p in json.loads(cli("plugins", "--json"))}
    assert listed[ENTRY_POINT]["status"] == "active"
    assert listed[ENTRY_POINT]["registered"] == {"metrics": list(METRICS)}
    table = cli("metrics")
    assert all(name in table for name in METRICS)


def test_discovery_imports_nothing_heavy(plugin_env: dict[str, str]) -> None:
    code = (
        "import io, sys, neuronperf; neuronperf.list_metrics(file=io.StringIO()); "
        "import neuronperf_metrics_extra.plugin; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=plugin_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_disabling_the_plugin_removes_its_metrics(
    plugin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(plugins.DISABLE_ENV, ENTRY_POINT)
    assert plugin_info().status == "blocked"
    with pytest.raises(UnknownNameError, match="Unknown metric 'RMSE'"):
        get_metric("RMSE")


def test_strict_mode_loads_it_cleanly(
    plugin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(plugins.STRICT_ENV, "1")
    assert plugin_info().status == "active"


@pytest.mark.skipif(not is_installed(), reason="checks the installed copy (nox session)")
def test_the_installed_copy_is_tested_not_the_source_tree() -> None:
    source = Path(__file__).resolve().parents[1] / "src" / "neuronperf_metrics_extra"
    assert Path(neuronperf_metrics_extra.__file__).resolve().parent != source
