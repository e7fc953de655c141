"""npf.torch.evaluate on CPU: torch datasets and loaders, shards, batch sizes, metrics."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from neuronperf_torch.data import fit
from neuronperf_torch.errors import InputShapeError, TorchArgumentError
from npt_helpers import CountingCollate, LabelFirst, Records, Stream, make_data, make_model
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

import neuronperf as npf

THREADS = {"multiprocess": False, "results_dir": None, "verbosity": 0, "stats_interval": 0}
N = 70  # records: not a multiple of the compiled batch size 4 (17 batches and 2 records)


def expected(n: int, k: int = 1) -> float:
    """Top-k accuracy of the eager model on the first n records."""
    x, y = make_data(24)
    with torch.inference_mode():
        logits = make_model()(x[:n])
    top = logits.topk(k, 1).indices
    return float((top == y[:n, None]).any(1).float().mean())


def hand_accuracy(n: int) -> float:
    """Accuracy of the eager model on all ``n`` records of ``make_data(n)``, by hand."""
    x, y = make_data(n)
    with torch.inference_mode():
        return float((make_model()(x).argmax(1) == y).float().mean())


def by_batch(reports: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    for report in reports:
        assert report["status"] == "finished", report["error"]
    return {r["batch_size"]: r for r in reports}


class Seen(npf.BaseEvalMetric):
    """The targets each worker scored, as ints; aggregate: one sorted list per worker (a
    module-level class, so spawned interpreters can unpickle it)."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[int] = []

    def process_record(self, output: Any = None, target: Any = None) -> None:
        self.targets.append(int(target))

    def process_batch(self, outputs: Any, targets: Any) -> None:
        assert len(outputs) == len(targets)
        self.targets.extend(int(t) for t in targets)

    @staticmethod
    def aggregate(metrics: Iterable[npf.BaseEvalMetric]) -> list[list[int]]:
        return [sorted(m.targets) for m in metrics if isinstance(m, Seen)]


class IdStream(IterableDataset):  # type: ignore[type-arg]
    """Iterable: (image, record id) for ``make_data(n)``."""

    def __init__(self, n: int) -> None:
        self.x, _ = make_data(n)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter(zip(self.x, torch.arange(len(self.x)), strict=True))


KINDS = ["tensors", "dataset", "loader", "iterable", "rows", "generator"]


