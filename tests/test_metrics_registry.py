"""The metric registry and the guide's user-facing metric functions."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

import neuronperf as npf
from neuronperf_core import plugins
from neuronperf_core.errors import MetricError, PluginError, RegistrationError, UnknownNameError
from neuronperf_core.metrics.registry import create_metric, get_metric, metric_table
from neuronperf_core.metrics.specs import resolve_metric

# The guide's table, in its order, with its two wrong formulas corrected.
GUIDE_TABLE = """\
Name                     Description
Accuracy                 (TP + TN) / (TP + TN + FP + FN)
TruePositiveRate         TP / (TP + FN)
Sensitivity              Alias for TruePositiveRate
Recall                   Alias for TruePositiveRate
Hit Rate                 Alias for TruePositiveRate
TrueNegativeRate         TN / (TN + FP)
Specificity              Alias for TrueNegativeRate
Selectivity              Alias for TrueNegativeRate
PositivePredictiveValue  TP / (TP + FP)
Precision                Alias for PositivePredictiveValue
NegativePredictiveValue  TN / (TN + FN)
FalseNegativeRate        FN / (FN + TP)
FalsePositiveRate        FP / (FP + TN)
FalseDiscoveryRate       FP / (FP + TP)
FalseOmissionRate        FN / (FN + TN)
PositiveLikelihoodRatio  TPR / FPR
NegativeLikelihoodRatio  FNR / TNR
PrevalenceThreshold      sqrt(FPR) / (sqrt(FPR) + sqrt(TPR))
ThreatScore              TP / (TP + FN + FP)
F1Score                  2TP / (2TP + FN + FP)
MeanAbsoluteError        sum(|y - x|) / n
MeanSquaredError         sum((y - x)^2) / n
"""


@pytest.fixture
def only_builtins(monkeypatch):
    """Leave out the installed plugins (metrics-extra, torch): the guide's table alone."""
    names = sorted({ep.name for ep in entry_points(group=plugins.ENTRY_POINT_GROUP)})
    monkeypatch.setenv(plugins.DISABLE_ENV, ",".join(names))


def printed_table() -> str:
    out = io.StringIO()
    npf.list_metrics(file=out)
    return out.getvalue()


@pytest.mark.usefixtures("only_builtins")
def test_list_metrics_prints_the_guides_table_with_corrected_formulas():
    assert printed_table() == GUIDE_TABLE


@pytest.mark.usefixtures("only_builtins")
def test_list_metrics_prints_to_stdout(capsys):
    assert npf.list_metrics() is None
    assert capsys.readouterr().out == GUIDE_TABLE


@pytest.mark.parametrize(
    ("spelling", "metric"),
    [
        ("accuracy", "Accuracy"),
        ("Accuracy", "Accuracy"),
        ("precision", "PositivePredictiveValue"),
        ("Recall", "TruePositiveRate"),
        ("hit rate", "TruePositiveRate"),
        ("Hit Rate", "TruePositiveRate"),
        ("true_positive_rate", "TruePositiveRate"),
        ("TRUE-POSITIVE-RATE", "TruePositiveRate"),
        ("f1_score", "F1Score"),
        ("mean_squared_error", "MeanSquaredError"),
        ("specificity", "TrueNegativeRate"),
    ],
)
def test_lookup_accepts_the_spellings_users_write(spelling, metric):
    assert get_metric(spelling).name == metric


def test_unknown_metric_lists_the_closest_names():
    with pytest.raises(UnknownNameError) as raised:
        get_metric("acuracy")
    message = str(raised.value)
    assert "Unknown metric 'acuracy'" in message and "'Accuracy'" in message
    assert "list_metrics()" in message


def test_unknown_metric_is_also_a_key_error():
    with pytest.raises(KeyError):
        create_metric("no such metric at all")


