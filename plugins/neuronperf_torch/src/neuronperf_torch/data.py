"""torch datasets as benchmark inputs and as evaluation datasets.

A model compiled for batch size B takes batches of exactly B records, so an
evaluation dataset is read as batches of B, one ``tuple(*INPUTS, TARGET)`` row
per batch:

- a map-style ``Dataset`` or an ``IterableDataset`` of single records is
  batched here with a ``DataLoader(**dataloader_kwargs)``;
- a ``DataLoader`` is used as it is: its batch size must be B;
- any other iterable already yields batched rows (the evaluation guide's
  "any iterable of tuple(*INPUTS, TARGET)").

Each worker reads only its own shard: batches ``shard, shard + n, ...``. For
map-style data the batches' record indices are computed once, in the parent,
so shards never overlap even with a shuffling sampler, and a worker loads
only its records. An iterable stream cannot be indexed: each worker reads the
stream and keeps its batches. A trailing batch with fewer than B records
cannot run on a model of fixed batch size; it is left out, with a warning
that says how many records were not scored.

At batch size 1 the engine scores each row as one record
(``process_record``), so the target loses its batch dimension here and the
output in ``FirstRecord``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from neuronperf_torch.errors import InputShapeError, TorchArgumentError

logger = logging.getLogger("neuronperf.torch")

# DataLoader arguments that decide batching and order, which the plugin sets itself.
RESERVED_LOADER_KWARGS = ("batch_size", "shuffle", "sampler", "batch_sampler", "drop_last")
# DataLoader attributes carried over when a map-style loader is re-sharded.
_LOADER_SETTINGS = (
    "num_workers",
    "collate_fn",
    "pin_memory",
    "timeout",
    "worker_init_fn",
    "multiprocessing_context",
    "prefetch_factor",
    "persistent_workers",
    "pin_memory_device",
    "in_order",
)


def kind_of(data: Any) -> str | None:
    """ "loader", "map", "iterable" for torch data, None for anything else."""
    from torch.utils.data import DataLoader, Dataset, IterableDataset

    if isinstance(data, DataLoader):
        return "loader"
    if isinstance(data, IterableDataset):
        return "iterable"
    if isinstance(data, Dataset):
        return "map"
    return None


def check_loader_kwargs(data: Any, dataloader_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    kwargs = dict(dataloader_kwargs or {})
    if not kwargs:
        return kwargs
    if kind_of(data) in (None, "loader"):
        raise TorchArgumentError(
            "dataloader_kwargs apply when the data is a torch Dataset (the plugin builds the "
            "DataLoaders); configure a DataLoader you pass yourself directly, and drop "
            "dataloader_kwargs."
        )
    reserved = sorted(set(kwargs) & set(RESERVED_LOADER_KWARGS))
    if reserved:
        raise TorchArgumentError(
            f"dataloader_kwargs may not set {', '.join(reserved)}: batches have the compiled "
            "batch size and each worker reads its own shard, so the plugin sets them. Pass "
            "batch_sizes=[...] to choose which compiled batch sizes run."
        )
    return kwargs


def _as_row(batch: Any) -> tuple[Any, ...]:
    if isinstance(batch, tuple):
        return batch
    if isinstance(batch, list):
        return tuple(batch)  # default_collate turns a record tuple into a list
    if isinstance(batch, dict):
        raise TorchArgumentError(
            "the dataset yields dicts; rows must be tuple(*INPUTS, TARGET). Return tuples from "
            "the Dataset's __getitem__ (or a collate_fn that does)."
        )
    return (batch,)


def _batch_len(value: Any) -> int | None:
    shape = getattr(value, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) >= 1 else None


def unbatch(value: Any) -> Any:
    """``value[0]`` for a tensor or array whose batch dimension is 1; else ``value``."""
    return value[0] if _batch_len(value) == 1 else value


class FirstRecord:
    """postprocess_fn at batch size 1: the user's postprocess, then the batch dimension dropped."""

    def __init__(self, user_fn: Any = None) -> None:
        self.user_fn = user_fn

    def __call__(self, output: Any) -> Any:
        if self.user_fn is not None:
            output = self.user_fn(output)
        return unbatch(output)