def dataset_of(kind: str, n: int, batch: int, ids: bool = False) -> Any:
    """``make_data(n)`` as ``kind``, its targets the labels, or record ids with ``ids``."""
    x, y = make_data(n)
    if ids:
        y = torch.arange(n)
    if kind == "tensors":
        return TensorDataset(x, y)
    if kind == "dataset":
        records = Records(n)
        records.y = y
        return records
    if kind == "loader":
        return DataLoader(TensorDataset(x, y), batch_size=batch)  # its last batch is short
    if kind == "iterable":
        return IdStream(n) if ids else Stream(n)
    rows = [(x[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)]  # last short
    return rows if kind == "rows" else iter(rows)


def evaluate_with_seen(data: Any, metrics: list[str], **options: Any) -> dict[str, Any]:
    npf.register_metric("seen", Seen, replace=True)
    options = {**THREADS, **options}
    (report,) = npf.torch.evaluate(options.pop("index"), data, metrics=metrics, **options)
    assert report["status"] == "finished", report["error"]
    return report


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("kind", KINDS)
def test_every_record_is_scored(cpu_index, kind: str, workers: int) -> None:  # type: ignore[no-untyped-def]
    """70 records at batch size 4: the last batch of 2 is padded, and its 2 records scored."""
    report = evaluate_with_seen(
        dataset_of(kind, N, 4),
        ["accuracy", "seen"],
        index=cpu_index.index,
        batch_sizes=[4],
        workers_per_model=workers,
    )
    assert report["total_infs"] == 18  # 17 full batches and the padded one
    assert sum(len(scored) for scored in report["seen"]) == N
    assert report["accuracy"] == pytest.approx(hand_accuracy(N))


@pytest.mark.parametrize("kind", KINDS)
def test_each_record_goes_to_exactly_one_worker(cpu_index, kind: str) -> None:  # type: ignore[no-untyped-def]
    report = evaluate_with_seen(
        dataset_of(kind, N, 4, ids=True),
        ["seen"],
        index=cpu_index.index,
        batch_sizes=[4],
        workers_per_model=2,
    )
    first, second = report["seen"]
    assert sorted(first + second) == list(range(N))  # every record once, by one worker
    if kind in ("tensors", "dataset", "loader", "rows"):  # sharded: batches 0, 2, ... and 1, 3, ...
        assert first == [i for i in range(N) if i // 4 % 2 == 0]
        assert second == [i for i in range(N) if i // 4 % 2 == 1]


@pytest.mark.slow
def test_every_record_once_in_fresh_interpreters(cpu_index) -> None:  # type: ignore[no-untyped-def]
    """The interpreters runner: 2 copies x 2 workers, each reading its own shard of a
    TensorDataset; then the labels, for the accuracy."""
    options = {"index": cpu_index.index, "batch_sizes": [4], "n_models": 2}
    options.update(workers_per_model=2, multiinterpreter=True, multiprocess=True)
    report = evaluate_with_seen(dataset_of("tensors", N, 4, ids=True), ["seen"], **options)
    assert report["multiinterpreter"] is True
    shards = report["seen"]
    assert len(shards) == 4 and sorted(i for s in shards for i in s) == list(range(N))
    for shard, scored in enumerate(shards):  # copy c's worker w reads shard 2 c + w of 4
        assert scored == [i for i in range(N) if i // 4 % 4 == shard]
    report = evaluate_with_seen(dataset_of("dataset", N, 4), ["accuracy", "seen"], **options)
    assert sum(len(s) for s in report["seen"]) == N
    assert report["accuracy"] == pytest.approx(hand_accuracy(N))


def test_the_guides_call_runs_as_written(cpu_index) -> None:  # type: ignore[no-untyped-def]
    """The default runner (EVALUATE_DEFAULTS: one copy, one worker, threads here)."""
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
        assert (report["multiprocess"], report["multiinterpreter"]) == (False, False)
        assert (report["n_models"], report["workers_per_model"]) == (1, 1)
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
            Stream(23),
            metrics=["accuracy", "topk"],
            dataloader_kwargs={"collate_fn": CountingCollate(str(log))},
            **THREADS,
        )
    )
    assert reports[1]["total_infs"] == 23 and reports[4]["total_infs"] == 6
    for batch in (1, 4):
        assert reports[batch]["accuracy"] == pytest.approx(hand_accuracy(23))
    sizes = [int(line.split()[1]) for line in log.read_text().splitlines()]
    assert 1 in sizes and 4 in sizes and 3 in sizes  # the user's collate_fn built the batches


def test_a_dataset_with_a_collate_fn_is_batched_by_it(cpu_index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A TensorDataset is sliced, unless the user's collate_fn is to build the batches."""
    log = tmp_path / "collate.txt"
    (report,) = npf.torch.evaluate(
        cpu_index.index,
        dataset_of("tensors", 23, 4),
        batch_sizes=[4],
        dataloader_kwargs={"collate_fn": CountingCollate(str(log))},
        **THREADS,
    )
    assert report["total_infs"] == 6
    assert report["accuracy"] == pytest.approx(hand_accuracy(23))
    sizes = [int(line.split()[1]) for line in log.read_text().splitlines()]
    assert sizes.count(4) >= 5 and 3 in sizes


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
    assert report["total_infs"] == 6  # the shards cover each batch exactly once
    assert report["accuracy"] == report["topk"] == pytest.approx(hand_accuracy(22))


def test_a_shuffled_loader_over_a_tensor_dataset(cpu_index) -> None:  # type: ignore[no-untyped-def]
    """Gathered by index (not sliced): the same records, in the sampler's order."""
    x, y = make_data(N)
    loader = DataLoader(TensorDataset(x, torch.arange(N)), batch_size=4, shuffle=True)
    report = evaluate_with_seen(loader, ["seen"], index=cpu_index.index, batch_sizes=[4])
    assert report["seen"] == [list(range(N))]
    loader = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True)
    (report,) = npf.torch.evaluate(cpu_index.index, loader, batch_sizes=[4], **THREADS)
    assert report["accuracy"] == pytest.approx(hand_accuracy(N))


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
        npf.torch.evaluate(cpu_index.index, LabelFirst(23), eval_target_col=0, **THREADS)
    )
    assert reports[4]["accuracy"] == pytest.approx(hand_accuracy(23))
    assert reports[4]["total_infs"] == 6


def test_rows_with_list_targets_are_padded(cpu_index) -> None:  # type: ignore[no-untyped-def]
    x, y = make_data(N)
    rows = [(x[i : i + 4], y[i : i + 4].tolist()) for i in range(0, N, 4)]
    (report,) = npf.torch.evaluate(cpu_index.index, rows, batch_sizes=4, **THREADS)
    assert report["total_infs"] == 18
    assert report["accuracy"] == pytest.approx(hand_accuracy(N))


class Shaped:
    """Batched, but neither a tensor, an array nor a list."""

    shape = (2, 3)


def test_a_short_batch_is_padded_with_its_last_record() -> None:
    x = torch.arange(6.0).reshape(3, 2)
    row = fit((x, x.numpy(), [1, 2, 3], torch.tensor(7.0), torch.tensor([0, 1, 2])), 4, 5)
    assert row[0].tolist() == [[0, 1], [2, 3], [4, 5], [4, 5], [4, 5]]
    assert row[1].tolist() == row[0].tolist() and row[1].dtype == np.float32
    assert row[2] == [1, 2, 3, 3, 3]
    assert row[3].item() == 7.0  # no batch dimension: passed as it is
    assert row[4].tolist() == [0, 1, 2]  # the target keeps its real length
    full = (torch.zeros(5, 2), torch.zeros(5))
    assert fit(full, 1, 5) is full
    with pytest.raises(TorchArgumentError, match="neuronperf cannot pad"):
        fit((Shaped(), torch.zeros(2)), 1, 4)
    with pytest.raises(InputShapeError, match="holds 6 records"):
        fit((torch.zeros(6, 2), torch.zeros(6)), 1, 4)
    assert fit((torch.zeros(1, 2), torch.zeros(1)), 1, 1)[1].shape == ()  # batch size 1


def test_errors_before_loading(cpu_index) -> None:  # type: ignore[no-untyped-def]
    x, y = make_data(8)
    with pytest.raises(InputShapeError, match="holds 8 records, but the model was compiled for"):
        npf.torch.evaluate(cpu_index.index, [(x, y)], batch_sizes=4, **THREADS)
    with pytest.raises(InputShapeError, match=r"first batch \(for batch size 4\).*shape \[4, 3"):
        npf.torch.evaluate(cpu_index.index, [(x[:4, :, :4], y[:4])], batch_sizes=4, **THREADS)
    one_shot = iter([(x[:1], y[:1])])
    with pytest.raises(npf.NeuronPerfError, match="can be read only once"):
        npf.torch.evaluate(cpu_index.index, one_shot, **THREADS)
    with pytest.raises(TorchArgumentError, match="may not set batch_size, shuffle"):
        npf.torch.evaluate(
            cpu_index.index, Records(8), dataloader_kwargs={"batch_size": 2, "shuffle": 1}
        )
    with pytest.raises(npf.NeuronPerfError, match="eval_target_col=5 is out of range"):
        npf.torch.evaluate(cpu_index.index, Records(8), eval_target_col=5, **THREADS)
    with pytest.raises(npf.NeuronPerfError, match="dataset is empty"):
        npf.torch.evaluate(cpu_index.index, [], batch_sizes=1, **THREADS)
    with pytest.raises(npf.NeuronPerfError, match="tuple\\(\\*INPUTS, TARGET\\)"):
        npf.torch.evaluate(cpu_index.index, [x[:1]], batch_sizes=1, **THREADS)


def test_metric_errors_fail_the_config_with_the_reason(cpu_index) -> None:  # type: ignore[no-untyped-def]
    x, _ = make_data(4)
    rows = [(x, torch.tensor([0, 1, 2, 9]))]  # class 9 does not exist
    (report,) = npf.torch.evaluate(cpu_index.index, rows, metrics="topk", batch_sizes=4, **THREADS)
    assert report["status"] == "error"
    assert "target class 9 is outside 0..4" in report["error"]
    assert np.isnan(report.get("topk", np.nan))