class MyCustomMetric(npf.BaseEvalMetric):
    # verbatim from the evaluation guide
    def __init__(self):
        super().__init__()
        self.passing = 0
        self.processed = 0

    def process_record(self, outputs, target):
        self.processed += 1
        if outputs == target:
            self.passing += 1

    @staticmethod
    def aggregate(metrics):
        passing = 0
        processed = 0
        for metric in metrics:
            passing += metric.passing
            processed += metric.processed
        return passing / processed if processed else 0


@pytest.mark.usefixtures("only_builtins")
def test_the_guides_custom_metric_registers_and_scores():
    npf.register_metric("MyCustomMetric", MyCustomMetric)

    first, second = create_metric("MyCustomMetric"), create_metric("my_custom_metric")
    for output, target in [(1, 1), (2, 3)]:
        first.process_record(output, target)
    second.process_batch([4, 5], [4, 5])  # the default batch path loops process_record
    assert MyCustomMetric.aggregate([first, second]) == 0.75
    assert {
        "name": "MyCustomMetric",
        "description": "registered at run time",
        "provider": "runtime",
    } in (metric_table())
    assert "\nMyCustomMetric           registered at run time\n" in printed_table()


def test_registering_a_taken_name_names_both_providers():
    npf.register_metric("MyCustomMetric", MyCustomMetric)
    with pytest.raises(RegistrationError) as raised:
        npf.register_metric("my_custom_metric", MyCustomMetric)
    assert "already registered as 'MyCustomMetric' by runtime" in str(raised.value)
    with pytest.raises(RegistrationError, match=r"by neuronperf_core\.metrics\.builtin"):
        npf.register_metric("Recall", MyCustomMetric)


def test_replace_true_overrides_a_taken_name():
    npf.register_metric("Accuracy", MyCustomMetric, replace=True, description="mine")
    assert get_metric("accuracy").value is MyCustomMetric
    assert get_metric("accuracy").provider == "runtime"


def test_a_failed_replace_keeps_the_old_entry():
    with pytest.raises(RegistrationError, match="not usable"):
        npf.register_metric("Accuracy", MyCustomMetric, aliases=("__",), replace=True)
    assert get_metric("accuracy").provider == "neuronperf_core.metrics.builtin"


def test_the_default_batch_path_checks_its_batches():
    metric = MyCustomMetric()
    with pytest.raises(MetricError, match="2 outputs but 3 targets"):
        metric.process_batch([1, 2], [1, 2, 3])
    with pytest.raises(MetricError, match="wrap iterators in list"):
        metric.process_batch(iter([1]), [1])
    assert metric.processed == 0


def test_register_metric_rejects_what_is_not_a_metric_class():
    class NoAggregate(npf.BaseEvalMetric):
        def process_record(self, output=None, target=None):
            pass

    class NoProcess(npf.BaseEvalMetric):
        @staticmethod
        def aggregate(metrics):
            return 0

    with pytest.raises(RegistrationError, match=r"subclass of neuronperf\.BaseEvalMetric"):
        npf.register_metric("Thing", object)
    with pytest.raises(RegistrationError, match="does not define the static method aggregate"):
        npf.register_metric("Thing", NoAggregate)
    with pytest.raises(RegistrationError, match="does not implement process_record"):
        npf.register_metric("Thing", NoProcess)
    with pytest.raises(RegistrationError, match="not usable"):
        npf.register_metric("__", MyCustomMetric)

    class NeedsArguments(MyCustomMetric):
        def __init__(self, k):
            super().__init__()

    class InstanceAggregate(MyCustomMetric):
        def aggregate(self, metrics):
            return 0

    with pytest.raises(RegistrationError, match=r"NeedsArguments\(\) needs k"):
        npf.register_metric("Thing", NeedsArguments)
    with pytest.raises(RegistrationError, match="must be a @staticmethod"):
        npf.register_metric("Thing", InstanceAggregate)
    assert "Thing" not in {row["name"] for row in metric_table()}


