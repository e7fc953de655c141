"""torch datasets as benchmark inputs and as evaluation datasets.

A model compiled for batch size B takes batches of exactly B records, so an
evaluation dataset is read as batches of B, one ``tuple(*INPUTS, TARGET)`` row
per batch. A batch of fewer records (the last one, when B does not divide the
dataset) is padded to B by repeating its last record, and its TARGET is left at
the real length: the core scores only the real records, so every record is
scored once.

- a map-style ``Dataset``: batches of consecutive records. A ``TensorDataset``
  is sliced, a view per batch, instead of collating B records one by one; any
  other Dataset is batched by a ``DataLoader(**dataloader_kwargs)``.
- a ``DataLoader`` over a map-style Dataset: its batch size must be B; the
  record indices of its batches (its sampler's order) are computed once, in the
  parent, so shards never overlap even with a shuffling sampler.
- an ``IterableDataset`` (batched here by a DataLoader), or a DataLoader over
  one: a stream, read once per pass.
- any other iterable already yields batched rows (the evaluation guide's "any
  iterable of tuple(*INPUTS, TARGET)").

Map-style data and lists of rows are ``ShardedRows`` (``neuronperf_core.backend``):
each worker reads batches ``shard, shard + n, ...`` on its own, without a
shared iterator, and loads only its records. A stream cannot be split without
reading all of it, so the core hands its rows out to the workers instead.

At batch size 1 the engine scores each row as one record (``process_record``),
so the target loses its batch dimension here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from neuronperf_torch.errors import InputShapeError, TorchArgumentError

Row = tuple[Any, ...]

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


def _as_row(batch: Any) -> Row:
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


def _eval_row(batch: Any) -> Row:
    row = _as_row(batch)
    if len(row) < 2:
        raise TorchArgumentError(
            "evaluation rows need at least one input and a target, but the dataset yields "
            "single values; return (input, target) from the Dataset."
        )
    return row


def _batch_len(value: Any) -> int | None:
    shape = getattr(value, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) >= 1 else None


def _n_records(value: Any) -> int | None:
    """How many records a batched value holds: its first dimension, or a list's length."""
    n = _batch_len(value)
    if n is None and isinstance(value, (list, tuple)):
        return len(value)
    return n


def unbatch(value: Any) -> Any:
    """``value[0]`` for a tensor or array whose batch dimension is 1; else ``value``."""
    return value[0] if _batch_len(value) == 1 else value


def fit(row: Row, col: int, batch_size: int) -> Row:
    """A batched row as the engine takes it: at batch size 1 the target (column ``col``,
    non-negative) without its batch dimension; a batch of fewer records padded to
    ``batch_size``, its target left at the real length."""
    target = row[col]
    if batch_size == 1:
        return (*row[:col], unbatch(target), *row[col + 1 :])
    n = _n_records(target)
    if n is None or n == batch_size:
        return row
    if n > batch_size:
        raise InputShapeError(
            f"a batch of the dataset holds {n} records, but the model was compiled for batch "
            f"size {batch_size}: batches may hold {batch_size} records at most (a last, "
            "shorter one is padded). Batch the rows by the compiled batch size."
        )
    return tuple(v if i == col else _pad(v, n, batch_size) for i, v in enumerate(row))


def _pad(value: Any, n: int, size: int) -> Any:
    """``value`` (``n`` records) padded to ``size`` records by repeating its last record.

    The last record rather than zeros: padding stays in the data's own domain (token ids,
    attention masks, normalised ranges), so the model never meets an input it could fail
    on or take another path for (an all-zero attention mask gives NaN, zeros can index
    nothing meaningful, denormals slow a CPU), and the padded call costs what the others
    do. Its outputs are cut off before any metric sees them.
    """
    if _n_records(value) != n:
        return value  # not one entry per record (a shared tensor, a scalar): as it is
    missing = size - n
    import torch

    if isinstance(value, torch.Tensor):
        return torch.cat((value, value[-1:].expand(missing, *value.shape[1:])))
    if type(value).__module__ == "numpy" and hasattr(value, "dtype"):
        import numpy as np

        return np.concatenate((value, np.repeat(value[-1:], missing, axis=0)))
    if isinstance(value, list):
        return value + [value[-1]] * missing
    if isinstance(value, tuple):
        return value + (value[-1],) * missing
    raise TorchArgumentError(
        f"a batch of {n} records needs padding to the compiled batch size {size}, but one of "
        f"its inputs is a {type(value).__name__}, which neuronperf cannot pad; use tensors, "
        "numpy arrays or lists."
    )


