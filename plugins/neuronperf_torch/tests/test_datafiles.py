"""owns, read_arrays and dataset_from_arrays: what the command line asks of the framework."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from neuronperf_torch.errors import TorchArgumentError
from npt_helpers import make_data, make_model

import neuronperf as npf
from neuronperf_core import model_index


class TouchOnUnpickle:
    """Unpickling it creates a file: what a malicious pickle could do with any call."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


# -- owns -------------------------------------------------------------------------------


def test_owns_torch_objects_and_nothing_else_in_memory() -> None:
    model = make_model()
    program = torch.export.export(model, (torch.randn(1, 3, 8, 8),))
    assert npf.torch.backend.owns(model)
    assert npf.torch.backend.owns(program)
    for other in (None, 3, object(), [model], {"model": model}, torch.zeros(2)):
        assert not npf.torch.backend.owns(other), other


def test_owns_the_artifacts_and_index_compile_writes(cpu_index) -> None:  # type: ignore[no-untyped-def]
    configs = model_index.load(cpu_index.index)["model_configs"]
    assert len(configs) == 2
    assert npf.torch.backend.owns(cpu_index.index)
    assert npf.torch.backend.owns(Path(cpu_index.index))  # a PathLike too
    for config in configs:
        assert config["filename"].endswith(".pt2")
        assert npf.torch.backend.owns(config["filename"])


def test_owns_a_neuron_index_and_torchscript_files(neuronx_double, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index = npf.torch.compile(
        make_model(),
        [torch.randn(1, 3, 8, 8)],
        models_dir=tmp_path / "models",
        filename=tmp_path / "neuron.json",
        compiler_target="inf2",
        verbosity=0,
    )
    (config,) = model_index.load(index)["model_configs"]
    assert config["status"] == "finished" and config["filename"].endswith(".pt")
    assert npf.torch.backend.owns(index)
    assert npf.torch.backend.owns(config["filename"])
    # A TorchScript archive without neuronperf metadata (a NeuronPerf 1.x Neuron model).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated; still what Neuron saves
        traced = torch.jit.trace(torch.nn.Linear(2, 2), torch.randn(1, 2))
        torch.jit.save(traced, str(tmp_path / "legacy.pt"))
    assert npf.torch.backend.owns(tmp_path / "legacy.pt")


def test_owns_refuses_other_files_without_raising(cpu_index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    torch.save((torch.zeros(2), torch.ones(2)), tmp_path / "arrays.pt")  # data, not a model
    (tmp_path / "garbage.pt2").write_bytes(b"not a zip")
    (tmp_path / "garbage.pt").write_bytes(b"not a zip")
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "model.onnx").write_bytes(b"\x08\x01")
    plain = torch.export.export(make_model(), (torch.randn(1, 3, 8, 8),))
    torch.export.save(plain, str(tmp_path / "plain.pt2"))  # no metadata: no device, no batch
    np.savez(tmp_path / "arrays.npz", x=np.zeros(2))
    # An index whose models are not torch files, and one with no finished config.
    other = model_index.create(tmp_path / "model.onnx", batch_size=1, model_name="m")
    model_index.save(other, tmp_path / "onnx_index.json")
    failed = model_index.create(None, status="error", model_name="m")
    model_index.save(failed, tmp_path / "failed_index.json")
    # An index whose model file is missing, beside one of the plugin's files.
    (config,) = model_index.filter(cpu_index.index, batch_size=1)["model_configs"]
    gone = model_index.append(
        model_index.create(config["filename"], batch_size=1, model_name="m"),
        model_index.create(tmp_path / "gone.pt2", batch_size=1, model_name="m"),
    )
    model_index.save(gone, tmp_path / "gone_index.json")
    for name in (
        "arrays.pt",
        "garbage.pt2",
        "garbage.pt",
        "notes.json",
        "broken.json",
        "model.onnx",
        "plain.pt2",
        "arrays.npz",
        "onnx_index.json",
        "failed_index.json",
        "gone_index.json",
        "missing.pt2",
        "missing.json",
    ):
        assert not npf.torch.backend.owns(tmp_path / name), name
        assert not npf.torch.backend.owns(str(tmp_path / name)), name
    assert not npf.torch.backend.owns(tmp_path)  # a folder


# -- read_arrays ------------------------------------------------------------------------


def test_read_arrays_reads_a_tensor_a_tuple_a_list_and_a_dict(tmp_path: Path) -> None:
    x, y = torch.randn(4, 3), torch.arange(4)
    torch.save(x, tmp_path / "one.pt")
    torch.save((x, y), tmp_path / "tuple.pt")
    torch.save([x, y], tmp_path / "list.pt")
    torch.save({"labels": y, "images": x}, tmp_path / "dict.pt")
    (one,) = npf.torch.backend.read_arrays(tmp_path / "one.pt")
    assert torch.equal(one, x)
    for name in ("tuple.pt", "list.pt"):
        got = npf.torch.backend.read_arrays(str(tmp_path / name))
        assert isinstance(got, list) and len(got) == 2
        assert torch.equal(got[0], x) and torch.equal(got[1], y)
    labels, images = npf.torch.backend.read_arrays(tmp_path / "dict.pt")  # insertion order
    assert torch.equal(labels, y) and torch.equal(images, x)


def test_read_arrays_refuses_a_pickled_object_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    torch.save((torch.zeros(2), TouchOnUnpickle(marker)), tmp_path / "unsafe.pt")
    with pytest.raises(TorchArgumentError, match=r"refusing to read .*arbitrary code") as info:
        npf.torch.backend.read_arrays(tmp_path / "unsafe.pt")
    assert "torch.save((x, y), path)" in str(info.value)
    assert not marker.exists()
    torch.load(tmp_path / "unsafe.pt", weights_only=False)  # the payload does work
    assert marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (3, "holds a int"),
        ({"x": torch.zeros(2), "n": 3}, "key 'n' of the dict is a int"),
        ((torch.zeros(2), (torch.zeros(2),)), "item 1 of the tuple is a tuple"),
        ((), "empty tuple"),
    ],
)
def test_read_arrays_refuses_what_is_not_tensors(
    tmp_path: Path, content: object, message: str
) -> None:
    torch.save(content, tmp_path / "data.pt")
    with pytest.raises(TorchArgumentError, match=message) as info:
        npf.torch.backend.read_arrays(tmp_path / "data.pt")
    assert "torch.save((x, y), path)" in str(info.value)