def test_register_metric_from_existing_passes_init_kwargs():
    # topk arrives with the torch plugin; the mechanism is the same for any metric.
    npf.register_metric_from_existing("precision", "precision_macro", average="macro")

    entry = get_metric("precision_macro")
    assert entry.value is get_metric("PositivePredictiveValue").value
    assert entry.description == "PositivePredictiveValue with average='macro'"
    metric = create_metric("precision_macro")
    metric.process_batch([0, 1, 2, 2], [0, 1, 1, 2])
    # per class precision: 1, 1, 0.5 -> macro 2.5 / 3; the binary default would give 1.0
    assert type(metric).aggregate([metric]) == pytest.approx(2.5 / 3)


@pytest.mark.usefixtures("only_builtins")
def test_register_metric_from_existing_checks_kwargs_and_names_now():
    with pytest.raises(RegistrationError, match="cannot be constructed with"):
        npf.register_metric_from_existing("precision", "precision_k", k=3)
    with pytest.raises(UnknownNameError, match="Unknown metric 'topk'"):
        npf.register_metric_from_existing("topk", "topk_3", k=3)
    with pytest.raises(RegistrationError, match="already registered"):
        npf.register_metric_from_existing("precision", "Recall", average="macro")


# -- registration by import path ------------------------------------------------------

LAZY_MODULE = """
    import builtins
    builtins.npf_lazy_imports = getattr(builtins, "npf_lazy_imports", 0) + 1

    from neuronperf_core import BaseEvalMetric

    class Matches(BaseEvalMetric):
        def __init__(self, scale=1):
            super().__init__()
            self.scale, self.hits = scale, 0

        def process_record(self, output, target):
            self.hits += self.scale * (output == target)

        @staticmethod
        def aggregate(metrics):
            return sum(m.hits for m in metrics)

    class NotAMetric:
        pass
"""

LAZY_PLUGIN = """
    from neuronperf_core import hookimpl

    @hookimpl
    def neuronperf_register_metrics(register):
        register("Matches", "npf_lazy_metrics:Matches", description="equal records",
                 aliases=("hits",))
        register("Missing", "npf_no_such_module:Thing", description="module not installed")
        register("NotMetric", "npf_lazy_metrics:NotAMetric", description="not a metric")
        register("Misspelt", "npf_lazy_metrics:Matchez", description="no such class")
"""


@pytest.fixture
def lazy_plugin(fake_site):
    import builtins

    fake_site.add_dist(
        "npf-lazy",
        "1.2",
        {"lazy": "npf_lazy_plugin"},
        {"npf_lazy_plugin": LAZY_PLUGIN, "npf_lazy_metrics": LAZY_MODULE},
    )
    builtins.npf_lazy_imports = 0
    yield fake_site
    del builtins.npf_lazy_imports


def test_a_metric_registered_by_import_path_is_imported_on_first_use(lazy_plugin):
    import builtins

    rows = {row["name"]: row for row in metric_table()}  # listing imports nothing
    assert rows["Matches"] == {
        "name": "Matches",
        "description": "equal records",
        "provider": "lazy",
    }
    assert rows["hits"]["description"] == "Alias for Matches"
    assert "npf_lazy_metrics" not in sys.modules and builtins.npf_lazy_imports == 0
    assert plugins.get_host().metrics.get("matches").import_path == "npf_lazy_metrics:Matches"

    metric = create_metric("hits")  # the alias resolves the entry it stands for
    metric.process_batch([1, 2, 3], [1, 0, 3])
    assert type(metric).aggregate([metric]) == 2
    cls = sys.modules["npf_lazy_metrics"].Matches
    assert get_metric("Matches").value is cls and get_metric("hits").value is cls
    assert resolve_metric("matches:scale=2") == ("matches:scale=2", cls, {"scale": 2})
    npf.register_metric_from_existing("Matches", "Matches_x3", scale=3)
    assert create_metric("matches_x3").scale == 3
    assert builtins.npf_lazy_imports == 1  # imported once, however many uses


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("Missing", "importing 'npf_no_such_module:Thing' failed with ModuleNotFoundError"),
        ("Misspelt", "importing 'npf_lazy_metrics:Matchez' failed with AttributeError"),
        ("NotMetric", "expected a subclass of neuronperf.BaseEvalMetric"),
    ],
)
def test_a_broken_import_path_fails_its_metric_only_naming_the_plugin(lazy_plugin, name, fragment):
    for use in (get_metric, create_metric, resolve_metric):
        with pytest.raises(PluginError) as raised:
            use(name)
        message = str(raised.value)
        assert f"metric {name!r}, registered by plugin 'lazy'" in message
        assert "distribution npf-lazy 1.2" in message and fragment in message
    with pytest.raises(PluginError, match=f"metric {name!r}, registered by plugin 'lazy'"):
        npf.register_metric_from_existing(name, "Variant")
    # The plugin stays active; its other metrics and everyone else's still work.
    (info,) = [p for p in plugins.get_host().plugins if p.name == "lazy"]
    assert info.status == "active"
    assert create_metric("Matches") is not None and create_metric("accuracy") is not None
    assert name in {row["name"] for row in metric_table()}