class EvalSource:
    """The evaluation rows of one batch size, read whole or shard by shard (picklable)."""

    def __init__(
        self,
        data: Any,
        batch_size: int,
        target_col: int,
        dataloader_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.kind = kind_of(data)
        if self.kind is None:
            raise TypeError("EvalSource takes torch data; wrap other iterables with rows_source")
        self.data = data
        self.batch_size = batch_size
        self.target_col = target_col
        self.kwargs = check_loader_kwargs(data, dataloader_kwargs)
        self.index_batches: list[list[int]] | None = None
        self.loader_settings: dict[str, Any] = {}
        if self.kind == "map":
            n = len(data)
            self.index_batches = [
                list(range(start, start + batch_size))
                for start in range(0, n - batch_size + 1, batch_size)
            ]
            _warn_dropped(n - len(self.index_batches) * batch_size, n, batch_size)
        elif self.kind == "loader":
            if data.batch_size is not None and data.batch_size != batch_size:
                raise InputShapeError(
                    f"the DataLoader has batch_size={data.batch_size}, but this config was "
                    f"compiled for batch size {batch_size}. Pass batch_sizes=[{data.batch_size}] "
                    "to evaluate that config only, or pass the Dataset itself (and "
                    "dataloader_kwargs) so each batch size gets its own loader."
                )
            if kind_of(data.dataset) == "map":
                batches = [list(b) for b in data.batch_sampler]  # once: shards never overlap
                self.index_batches = [b for b in batches if len(b) == batch_size]
                dropped = sum(len(b) for b in batches if len(b) != batch_size)
                _warn_dropped(dropped, sum(len(b) for b in batches), batch_size)
                self.loader_settings = {
                    name: getattr(data, name) for name in _LOADER_SETTINGS if hasattr(data, name)
                }
                if not self.loader_settings.get("num_workers"):
                    self.loader_settings.pop("prefetch_factor", None)
                    self.loader_settings.pop("persistent_workers", None)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return self.shard(0, 1)

    def shard(self, shard: int, n_shards: int) -> Iterator[tuple[Any, ...]]:
        """Batches shard, shard + n_shards, ... as rows."""
        from torch.utils.data import DataLoader

        if self.index_batches is not None:
            mine = self.index_batches[shard::n_shards]
            if not mine:
                return iter(())
            dataset = self.data.dataset if self.kind == "loader" else self.data
            settings = self.loader_settings if self.kind == "loader" else self.kwargs
            loader = DataLoader(dataset, batch_sampler=mine, **settings)
            return self._rows(loader, check_size=False)
        if self.kind == "iterable":
            batches: Iterable[Any] = DataLoader(
                self.data, batch_size=self.batch_size, drop_last=False, **self.kwargs
            )
        else:  # a DataLoader over an iterable dataset, or with a custom batch sampler
            batches = self.data
        return self._rows(itertools.islice(iter(batches), shard, None, n_shards), check_size=True)

    def _rows(self, batches: Iterable[Any], check_size: bool) -> Iterator[tuple[Any, ...]]:
        size, skipped = self.batch_size, 0
        for batch in batches:
            row = _as_row(batch)
            if len(row) < 2:
                raise TorchArgumentError(
                    "evaluation rows need at least one input and a target, but the dataset "
                    "yields single values; return (input, target) from the Dataset."
                )
            col = self.target_col % len(row)
            if check_size:
                n = _batch_len(row[1 if col == 0 else 0])
                if n != size:
                    skipped += n or 0
                    continue
            if size == 1:
                row = (*row[:col], unbatch(row[col]), *row[col + 1 :])
            yield row
        if skipped:
            _warn_dropped(skipped, None, size)


class RowsSource:
    """Rows the user batched already, with lists made tuples and, at batch size 1, the
    target's batch dimension dropped; re-iterable when the data is."""

    def __init__(self, data: Iterable[Any], batch_size: int, target_col: int) -> None:
        self.data = data
        self.batch_size = batch_size
        self.target_col = target_col

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        col = self.target_col
        for raw in self.data:
            row = _as_row(raw) if isinstance(raw, list) else raw
            if self.batch_size == 1 and isinstance(row, tuple) and -len(row) <= col < len(row):
                col %= len(row)
                row = (*row[:col], unbatch(row[col]), *row[col + 1 :])
            yield row


def rows_source(data: Any, batch_size: int, target_col: int) -> Iterable[Any]:
    """User rows wrapped as a RowsSource; a one-shot iterator stays one-shot (a generator)."""
    source = RowsSource(data, batch_size, target_col)
    if iter(data) is data:
        return iter(source)  # the engine puts back the row it peeks at
    return source


def load_shard(source: EvalSource, shard: int, n_shards: int) -> Iterator[tuple[Any, ...]]:
    """dataset_loader_fn for EvalSource: the rows of worker ``shard`` of ``n_shards``."""
    return source.shard(shard, n_shards)


def peek(data: Any) -> tuple[Any, Any]:
    """The first row of ``data`` and data to use afterwards (a one-shot iterator re-chained)."""
    iterator = iter(data)
    try:
        first = next(iterator)
    except StopIteration:
        raise TorchArgumentError("the dataset is empty: there is nothing to evaluate.") from None
    if iterator is data:
        return first, itertools.chain([first], iterator)
    return first, data


def first_batch(
    data: Any,
    batch_size: int,
    dataloader_kwargs: dict[str, Any] | None,
    drop_col: int | None,
) -> tuple[Any, ...]:
    """The benchmark input of one batch size taken from torch data: its first B records."""
    from torch.utils.data import DataLoader

    kwargs = check_loader_kwargs(data, dataloader_kwargs)
    if kind_of(data) == "loader":
        if data.batch_size is not None and data.batch_size != batch_size:
            raise InputShapeError(
                f"the DataLoader has batch_size={data.batch_size}, but a config was compiled for "
                f"batch size {batch_size}. Pass batch_sizes=[{data.batch_size}], or the Dataset "
                "itself so each batch size gets its own batch."
            )
        loader = data
    else:
        loader = DataLoader(data, batch_size=batch_size, **kwargs)
    try:
        row = _as_row(next(iter(loader)))
    except StopIteration:
        raise TorchArgumentError("the dataset given as inputs is empty.") from None
    if drop_col is not None:
        if not -len(row) <= drop_col < len(row):
            raise TorchArgumentError(
                f"eval_target_col={drop_col} is out of range for records of {len(row)} columns."
            )
        drop_col %= len(row)
        row = row[:drop_col] + row[drop_col + 1 :]
    if _batch_len(row[0]) != batch_size:
        raise InputShapeError(
            f"the dataset given as inputs yields fewer than {batch_size} records (first batch "
            f"has {_batch_len(row[0])}); it needs at least one full batch per batch size."
        )
    return row


def _warn_dropped(dropped: int, total: int | None, batch_size: int) -> None:
    if dropped <= 0:
        return
    of = f" of {total}" if total is not None else ""
    logger.warning(
        "%d records%s are not scored at batch size %d: a model compiled for a fixed batch "
        "size cannot run a last, smaller batch. Use a dataset size divisible by %d, or "
        "evaluate at batch size 1 to score every record.",
        dropped,
        of,
        batch_size,
        batch_size,
    )


def input_columns(row: Sequence[Any], target_col: int) -> tuple[Any, ...]:
    """A row without its target column."""
    col = target_col % len(row)
    return tuple(row[:col]) + tuple(row[col + 1 :])
