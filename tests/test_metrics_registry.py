"""The metric registry and the guide's user-facing metric functions."""

from __future__ import annotations

import io

import pytest

import neuronperf as npf
from neuronperf_core.errors import MetricError, RegistrationError, UnknownNameError
from neuronperf_core.metrics.registry import create_metric, get_metric, metric_table

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


def printed_table() -> str:
    out = io.StringIO()
    npf.list_metrics(file=out)
    return out.getvalue()


def test_list_metrics_prints_the_guides_table_with_corrected_formulas():
    assert printed_table() == GUIDE_TABLE


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


def test_register_metric_from_existing_checks_kwargs_and_names_now():
    with pytest.raises(RegistrationError, match="cannot be constructed with"):
        npf.register_metric_from_existing("precision", "precision_k", k=3)
    with pytest.raises(UnknownNameError, match="Unknown metric 'topk'"):
        npf.register_metric_from_existing("topk", "topk_3", k=3)
    with pytest.raises(RegistrationError, match="already registered"):
        npf.register_metric_from_existing("precision", "Recall", average="macro")