def test_an_import_path_is_checked_for_its_form_at_registration():
    with pytest.raises(RegistrationError, match="is not an import path"):
        npf.register_metric("Thing", "no colon here")
    with pytest.raises(RegistrationError, match="is not an import path"):
        npf.register_metric("Thing", "pkg.mod:Class()")
    assert "Thing" not in {row["name"] for row in metric_table()}


def test_register_metric_at_run_time_takes_an_import_path(tmp_path, monkeypatch):
    (tmp_path / "npf_runtime_metric.py").write_text(textwrap.dedent(LAZY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "npf_runtime_metric", raising=False)

    npf.register_metric("RuntimeMatches", "npf_runtime_metric:Matches")
    assert "npf_runtime_metric" not in sys.modules
    assert {"name": "RuntimeMatches", "description": "registered at run time"}.items() <= (
        next(r for r in metric_table() if r["name"] == "RuntimeMatches").items()
    )
    assert get_metric("runtime_matches").value is sys.modules["npf_runtime_metric"].Matches
    npf.register_metric("RuntimeBroken", "npf_runtime_metric:NotAMetric")
    with pytest.raises(PluginError, match=r"registered by runtime, cannot be used"):
        create_metric("RuntimeBroken")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter (with every plugin installed in this environment)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


HEAVY_CHECK = """
import sys
heavy = sorted(
    m for m in sys.modules
    if m.split(".")[0] in {"numpy", "torch"}
    or m.startswith(("neuronperf_core.benchmarking", "neuronperf_core.metrics.classification",
                     "neuronperf_core.reporting", "neuronperf_core.timing"))
)
assert not heavy, heavy
"""


def test_listing_metrics_imports_no_numpy_nor_the_engine():
    result = run_python(
        "import io, neuronperf\n"
        "neuronperf.list_metrics(file=io.StringIO())\n"
        "from neuronperf_core.metrics.registry import metric_table\n"
        "from neuronperf_core.plugins import get_host\n"
        "assert len(metric_table()) >= 22, metric_table()\n"
        "assert 'threads' in get_host().runners\n" + HEAVY_CHECK
    )
    assert result.returncode == 0, result.stderr


def test_import_neuronperf_imports_no_numpy_and_keeps_the_1x_names():
    result = run_python(
        "import neuronperf\n" + HEAVY_CHECK + "from neuronperf import (get_reports, "
        "print_reports, write_csv, write_json, Timer, timestamp_convert, model_index, "
        "BaseEvalMetric, DummyModel, benchmark, evaluate, set_verbosity, list_metrics, "
        "register_metric, register_metric_from_existing, cpu)\n"
        "import neuronperf_core.reporting as reporting, neuronperf_core.timing as timing\n"
        "assert get_reports is reporting.get_reports and Timer is timing.Timer\n"
        "assert model_index is sys.modules['neuronperf_core.model_index']\n"
        "assert cpu is sys.modules['neuronperf.cpu']\n"
        "assert set(neuronperf.__all__) <= set(dir(neuronperf))\n"
        "assert all(getattr(neuronperf, n) is not None for n in neuronperf.__all__)\n"
    )
    assert result.returncode == 0, result.stderr
