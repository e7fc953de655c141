"""Models, datasets and recorders for the plugin's tests; module-level so that spawned
interpreters can unpickle them (sys.path, which holds this folder, goes with them)."""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, IterableDataset

N_CLASSES = 5
IMAGE = (3, 8, 8)


class SmallCNN(nn.Module):
    """A small CNN with batch norm: conv -> bn -> relu -> conv -> relu -> mean -> linear."""

    def __init__(self, n_classes: int = N_CLASSES) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(x.mean((2, 3)))


def make_model(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    model = SmallCNN()
    with torch.no_grad():  # spread the logits so predictions differ between records
        model.fc.weight.mul_(20)
    return model.eval()


def make_data(n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels: the model's own prediction for even records, a fixed other class
    for odd ones, so accuracy is about one half and known exactly."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *IMAGE, generator=generator)
    with torch.inference_mode():
        predicted = make_model()(x).argmax(1)
    y = torch.where(torch.arange(n) % 2 == 0, predicted, (predicted + 1) % N_CLASSES)
    return x, y


class Records(Dataset):  # type: ignore[type-arg]
    """Map-style: record i is (image, label)."""

    def __init__(self, n: int, seed: int = 1) -> None:
        self.x, self.y = make_data(n, seed)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


class LabelFirst(Records):
    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return self.y[i], self.x[i]


class Stream(IterableDataset):  # type: ignore[type-arg]
    """Iterable: the same records as Records, streamed."""

    def __init__(self, n: int, seed: int = 1) -> None:
        self.x, self.y = make_data(n, seed)

    def __iter__(self) -> Any:
        return iter(zip(self.x, self.y, strict=True))


class CountingCollate:
    """A collate_fn that counts its calls in a file (one line per batch, with the pid)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, records: list[Any]) -> Any:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {len(records)}\n")
        return torch.utils.data.default_collate(records)


class RecordSetup:
    """setup_fn(copy_id, config, model): records the copy's placement and threads."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, copy_id: int, config: dict[str, Any], model: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(
                json.dumps(
                    {
                        "copy_id": copy_id,
                        "pid": os.getpid(),
                        "n_models": config["n_models"],
                        "workers": config["workers_per_model"],
                        "threads": torch.get_num_threads(),
                        "neuron_cores": os.environ.get("NEURON_RT_VISIBLE_CORES"),
                    }
                )
                + "\n"
            )


def read_lines(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