def _check_loader_batch(loader: Any, batch_size: int) -> None:
    if loader.batch_size is not None and loader.batch_size != batch_size:
        raise InputShapeError(
            f"the DataLoader has batch_size={loader.batch_size}, but this config was compiled "
            f"for batch size {batch_size}. Pass batch_sizes=[{loader.batch_size}] to evaluate "
            "that config only, or pass the Dataset itself (and dataloader_kwargs) so each batch "
            "size gets its own loader."
        )


class _Consecutive:
    """A lazy batch_sampler: every ``step``-th batch of consecutive indices from ``first``."""

    def __init__(self, n: int, size: int, first: int, step: int) -> None:
        self.n, self.size = n, size
        self.batches = range(first, -(-n // size), step)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        n, size = self.n, self.size
        for k in self.batches:
            yield list(range(k * size, min(k * size + size, n)))


class MapRows:
    """The rows of a map-style Dataset, or of a DataLoader over one, at one batch size:
    read whole, or shard by shard (``ShardedRows``). Picklable when the data is."""

    def __init__(
        self,
        data: Any,
        batch_size: int,
        target_col: int,
        dataloader_kwargs: dict[str, Any] | None = None,
    ) -> None:
        from torch.utils.data import TensorDataset, default_collate

        self.batch_size = batch_size
        self.target_col = target_col
        # the loader's batches, as record indices; None: consecutive records
        self.index_batches: list[list[int]] | None = None
        if kind_of(data) == "loader":
            _check_loader_batch(data, batch_size)
            if data.batch_sampler is None:
                raise TorchArgumentError(
                    "the DataLoader does not batch (batch_size=None); pass a DataLoader with "
                    f"batch_size={batch_size}, or the Dataset itself."
                )
            self.dataset = data.dataset
            self.index_batches = [list(b) for b in data.batch_sampler]  # once: no overlaps
            longest = max((len(b) for b in self.index_batches), default=0)
            if longest > batch_size:
                raise InputShapeError(
                    f"the DataLoader's batch sampler gives batches of up to {longest} records, "
                    f"but the model was compiled for batch size {batch_size}."
                )
            self.settings = {
                name: getattr(data, name) for name in _LOADER_SETTINGS if hasattr(data, name)
            }
            if not self.settings.get("num_workers"):
                self.settings.pop("prefetch_factor", None)
                self.settings.pop("persistent_workers", None)
            default = self.settings.get("collate_fn") is default_collate
        else:
            self.dataset = data
            self.settings = check_loader_kwargs(data, dataloader_kwargs)
            default = "collate_fn" not in self.settings
        # A TensorDataset batched by default_collate is its tensors indexed by the batch:
        # slicing them builds each batch in one call per column, not B records collated.
        sliceable = type(self.dataset) is TensorDataset and default
        self.tensors = (
            self.dataset.tensors if sliceable and not self.settings.get("pin_memory") else None
        )

    def __iter__(self) -> Iterator[Row]:
        return self.shard(0, 1)

    def shard(self, shard: int, n_shards: int) -> Iterator[Row]:
        """Batches ``shard, shard + n_shards, ...`` as rows."""
        if self.tensors is not None:
            return self._sliced(self.tensors, shard, n_shards)
        from torch.utils.data import DataLoader

        if self.index_batches is not None:
            batches: Any = self.index_batches[shard::n_shards]
        else:
            batches = _Consecutive(len(self.dataset), self.batch_size, shard, n_shards)
        if not len(batches):
            return iter(())
        loader = DataLoader(self.dataset, batch_sampler=batches, **self.settings)
        return self._rows(loader)

    def _rows(self, batches: Iterable[Any]) -> Iterator[Row]:
        size, col = self.batch_size, self.target_col
        for batch in batches:
            row = _eval_row(batch)
            yield fit(row, col % len(row), size)

    def _sliced(self, tensors: Sequence[Any], shard: int, n_shards: int) -> Iterator[Row]:
        import torch

        if len(tensors) < 2:
            raise TorchArgumentError(
                "evaluation rows need at least one input and a target, but the TensorDataset "
                "holds one tensor; pass TensorDataset(inputs, targets)."
            )
        size, col = self.batch_size, self.target_col % len(tensors)
        if self.index_batches is None:
            n = len(tensors[0])
            if size == 1:  # the target without its batch dimension, as fit() makes it
                for i in range(shard, n, n_shards):
                    yield tuple(t[i] if c == col else t[i : i + 1] for c, t in enumerate(tensors))
                return
            for start in range(shard * size, n, n_shards * size):
                row = tuple(t[start : start + size] for t in tensors)
                yield row if start + size <= n else fit(row, col, size)
            return
        for batch in self.index_batches[shard::n_shards]:
            if not batch:
                continue
            first = batch[0]
            if batch == list(range(first, first + len(batch))):
                row = tuple(t[first : first + len(batch)] for t in tensors)  # a view
            else:
                index = torch.tensor(batch)
                row = tuple(t[index] for t in tensors)
            yield row if len(batch) == size > 1 else fit(row, col, size)


class StreamRows:
    """The rows of an IterableDataset (batched here by a DataLoader), or of a DataLoader over
    one, at one batch size: a stream, read in order; re-iterable (picklable when the data is)."""

    def __init__(
        self,
        data: Any,
        batch_size: int,
        target_col: int,
        dataloader_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.data = data
        self.batch_size = batch_size
        self.target_col = target_col
        if kind_of(data) == "loader":
            _check_loader_batch(data, batch_size)
            self.kwargs: dict[str, Any] | None = None
        else:
            self.kwargs = check_loader_kwargs(data, dataloader_kwargs)

    def __iter__(self) -> Iterator[Row]:
        from torch.utils.data import DataLoader

        batches = self.data
        if self.kwargs is not None:
            batches = DataLoader(self.data, batch_size=self.batch_size, **self.kwargs)
        size, col = self.batch_size, self.target_col
        for batch in batches:
            row = _eval_row(batch)
            yield fit(row, col % len(row), size)


def eval_rows(
    data: Any, batch_size: int, target_col: int, dataloader_kwargs: dict[str, Any] | None
) -> Iterable[Row]:
    """torch data read as evaluation rows of ``batch_size``: ``MapRows`` (sharded) for
    map-style data, ``StreamRows`` for streams."""
    kind = kind_of(data)
    if kind == "map" or (kind == "loader" and kind_of(data.dataset) == "map"):
        return MapRows(data, batch_size, target_col, dataloader_kwargs)
    if kind is None:
        raise TypeError("eval_rows takes torch data; wrap other iterables with rows_source")
    return StreamRows(data, batch_size, target_col, dataloader_kwargs)


class RowsSource:
    """Rows the user batched already, with lists made tuples, a shorter batch padded and,
    at batch size 1, the target's batch dimension dropped; re-iterable when the data is."""

    def __init__(self, data: Iterable[Any], batch_size: int, target_col: int) -> None:
        self.data = data
        self.batch_size = batch_size
        self.target_col = target_col

    def __iter__(self) -> Iterator[Any]:
        return self._rows(self.data)

    def _rows(self, rows: Iterable[Any]) -> Iterator[Any]:
        size, col = self.batch_size, self.target_col
        for raw in rows:
            row = _as_row(raw) if isinstance(raw, list) else raw
            if isinstance(row, tuple) and -len(row) <= col < len(row):
                row = fit(row, col % len(row), size)
            yield row  # anything else: the core says what a row must be


class SequenceRows(RowsSource):
    """RowsSource over a list or tuple of rows, which each worker can read a shard of."""

    data: Sequence[Any]

    def shard(self, shard: int, n_shards: int) -> Iterator[Any]:
        """Rows ``shard, shard + n_shards, ...``."""
        return self._rows(self.data[shard::n_shards])


def rows_source(data: Any, batch_size: int, target_col: int) -> Iterable[Any]:
    """User rows: a SequenceRows for a list or tuple, a RowsSource for another iterable; a
    one-shot iterator stays one-shot (a generator)."""
    if isinstance(data, (list, tuple)):
        return SequenceRows(data, batch_size, target_col)
    source = RowsSource(data, batch_size, target_col)
    if iter(data) is data:
        return iter(source)  # the engine puts back the row it peeks at
    return source


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