def test_read_arrays_names_the_format_it_reads(tmp_path: Path) -> None:
    np.savez(tmp_path / "data.npz", x=np.zeros(2))
    with pytest.raises(TorchArgumentError, match=r"from \.pt files .*\.npz files itself"):
        npf.torch.backend.read_arrays(tmp_path / "data.npz")
    with pytest.raises(TorchArgumentError, match="does not exist"):
        npf.torch.backend.read_arrays(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not an archive")
    with pytest.raises(TorchArgumentError, match=r"cannot read .*unreadable"):
        npf.torch.backend.read_arrays(tmp_path / "garbage.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(TorchArgumentError, match=r"cannot read .*unreadable"):
        npf.torch.backend.read_arrays(tmp_path / "empty.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(torch.nn.Linear(2, 2), torch.randn(1, 2))
        torch.jit.save(traced, str(tmp_path / "model.pt"))
    with pytest.raises(TorchArgumentError, match="a TorchScript model, not arrays"):
        npf.torch.backend.read_arrays(tmp_path / "model.pt")


# -- dataset_from_arrays -------------------------------------------------------------------


def test_dataset_from_arrays_makes_records_of_rows() -> None:
    images = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    extra = torch.arange(5.0)
    labels = np.array([4, 3, 2, 1, 0])
    dataset = npf.torch.backend.dataset_from_arrays([images, extra, labels])
    assert isinstance(dataset, torch.utils.data.TensorDataset)
    assert len(dataset) == 5
    x, e, y = dataset[2]
    assert torch.equal(x, torch.from_numpy(images[2]))
    assert e.item() == 2.0 and y.item() == 2
    assert dataset.tensors[0].dtype == torch.float32 and dataset.tensors[2].dtype == torch.int64
    images[2, 0, 0] = -1.0  # torch.from_numpy shares memory: no copy of a large dataset
    assert dataset[2][0][0, 0].item() == -1.0
    readonly = np.zeros((5, 2))
    readonly.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # from_numpy warns on read-only arrays; copied instead
        assert len(npf.torch.backend.dataset_from_arrays([readonly, labels])) == 5


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ([np.zeros((4, 2)), np.zeros(3)], r"first dimensions \[4, 3\]"),
        ([np.zeros((4, 2))], "at least 2 columns"),
        ([], "at least 2 columns"),
        ([np.zeros((4, 2)), np.float32(1.0)], r"column\(s\) \[1\] are scalars"),
        ([np.zeros((4, 2)), [0, 1, 2, 3]], "column 1 is a list"),
        ([np.zeros((0, 2)), np.zeros(0)], "no records"),
        ([np.array(["a", "b"]), np.zeros(2)], "numpy dtype <U1"),
        (np.zeros((4, 2)), "pass a list of columns"),
    ],
)
def test_dataset_from_arrays_errors(arrays: object, message: str) -> None:
    with pytest.raises(TorchArgumentError, match=message):
        npf.torch.backend.dataset_from_arrays(arrays)  # type: ignore[arg-type]


def test_evaluate_takes_a_dataset_from_arrays(cpu_index) -> None:  # type: ignore[no-untyped-def]
    x, y = make_data(24)
    with torch.inference_mode():
        eager = float((make_model()(x).argmax(1) == y).float().mean())
    dataset = npf.torch.backend.dataset_from_arrays([x.numpy(), y.numpy()])
    reports = npf.torch.evaluate(
        cpu_index.index,
        dataset,
        metrics=["accuracy"],
        multiprocess=False,
        results_dir=None,
        verbosity=0,
    )
    assert sorted(r["batch_size"] for r in reports) == [1, 4]
    for report in reports:
        assert report["status"] == "finished", report["error"]
        assert report["total_infs"] * report["batch_size"] == 24  # every record once
        assert report["accuracy"] == pytest.approx(eager)
    assert 0.3 < eager < 0.9  # make_data's labels: about half right, so accuracy means something
    json.dumps(reports)  # plain values, as the command line writes them
