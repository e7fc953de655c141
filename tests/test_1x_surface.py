"""NeuronPerf 1.x's public surface, as 1.x scripts use it.

Each test runs a script written as a 1.x user writes it (imports by module path,
positional arguments in 1.x's order, 1.x's return shapes) in a fresh interpreter, in a
folder of its own, and fails on the behaviour it guards. The scripts follow 1.x's own
tests (test/test_neuronperf.py) and examples, with shorter durations; what differs from
1.x on purpose is listed in docs/coming-from-neuronperf-1x.md.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import neuronperf as npf

SUMMARY = [
    "throughput_avg",
    "latency_ms_p50",
    "latency_ms_p99",
    "n_models",
    "pipeline_size",
    "workers_per_model",
    "batch_size",
    "model_filename",
]


def run_script(folder: Path, code: str, timeout: int = 180) -> str:
    """Run ``code`` as ``script.py`` in ``folder`` (its current directory); its stdout."""
    script = folder / "script.py"
    script.write_text(textwrap.dedent(code))
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=folder,
        # os.environ, not the C environment: pytest's readline exports COLUMNS=80 there,
        # and tables printed to a pipe keep their natural width only without COLUMNS
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def test_module_paths_of_1x_import_lazily_and_are_the_modules_npf_names(tmp_path: Path) -> None:
    run_script(
        tmp_path,
        """
        import sys

        import neuronperf

        heavy = sorted(
            m for m in sys.modules
            if m.split(".")[0] in {"numpy", "torch"}
            or m.startswith(("neuronperf_core.benchmarking", "neuronperf_core.reporting",
                             "neuronperf_core.timing", "neuronperf.benchmarking"))
        )
        assert not heavy, f"import neuronperf imported {heavy}"

        import neuronperf.benchmarking
        import neuronperf.cpu
        import neuronperf.model_index
        import neuronperf.reporting
        import neuronperf.timing
        from neuronperf.model_index import append, copy, create, delete, filter, load, move, save
        from neuronperf.reporting import get_reports, print_reports, write_csv, write_json
        from neuronperf.timing import Timer, timestamp_convert

        import neuronperf_core.model_index
        import neuronperf_core.reporting
        import neuronperf_core.timing

        # One module under both names: what one script patches, the other sees.
        assert neuronperf.model_index is neuronperf_core.model_index
        assert neuronperf.reporting is neuronperf_core.reporting
        assert neuronperf.timing is neuronperf_core.timing
        assert sys.modules["neuronperf.reporting"] is neuronperf_core.reporting
        assert (get_reports, print_reports, write_csv, write_json) == (
            neuronperf.get_reports, neuronperf.print_reports, neuronperf.write_csv,
            neuronperf.write_json)
        assert (Timer, timestamp_convert) == (neuronperf.Timer, neuronperf.timestamp_convert)
        assert (create, load, save) == (
            neuronperf.model_index.create, neuronperf.model_index.load,
            neuronperf.model_index.save)
        assert neuronperf.benchmarking.benchmark is neuronperf.benchmark
        assert neuronperf.benchmarking.set_verbosity is neuronperf.set_verbosity
        assert neuronperf.cpu.DummyModel is neuronperf.DummyModel
        try:
            neuronperf.benchmarking.compile
        except AttributeError as e:
            assert "npf.torch.compile" in str(e), e
        else:
            raise AssertionError("neuronperf.benchmarking.compile should say where it went")
        """,
    )
    # 1.x's package imported its modules, so they were attributes without an import.
    run_script(
        tmp_path,
        """
        import neuronperf as npf

        assert npf.reporting.get_reports is npf.get_reports
        assert npf.timing.Timer is npf.Timer
        assert npf.benchmarking.benchmark is npf.benchmark
        assert npf.model_index.create is npf.model_index.create
        import neuronperf.reporting
        assert neuronperf.reporting is npf.reporting
        """,
    )


def test_benchmarking_benchmark_takes_1x_positional_arguments(tmp_path: Path) -> None:
    # 1.x's test_benchmark_multithread_2, through neuronperf.benchmarking, batch_sizes,
    # duration and n_models given by position as 1.x scripts may.
    run_script(
        tmp_path,
        """
        import math

        import neuronperf.benchmarking

        dummy_model = lambda x: None
        dummy_load = lambda path, device_id: dummy_model
        reports = neuronperf.benchmarking.benchmark(
            dummy_load, "dummy_filename", [[1]], [1], 0.3, 1,
            multiprocess=False, multiinterpreter=False, verbosity=0,
        )

        # One config, workers_per_model [1, 2] by default: two reports.
        assert isinstance(reports, list) and len(reports) == 2, reports
        assert [r["workers_per_model"] for r in reports] == [1, 2]
        for report in reports:
            assert isinstance(report, dict)
            assert not report["multiprocess"] and not report["multiinterpreter"]
            assert report["status"] == "finished"
            assert report["total_infs"] > 100
            assert report["duration"] == 0.3 and report["n_models"] == 1
            assert report["batch_size"] == 1
            assert report["model_name"] == "dummy_filename"
            # 1.x's throughput_avg was NaN on runs shorter than about 3 s.
            assert math.isfinite(report["throughput_avg"]) and report["throughput_avg"] > 0
        """,
    )


def test_cpu_benchmark_return_timers_and_reports_as_1x_test_reporting(tmp_path: Path) -> None:
    out = run_script(
        tmp_path,
        """
        import json

        import numpy as np

        import neuronperf
        import neuronperf.cpu

        benchmarker_results = neuronperf.cpu.benchmark(
            neuronperf.DummyModel,
            [np.array([1, 2, 3, 4])],
            n_models=[1],
            workers_per_model=2,
            duration=0.3,
            verbosity=0,
            return_timers=True,
        )
        # [(config, results), ...]: one per config.
        assert len(benchmarker_results) == 1
        config, results = benchmarker_results[0]
        assert isinstance(config, dict) and isinstance(results, dict)
        assert config["multiprocess"] and not config["multiinterpreter"]
        assert config["model_name"] == "DummyModel" and config["batch_size"] == 1
        assert results["status"] == "finished"
        assert results["n_infs"] > 100
        assert "cpu_percents" in results and "mem_percents" in results
        timers = results["timers"]
        for name in ("env_setup", "setup", "load", "input", "warmup", "preprocess", "infer",
                     "postprocess", "e2e", "worker"):
            assert name in timers, name
        assert len(timers["load"]) == 1 and len(timers["e2e"]) == 2  # per copy, per worker
        e2e = timers["e2e"][0]
        assert len(e2e) > 50 and e2e.avg("ms") > 0
        assert abs(e2e.total_duration("s") - e2e.durations("s").sum()) < 1e-9
        assert timers["preprocess"][0].avg("ms") == 0  # not timed: 0, as in 1.x

        reports = neuronperf.get_reports(benchmarker_results)
        assert len(reports) == len(benchmarker_results)
        assert all("total_infs" in report for report in reports)
        assert reports[0]["total_infs"] == results["n_infs"]

        neuronperf.print_reports(reports)
        csv_file = neuronperf.write_csv(reports)
        json_file = neuronperf.write_json(reports)
        with open(json_file, "rt") as fp:
            assert json.load(fp)[0]["total_infs"] == reports[0]["total_infs"]
        print("FILES", csv_file, json_file)
        """,
    )
    lines = out.splitlines()
    # print_reports: the summary columns, then the sort_by column it sorted on.
    assert lines[0].split() == [*SUMMARY, "throughput_peak"]
    assert "DummyModel" in lines[2]
    csv_file, json_file = lines[-1].split()[1:]
    assert re.fullmatch(r"DummyModel\.results-\d{8}-\d{6}\.csv", csv_file), csv_file
    assert re.fullmatch(r"DummyModel\.results-\d{8}-\d{6}\.json", json_file), json_file
    with (tmp_path / csv_file).open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["model_name"] == "DummyModel" and row["n_models"] == "1"
    assert row["cost_per_1m_inf"] == ""  # missing values: empty cells (1.x wrote N/A)


def test_print_reports_sorts_by_its_default_sort_by_and_write_csv_keeps_cols(
    tmp_path: Path,
) -> None:
    out = run_script(
        tmp_path,
        """
        from neuronperf.reporting import print_reports, write_csv

        reports = [
            {"model_name": "m", "throughput_avg": 3.0, "throughput_peak": 30.0},
            {"model_name": "m", "throughput_avg": 1.0, "throughput_peak": 10.0},
            {"model_name": "m", "throughput_avg": 2.0, "throughput_peak": 20.0},
        ]
        print_reports(reports, ["throughput_avg"])
        print_reports(reports, ["throughput_avg"], "throughput_avg", True)
        print_reports(reports, ["throughput_avg"], "throughput_avg", False)
        print(write_csv(reports, "out.csv", ["model_name", "throughput_avg"]))
        """,
    )
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["throughput_avg", "throughput_peak"]
    assert [row[1] for row in lines[2:5]] == ["30.000", "20.000", "10.000"]  # best first
    assert lines[5] == ["throughput_avg"]
    assert [row[0] for row in lines[7:10]] == ["3.000", "2.000", "1.000"]  # reverse=True
    assert [row[0] for row in lines[12:15]] == ["1.000", "2.000", "3.000"]  # reverse=False
    assert lines[15] == ["out.csv"]
    assert (tmp_path / "out.csv").read_text().splitlines() == [
        "model_name,throughput_avg",
        "m,3.0",
        "m,1.0",
        "m,2.0",
    ]


def test_model_index_functions_as_1x_tests_use_them(tmp_path: Path) -> None:
    # 1.x's model index tests, one after the other, in one folder.
    run_script(
        tmp_path,
        """
        import os
        import pathlib
        import shutil

        import neuronperf
        import neuronperf.model_index

        # create from a file
        index = neuronperf.model_index.create("dummy_model.ext", model_name="dummy")
        assert index["model_name"] == "dummy"
        assert len(index["model_configs"]) == 1
        assert index["model_configs"][0]["filename"] == "dummy_model.ext"
        config = index["model_configs"][0]
        assert (config["input_idx"], config["batch_size"], config["pipeline_size"]) == (0, 1, 1)
        assert config["compile_s"] is None and config["status"] == "finished"
        # 1.x's documented positional order: filename, input_idx, batch_size, pipeline_size
        config = neuronperf.model_index.create("m.pt", 1, 8, 1)["model_configs"][0]
        assert (config["input_idx"], config["batch_size"]) == (1, 8)

        # create, save, load, delete
        filename = "dummy_index.json"
        model_filename = os.path.join("models", "dummy.model")
        model_index = neuronperf.model_index.create(model_filename, model_name="Dummy")
        assert neuronperf.model_index.save(model_index, filename=filename) == filename
        assert os.path.exists(filename)
        loaded = neuronperf.model_index.load(filename)
        assert loaded == model_index
        assert loaded["model_name"] == "Dummy"
        assert loaded["model_configs"][0]["batch_size"] == 1
        neuronperf.model_index.delete(filename)
        assert not os.path.exists(filename)

        # save without a filename: {model_name}_{8 chars}.json, returned
        saved = neuronperf.model_index.save(model_index)
        assert saved.startswith("Dummy_") and saved.endswith(".json") and len(saved) == 19
        os.remove(saved)

        # copy, from an index dict and from a file
        os.makedirs("models", exist_ok=True)
        pathlib.Path(model_filename).touch()
        neuronperf.model_index.save(model_index, filename=filename)
        for source in (model_index, filename):
            assert neuronperf.model_index.copy(source, "new_index.json", "new_models") == (
                "new_index.json")
            assert os.path.exists(model_filename)
            assert os.path.exists(os.path.join("new_models", "dummy.model"))
            new_index = neuronperf.model_index.load("new_index.json")
            assert new_index["model_configs"][0]["filename"] == os.path.join(
                "new_models", "dummy.model")
            neuronperf.model_index.delete("new_index.json")
            assert not os.path.exists(os.path.join("new_models", "dummy.model"))
            shutil.rmtree("new_models")

        # move: copy, then delete the old index and its models
        assert neuronperf.model_index.move(filename, "new_index.json", "new_models") == (
            "new_index.json")
        assert not os.path.exists(filename)
        assert not os.path.exists(model_filename)
        assert os.path.exists(os.path.join("new_models", "dummy.model"))
        new_index = neuronperf.model_index.load("new_index.json")
        assert new_index["model_configs"][0]["filename"] == os.path.join(
            "new_models", "dummy.model")
        neuronperf.model_index.delete("new_index.json")

        # append: every config, the first index's name, duplicates dropped
        indexes = [neuronperf.model_index.create(f"Dummy_{x}", model_name="Dummy")
                   for x in range(10)]
        combined = neuronperf.model_index.append(*indexes)
        assert len(combined["model_configs"]) == len(indexes)
        assert all(1 == c["batch_size"] for c in combined["model_configs"])
        indexes = [neuronperf.model_index.create("Dummy") for _ in range(10)]
        assert len(neuronperf.model_index.append(*indexes)["model_configs"]) == 1

        # filter: on any key, a value or a list of values; None filters nothing
        idx_1 = neuronperf.model_index.create("fake", performance_level=2, compile_s=1)
        idx_2 = neuronperf.model_index.create("fake2", compile_s=2)
        idx = neuronperf.model_index.append(idx_1, idx_2)
        filtered = neuronperf.model_index.filter(idx, filename="fake")
        assert 1 == len(filtered["model_configs"])
        assert "fake" == filtered["model_name"]
        filtered = neuronperf.model_index.filter(idx, performance_level=2)
        assert 1 == len(filtered["model_configs"])
        assert 2 == len(neuronperf.model_index.filter(idx, compile_s=None)["model_configs"])
        assert 2 == len(neuronperf.model_index.filter(idx, compile_s=[1, 2])["model_configs"])
        """,
    )


def test_timer_and_timestamp_convert_as_1x_tests_use_them(tmp_path: Path) -> None:
    run_script(
        tmp_path,
        """
        import time

        import numpy as np

        import neuronperf
        from neuronperf.timing import Timer, timestamp_convert

        timer = neuronperf.Timer()
        with timer:
            time.sleep(0.05)
        assert 0.04 < timer.total_duration("s") < 1.0
        assert (timer.total_duration("ns") > timer.total_duration("us")
                > timer.total_duration("ms") > timer.total_duration("s"))
        assert abs(timer.total_duration("s") - timer.durations("s").sum()) < 1e-9
        for _ in range(10):
            with timer:
                time.sleep(0.001)
        assert len(timer) == 11
        timestamps = timer.timestamps()
        for pair in timestamps:
            assert 2 == len(pair)
            assert pair[1] > pair[0]
        assert len(timer) == len(timestamps)
        assert timer.timestamps("ms")[0][0] == timestamps[0][0] * 1000
        assert timer.durations("ms").shape == (11,)
        assert abs(timer.avg("ms") - timer.total_duration("ms") / 11) < 1e-6

        # start / stop / reset, and a timer in another clock's unit
        t = Timer(time.perf_counter_ns, "ns")
        t.start()
        time.sleep(0.01)
        t.stop()
        assert len(t) == 1 and 5 < t.avg("ms") < 500
        t.reset()
        assert len(t) == 0 and t.avg("s") == 0  # 1.x: 0 for a timer with no interval
        assert t.total_duration("s") == 0

        # timestamp_convert: scalars and arrays
        assert abs(timestamp_convert(1, "s", "ms") - 1000) < 1e-9
        assert abs(neuronperf.timestamp_convert(1500, "ms", "s") - 1.5) < 1e-12
        assert abs(neuronperf.timestamp_convert(2.3, "s", "us") - 2.3e6) < 1e-6
        times_ms = neuronperf.timestamp_convert(np.array([1, 2, 3]), "s", "ms")
        assert times_ms[0] == 1000 and times_ms.shape == (3,)
        try:
            timestamp_convert(1, "s", "min")
        except ValueError:
            pass  # 1.x raised ValueError too
        else:
            raise AssertionError("an unknown unit should raise ValueError")
        """,
    )


def test_metrics_verbosity_and_evaluate_as_the_guide_writes_them(tmp_path: Path) -> None:
    out = run_script(
        tmp_path,
        """
        import neuronperf as npf

        for verbosity in (0, 1, 2):
            npf.set_verbosity(verbosity)
        npf.set_verbosity(0)

        npf.list_metrics()

        class MyCustomMetric(npf.BaseEvalMetric):
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

        npf.register_metric("MyCustomMetric", MyCustomMetric)
        npf.register_metric_from_existing("accuracy", "accuracy_copy")

        model = lambda x: x % 2
        dataset = [(i, i % 2 if i < 6 else 1 - i % 2) for i in range(8)]  # 6 of 8 right
        (report,) = npf.cpu.evaluate(model, dataset, metrics=["accuracy", "MyCustomMetric"],
                                     verbosity=0)
        assert report["accuracy"] == 0.75 and report["MyCustomMetric"] == 0.75, report
        # the target in another column, by position: metrics, eval_target_col
        swapped = [(t, x) for x, t in dataset]
        (report,) = npf.cpu.evaluate(model, swapped, "Accuracy", 0, verbosity=0)
        assert report["Accuracy"] == 0.75, report
        # benchmark(..., eval_metrics=[...]) as the guide's first example
        reports = npf.cpu.benchmark(model, dataset, n_models=1, workers_per_model=2,
                                    duration=0, eval_metrics=["accuracy", "accuracy_copy"],
                                    verbosity=0)
        assert [r["accuracy"] for r in reports] == [0.75], reports
        assert reports[0]["accuracy_copy"] == 0.75
        # npf.evaluate with 1.x's load_fn and model_filename
        load_fn = lambda model_filename, device_id=0: model
        (report,) = npf.evaluate(load_fn, "my_model", dataset, "accuracy", verbosity=0)
        assert report["accuracy"] == 0.75 and report["model_name"] == "my_model"
        """,
    )
    table = {line.split()[0]: " ".join(line.split()[1:]) for line in out.splitlines()[1:]}
    assert out.splitlines()[0].split() == ["Name", "Description"]
    assert table["Accuracy"] == "(TP + TN) / (TP + TN + FP + FN)"
    # The guide's table printed these two wrong; neuronperf computes and lists the right ones.
    assert table["FalseDiscoveryRate"] == "FP / (FP + TP)"
    assert table["FalseOmissionRate"] == "FN / (FN + TN)"


def test_torch_compile_benchmark_evaluate_as_1x_examples_on_cpu(tmp_path: Path) -> None:
    pytest.importorskip("neuronperf_torch")
    out = run_script(
        tmp_path,
        """
        import torch

        import neuronperf as npf
        import neuronperf.torch


        class Model(torch.nn.Module):
            def forward(self, x):
                x = x * 3
                return x + 1


        model = Model()
        model.eval()
        batch_sizes = [1, 2]
        inputs = [torch.ones((batch_size, 3, 8, 8)) for batch_size in batch_sizes]
        filename = "model.json"

        # Compile, benchmark, view and save: 1.x's example, on the CPU.
        index = npf.torch.compile(model, inputs, batch_sizes=batch_sizes, filename=filename,
                                  device_type="cpu")
        assert index == filename
        configs = npf.model_index.load(index)["model_configs"]
        assert [(c["batch_size"], c["input_idx"], c["status"]) for c in configs] == [
            (1, 0, "finished"), (2, 1, "finished")]
        reports = npf.torch.benchmark(filename, inputs, batch_sizes, 0.3, 1,
                                      workers_per_model=1, multiprocess=False,
                                      device_type="cpu", verbosity=0)
        assert [(r["batch_size"], r["status"]) for r in reports] == [
            (1, "finished"), (2, "finished")], reports
        npf.print_reports(reports)
        assert npf.write_csv(reports, "model_results.csv") == "model_results.csv"
        assert npf.write_json(reports, "model_results.json") == "model_results.json"

        # A traced model saved by path, benchmarked by path (1.x's TorchScript example).
        traced = torch.jit.trace(model, inputs[0])
        traced.save("model_b1.pt")
        reports = npf.torch.benchmark("model_b1.pt", [inputs[0]], [1], 0.3, 1,
                                      workers_per_model=1, multiprocess=False,
                                      device_type="cpu", verbosity=0)
        assert len(reports) == 1 and reports[0]["status"] == "finished", reports

        # The evaluation guide, on a model compiled for batch size 1.
        class Classifier(torch.nn.Module):
            def forward(self, x):
                return (x.sum(dim=1) > 0).long()

        index = npf.torch.compile(Classifier(), [torch.ones(1, 4)], batch_sizes=[1],
                                  filename="classifier.json", device_type="cpu")
        dataset = [(torch.full((1, 4), 1.0 if i % 4 else -1.0), torch.tensor([1]))
                   for i in range(8)]  # 6 of 8 predicted 1
        reports = npf.torch.benchmark(index, dataset, n_models=1, workers_per_model=2,
                                      duration=0, eval_metrics=["accuracy", "precision"],
                                      device_type="cpu", verbosity=0)
        assert reports[0]["accuracy"] == 0.75 and reports[0]["precision"] == 1.0, reports
        (report,) = npf.torch.evaluate(index, dataset, metrics=["accuracy", "precision"],
                                       device_type="cpu", verbosity=0)
        assert report["accuracy"] == 0.75, report
        swapped = [(target, x) for x, target in dataset]
        (report,) = npf.torch.evaluate(index, swapped, metrics="accuracy", eval_target_col=0,
                                       device_type="cpu", verbosity=0)
        assert report["accuracy"] == 0.75, report
        npf.register_metric_from_existing("topk", "topk_3", k=3)
        print("DONE")
        """,
        timeout=300,
    )
    assert out.splitlines()[0].split() == [*SUMMARY, "throughput_peak"]
    assert out.splitlines()[-1] == "DONE"
    rows = json.loads((tmp_path / "model_results.json").read_text())
    assert [r["batch_size"] for r in rows] == [1, 2]


# -- 1.x behaviours the core keeps ---------------------------------------------------------


def test_print_reports_of_nothing_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    npf.print_reports([])  # a run stopped before its first config
    assert "No reports were found" in capsys.readouterr().out


def test_timer_iterates_start_stop_pairs() -> None:
    timer = npf.Timer()
    with timer:
        pass
    ((start, stop),) = list(timer)
    assert stop >= start


def test_model_index_save_appends_json_and_delete_of_a_missing_index_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = npf.model_index.create("m.pt", batch_size=1)
    written = npf.model_index.save(index, tmp_path / "idx")
    assert written.endswith("idx.json") and Path(written).is_file()
    npf.model_index.delete(tmp_path / "gone.json")  # already gone: not an error
    assert "does not exist" in caplog.text


def test_the_index_inputs_with_batch_sizes_selecting_one_config(tmp_path: Path) -> None:
    index = npf.model_index.append(
        npf.model_index.create("b1", input_idx=0, batch_size=1),
        npf.model_index.create("b4", input_idx=1, batch_size=4),
    )
    path = npf.model_index.save(index, tmp_path / "m.json")
    seen: list[tuple[str, int]] = []

    def load_fn(filename: str, device_id: int = 0) -> Any:
        return lambda x: seen.append((Path(filename).name, len(x)))

    inputs = [np.zeros((1, 2)), np.zeros((4, 2))]  # every input of the index, as in 1.x
    (report,) = npf.benchmark(
        load_fn, path, inputs, batch_sizes=[4], duration=0, n_models=1, workers_per_model=1,
        multiprocess=False, device_type="cpu", results_dir=None, verbosity=0,
    )  # fmt: skip
    assert report["status"] == "finished", report["error"]
    assert set(seen) == {("b4", 4)}
