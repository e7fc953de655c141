"""npf.torch.compile on CPU: artifacts, the model index, failed configs, argument errors,
and loading that refuses pickled objects."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from neuronperf_torch import export
from neuronperf_torch.errors import (
    DeviceUnavailableError,
    TorchArgumentError,
    UnsafeArtifactError,
)
from npt_helpers import make_model

import neuronperf as npf
from neuronperf_core.options import OptionError


def test_index_lists_one_artifact_per_config(cpu_index) -> None:  # type: ignore[no-untyped-def]
    index = npf.model_index.load(cpu_index.index)
    assert index["model_name"] == "SmallCNN"
    configs = index["model_configs"]
    assert [(c["batch_size"], c["input_idx"], c["cast_mode"]) for c in configs] == [
        (1, 0, "fp32"),
        (4, 1, "fp32"),
    ]
    for config in configs:
        assert config["status"] == "finished"
        assert config["device_type"] == "cpu"
        assert config["format"] == "torch.export"
        assert config["input_shapes"] == [[config["batch_size"], 3, 8, 8]]
        assert config["input_dtypes"] == ["float32"]
        assert config["compile_s"] > 0
        path = Path(config["filename"])
        assert path.suffix == ".pt2" and path.exists()
        assert path.name.startswith(f"SmallCNN_b{config['batch_size']}_p1_")
        assert export.read_meta(path)["batch_size"] == config["batch_size"]
    raw = json.loads(Path(cpu_index.index).read_text())  # paths relative to the index
    assert raw["model_configs"][0]["filename"].startswith("models/")


def test_loaded_artifact_computes_what_the_model_does(cpu_index) -> None:  # type: ignore[no-untyped-def]
    config = npf.model_index.load(cpu_index.index)["model_configs"][1]
    model = npf.torch.load(config["filename"])
    out = model(cpu_index.x4)
    assert out.requires_grad is False and torch.is_inference(out)
    with torch.no_grad():
        torch.testing.assert_close(out, make_model()(cpu_index.x4))


def test_cast_modes_are_the_dtype_the_model_runs_in(tmp_path: Path) -> None:
    model = make_model()
    model.train()
    x = torch.randn(2, 3, 8, 8)
    index = npf.torch.compile(
        model,
        x,
        cast_modes=["fp32", "bf16", "fp16"],
        device_type="cpu",
        models_dir=tmp_path,
        filename=tmp_path / "casts.json",
    )
    configs = npf.model_index.load(index)["model_configs"]
    assert [c["cast_mode"] for c in configs] == ["fp32", "bf16", "fp16"]
    assert [c["dtype"] for c in configs] == ["float32", "bfloat16", "float16"]
    assert all(c["batch_size"] == 2 for c in configs)  # from the input's first dimension
    # the user's model is left as it was: float32, in training mode
    assert model.training and next(model.parameters()).dtype is torch.float32
    with torch.no_grad():
        expected = model.eval()(x)
    for config in configs:
        out = npf.torch.load(config["filename"])(x)
        assert out.dtype is torch.float32  # casts inside the artifact, fp32 in and out
        torch.testing.assert_close(out, expected, atol=0.3, rtol=0.05)


class FailsAtBatch4(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 4:
            raise RuntimeError("this model refuses batches of 4")
        return x * 2


def test_a_failed_config_is_recorded_and_the_others_go_on(tmp_path: Path) -> None:
    index = npf.torch.compile(
        FailsAtBatch4(),
        [torch.ones(1, 3), torch.ones(4, 3), torch.ones(2, 3)],
        device_type="cpu",
        models_dir=tmp_path / "m",
        model_name="flaky",
        filename=tmp_path / "flaky.json",
    )
    configs = npf.model_index.load(index)["model_configs"]
    assert [(c["batch_size"], c["status"]) for c in configs] == [
        (1, "finished"),
        (4, "error"),
        (2, "finished"),
    ]
    failed = configs[1]
    assert failed["filename"] is None
    assert "this model refuses batches of 4" in failed["error"]
    assert sorted(p.name[:8] for p in (tmp_path / "m").iterdir()) == ["flaky_b1", "flaky_b2"]


def test_default_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    index = npf.torch.compile(torch.nn.ReLU(), torch.ones(3, 2), device_type="cpu")
    assert Path(index).parent == Path(".") and index.startswith("ReLU_") and index.endswith(".json")
    (config,) = npf.model_index.load(index)["model_configs"]
    assert Path(config["filename"]).parent == Path("models")  # as written, as in 1.x
    (resolved,) = npf.model_index.resolve(index)["model_configs"]
    assert Path(resolved["filename"]).parent == tmp_path / "models"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"batch_sizes": [1, 4]}, OptionError, "got 1 example inputs for 2 batch sizes"),
        ({"batch_sizes": [2]}, OptionError, "inputs\\[0\\] has batch dimension 1, but"),
        ({"pipeline_sizes": [2]}, TorchArgumentError, "pipelining is a Neuron feature"),
        (
            {"cast_modes": ["int8"]},
            TorchArgumentError,
            "cast modes \\['int8'\\] are not cpu dtypes",
        ),
        ({"compiler_args": "-O3"}, TorchArgumentError, "are Neuron compiler options"),
        ({"device_type": "tpu"}, OptionError, "device_type='tpu' is not a device the 'torch'"),
    ],
)
def test_argument_errors(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    kwargs.setdefault("device_type", "cpu")
    with pytest.raises(error, match=message):
        npf.torch.compile(torch.nn.ReLU(), torch.ones(1, 2), **kwargs)  # type: ignore[arg-type]


def test_inputs_must_be_tensors() -> None:
    with pytest.raises(TorchArgumentError, match="inputs\\[0\\] is a dict; expected a tensor"):
        npf.torch.compile(torch.nn.ReLU(), {"x": torch.ones(1)}, device_type="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(DeviceUnavailableError, match="torch sees no CUDA GPU here"):
        npf.torch.compile(torch.nn.ReLU(), torch.ones(1, 2), device_type="cuda")


def _rewrite(src: Path, dst: Path, change: dict[str, bytes | None]) -> None:
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for item in old.infolist():
            suffix = item.filename.split("/", 1)[1]
            if suffix in change:
                if change[suffix] is not None:
                    new.writestr(item.filename, change[suffix])  # type: ignore[arg-type]
                continue
            new.writestr(item, old.read(item.filename))


def _weights_config(path: Path) -> dict[str, object]:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("model_weights_config.json"))
        return json.loads(archive.read(name))  # type: ignore[no-any-return]


def test_artifacts_that_would_unpickle_are_refused(cpu_index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = Path(npf.model_index.load(cpu_index.index)["model_configs"][0]["filename"])
    export.check_safe(good)  # what compile writes passes

    config = _weights_config(good)
    first = next(iter(config["config"]))  # type: ignore[call-overload]
    config["config"][first]["use_pickle"] = True  # type: ignore[index]
    pickled = tmp_path / "pickled.pt2"
    _rewrite(good, pickled, {"data/weights/model_weights_config.json": json.dumps(config).encode()})
    with pytest.raises(UnsafeArtifactError, match="is stored as a pickled Python object"):
        npf.torch.load(pickled, device_type="cpu")

    legacy = tmp_path / "legacy.pt2"
    _rewrite(good, legacy, {"archive_format": None})
    with pytest.raises(UnsafeArtifactError, match="not in the pt2 archive format"):
        npf.torch.load(legacy, device_type="cpu")

    samples = tmp_path / "samples.pt2"
    import io
    import pickle

    evil = io.BytesIO()
    pickle.dump(object(), evil, protocol=2)  # weights_only=True refuses an arbitrary object
    _rewrite(good, samples, {"data/sample_inputs/model.pt": evil.getvalue()})
    with pytest.raises(UnsafeArtifactError, match="sample inputs hold objects"):
        npf.torch.load(samples, device_type="cpu")

    not_zip = tmp_path / "text.pt2"
    not_zip.write_text("hello")
    with pytest.raises(UnsafeArtifactError, match=r"is not a torch\.export archive"):
        npf.torch.load(not_zip, device_type="cpu")


def test_keywords_the_compiler_does_not_take_are_refused_before_compiling(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from neuronperf_torch.errors import TorchArgumentError

    model = torch.nn.Linear(4, 2)
    with pytest.raises(TorchArgumentError, match=r"'performance_levels'.*torch.export.export"):
        npf.torch.compile(
            model, [torch.randn(1, 4)], device_type="cpu", models_dir=tmp_path,
            filename=tmp_path / "m.json", performance_levels=[1],
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # nothing compiled, nothing written
    index = npf.torch.compile(
        model, [torch.randn(1, 4)], device_type="cpu", models_dir=tmp_path,
        filename=tmp_path / "m.json", strict=True,
    )  # fmt: skip
    assert npf.model_index.load(index)["model_configs"][0]["status"] == "finished"
