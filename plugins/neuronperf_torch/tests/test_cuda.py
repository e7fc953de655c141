"""CUDA: run where torch sees a GPU, skipped otherwise (never faked)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from neuronperf_torch.loading import CudaModel
from npt_helpers import Records, make_model

import neuronperf as npf

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
QUICK = {"duration": 0.3, "results_dir": None, "verbosity": 0, "stats_interval": 0}


@pytest.fixture(scope="module")
def cuda_index(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("cuda")
    return npf.torch.compile(  # type: ignore[no-any-return]
        make_model(),
        [torch.randn(1, 3, 8, 8), torch.randn(4, 3, 8, 8)],
        cast_modes=["fp32", "fp16"],
        device_type="cuda",
        models_dir=folder / "models",
        filename=folder / "cuda.json",
    )


def test_compiled_for_cuda_and_computes_like_the_model(cuda_index: str) -> None:
    configs = npf.model_index.load(cuda_index)["model_configs"]
    assert all(c["status"] == "finished" and c["device_type"] == "cuda" for c in configs), configs
    x = torch.randn(4, 3, 8, 8)
    model = npf.torch.load(configs[2]["filename"])
    assert isinstance(model, CudaModel)
    out = model(x)  # a CPU input is moved to the GPU
    assert out.device.type == "cuda"
    with torch.no_grad():
        torch.testing.assert_close(out.cpu(), make_model()(x), atol=1e-3, rtol=1e-3)


def test_benchmark_threads_and_interpreters(cuda_index: str) -> None:
    inputs = [torch.randn(1, 3, 8, 8), torch.randn(4, 3, 8, 8)]
    for multiprocess in (False, True):
        reports = npf.torch.benchmark(
            cuda_index, inputs, n_models=1, workers_per_model=1, multiprocess=multiprocess, **QUICK
        )
        assert len(reports) == 4
        for report in reports:
            assert report["status"] == "finished", report["error"]
            assert report["device_type"] == "cuda" and report["latency_ms_p50"] > 0


def test_evaluate_on_cuda(cuda_index: str) -> None:
    reports = npf.torch.evaluate(
        cuda_index, Records(8), metrics=["accuracy", "topk"], cast_modes="fp32", **QUICK
    )
    assert [(r["batch_size"], r["status"]) for r in reports] == [(1, "finished"), (4, "finished")]
    assert reports[0]["accuracy"] == pytest.approx(reports[1]["accuracy"])


def test_more_copies_than_gpus_is_refused(cuda_index: str) -> None:
    from neuronperf_torch.errors import DeviceUnavailableError

    count = torch.cuda.device_count()
    with pytest.raises(DeviceUnavailableError, match=f"torch sees {count}"):
        npf.torch.benchmark(
            cuda_index, [torch.randn(1, 3, 8, 8)], batch_sizes=[1], n_models=count + 1, **QUICK
        )


def test_fp16_artifact_runs_in_half(cuda_index: str, tmp_path: Path) -> None:
    config = npf.model_index.load(cuda_index)["model_configs"][1]
    assert config["cast_mode"] == "fp16" and config["dtype"] == "float16"
    out = npf.torch.load(config["filename"])(torch.randn(1, 3, 8, 8))
    assert out.dtype is torch.float32  # fp16 inside, fp32 in and out
