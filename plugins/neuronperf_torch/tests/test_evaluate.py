"""npf.torch.evaluate on CPU: torch datasets and loaders, shards, batch sizes, metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from neuronperf_torch.errors import InputShapeError, TorchArgumentError
from npt_helpers import CountingCollate, LabelFirst, Records, Stream, make_data, make_model
from torch.utils.data import DataLoader

import neuronperf as npf

THREADS = {"multiprocess": False, "results_dir": None, "verbosity": 0, "stats_interval": 0}


def expected(n: int, k: int = 1) -> float:
    """Top-k accuracy of the eager model on the first n records."""
    x, y = make_data(24)
    with torch.inference_mode():
        logits = make_model()(x[:n])
    top = logits.topk(k, 1).indices
    return float((top == y[:n, None]).any(1).float().mean())


def by_batch(reports: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    for report in reports:
        assert report["status"] == "finished", report["error"]
    return {r["batch_size"]: r for r in reports}


def test_the_guides_call_runs_as_written(cpu_index) -> None:  # type: ignore[no-untyped-def]
    """Default runner (fresh interpreters), n_models=1, 2 workers, every record once."""
    npf.register_metric_from_existing("topk", "topk_3", k=3)
    reports = by_batch(
        npf.torch.evaluate(
            cpu_index.index,
            Records(24),
            metrics=["accuracy", "topk", "topk_3"],
            results_dir=None,
            verbosity=0,
        )
    )
    for batch in (1, 4):
        report = reports[batch]
        assert report["multiinterpreter"] is True
        assert (report["n_models"], report["workers_per_model"]) == (1, 2)
        assert report["total_infs"] * batch == 24  # every record, each once
        assert report["accuracy"] == pytest.approx(expected(24))
        assert report["topk"] == pytest.approx(expected(24))
        assert report["topk_3"] == pytest.approx(expected(24, k=3))
    assert 0.3 < reports[1]["accuracy"] < 0.9  # type: ignore[operator]


def test_iterable_dataset_and_dataloader_kwargs(cpu_index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "collate.txt"
    reports = by_batch(
        npf.torch.evaluate(
            cpu_index.index,
            Stream(24),
            metrics=["accuracy", "topk"],
            dataloader_kwargs={"collate_fn": CountingCollate(str(log))},
            **THREADS,
        )
    )
    for batch in (1, 4):
        assert reports[batch]["total_infs"] * batch == 24
        assert reports[batch]["accuracy"] == pytest.approx(expected(24))
    sizes = [int(line.split()[1]) for line in log.read_text().splitlines()]
    assert 1 in sizes and 4 in sizes  # the user's collate_fn built the batches


def test_a_dataloader_is_used_as_it_is_and_sharded(cpu_index) -> None:  # type: ignore[no-untyped-def]
    loader = DataLoader(Records(22), batch_size=4, shuffle=True)  # 5 full batches + 2 records
    (report,) = npf.torch.evaluate(
        cpu_index.index,
        loader,
        metrics=["accuracy", "topk"],
        batch_sizes=[4],
        workers_per_model=3,
        **THREADS,
    )
    assert report["status"] == "finished", report["error"]
    assert report["total_infs"] == 5  # the shards cover each full batch exactly once
    assert report["accuracy"] == report["topk"]
    x, y = make_data(22)
    with torch.inference_mode():
        correct = (make_model()(x).argmax(1) == y).numpy()
    # 20 of the 22 records were scored: the accuracy is a mean over some 20 of them
    assert report["accuracy"] * 20 == pytest.approx(round(report["accuracy"] * 20))
    assert correct.sum() - 2 <= report["accuracy"] * 20 <= correct.sum()


def test_a_dataloader_of_another_batch_size_is_refused(cpu_index) -> None:  # type: ignore[no-untyped-def]
    loader = DataLoader(Records(8), batch_size=2)
    with pytest.raises(InputShapeError, match="DataLoader has batch_size=2, but this config"):
        npf.torch.evaluate(cpu_index.index, loader, **THREADS)


def test_plain_rows_and_target_first(cpu_index) -> None:  # type: ignore[no-untyped-def]
    x, y = make_data(24)
    rows = [(x[i : i + 4], y[i : i + 4]) for i in range(0, 24, 4)]
    (report,) = npf.torch.evaluate(
        cpu_index.index, rows, metrics="accuracy", batch_sizes=4, **THREADS
    )
    assert report["accuracy"] == pytest.approx(expected(24)) and report["total_infs"] == 6

    generator = ((y[i : i + 1], x[i : i + 1]) for i in range(24))  # one-shot, target first
    (report,) = npf.torch.evaluate(
        cpu_index.index, generator, metrics="accuracy", eval_target_col=0, batch_sizes=1, **THREADS
    )
    assert report["accuracy"] == pytest.approx(expected(24)) and report["total_infs"] == 24

    reports = by_batch(
        npf.torch.evaluate(cpu_index.index, LabelFirst(24), eval_target_col=0, **THREADS)
    )
    assert reports[4]["accuracy"] == pytest.approx(expected(24))


def test_records_that_do_not_fill_a_batch_are_reported(cpu_index, caplog) -> None:  # type: ignore[no-untyped-def]
    reports = by_batch(npf.torch.evaluate(cpu_index.index, Records(23), **THREADS))
    assert reports[1]["total_infs"] == 23 and reports[4]["total_infs"] == 5
    assert reports[4]["accuracy"] == pytest.approx(expected(20))
    assert "3 records of 23 are not scored at batch size 4" in caplog.text


def test_errors_before_loading(cpu_index) -> None:  # type: ignore[no-untyped-def]
    x, y = make_data(8)
    with pytest.raises(InputShapeError, match=r"first batch \(for batch size 4\).*shape \[1, 3"):
        npf.torch.evaluate(cpu_index.index, [(x[:1], y[:1])], batch_sizes=4, **THREADS)
    one_shot = iter([(x[:1], y[:1])])
    with pytest.raises(TorchArgumentError, match="one-shot iterator, and the configs have"):
        npf.torch.evaluate(cpu_index.index, one_shot, **THREADS)
    with pytest.raises(TorchArgumentError, match="may not set batch_size, shuffle"):
        npf.torch.evaluate(
            cpu_index.index, Records(8), dataloader_kwargs={"batch_size": 2, "shuffle": 1}
        )
    with pytest.raises(TorchArgumentError, match="eval_target_col=5 is out of range"):
        npf.torch.evaluate(cpu_index.index, Records(8), eval_target_col=5, **THREADS)
    with pytest.raises(TorchArgumentError, match="the dataset is empty"):
        npf.torch.evaluate(cpu_index.index, [], batch_sizes=1, **THREADS)
    with pytest.raises(TorchArgumentError, match="tuple\\(\\*INPUTS, TARGET\\)"):
        npf.torch.evaluate(cpu_index.index, [x[:1]], batch_sizes=1, **THREADS)


def test_metric_errors_fail_the_config_with_the_reason(cpu_index) -> None:  # type: ignore[no-untyped-def]
    x, _ = make_data(4)
    rows = [(x, torch.tensor([0, 1, 2, 9]))]  # class 9 does not exist
    (report,) = npf.torch.evaluate(cpu_index.index, rows, metrics="topk", batch_sizes=4, **THREADS)
    assert report["status"] == "error"
    assert "target class 9 is outside 0..4" in report["error"]
    assert np.isnan(report.get("topk", np.nan))
