"""Discovery, the npf.torch module, and the promise not to import torch while listing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import neuronperf as npf
from neuronperf_core.plugins import get_host


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_listing_plugins_and_metrics_does_not_import_torch() -> None:
    result = _run(
        """
        import io, json, sys
        from neuronperf_core.cli import main
        main(["plugins", "--json"])
        import neuronperf as npf
        npf.list_metrics(file=io.StringIO())
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torch_neuronx"))
        print(json.dumps({"heavy": heavy, "backend": "neuronperf_torch.backend" in sys.modules}))
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    plugins = json.loads("\n".join(lines[:-1]))
    last = json.loads(lines[-1])
    assert last["heavy"] == []
    (torch_plugin,) = [p for p in plugins if p["name"] == "torch"]
    assert torch_plugin["status"] == "active"
    assert torch_plugin["distribution"] == "neuronperf-torch"
    assert torch_plugin["registered"]["backends"] == ["torch"]
    assert torch_plugin["registered"]["metrics"] == ["TopK"]


def test_npf_torch_is_the_core_bound_to_the_torch_backend() -> None:
    import neuronperf.torch
    from neuronperf_torch.backend import TorchBackend

    assert neuronperf.torch is npf.torch
    assert isinstance(npf.torch.backend, TorchBackend)
    assert callable(npf.torch.load)
    assert callable(npf.torch.compile)
    assert callable(npf.torch.benchmark)
    assert callable(npf.torch.evaluate)


def test_guide_variant_registration_runs_verbatim_after_import() -> None:
    result = _run(
        """
        import io
        import neuronperf as npf
        import neuronperf.torch
        npf.register_metric_from_existing("topk", "topk_3", k=3)
        out = io.StringIO()
        npf.list_metrics(file=out)
        print(out.getvalue())
        """
    )
    assert result.returncode == 0, result.stderr
    assert "TopK " in result.stdout
    rows = [line.split(maxsplit=1) for line in result.stdout.splitlines()]
    assert ["topk_3", "TopK with k=3"] in rows  # column widths follow the installed metrics


def test_topk_lookups_and_options() -> None:
    from neuronperf_torch.metrics import TopK

    from neuronperf_core.metrics.registry import create_metric, get_metric

    assert get_metric("topk").value is TopK
    assert get_metric("TopK").provider == "torch"
    npf.register_metric_from_existing("topk", "top5", k=5)
    metric = create_metric("top5")
    assert isinstance(metric, TopK) and metric.k == 5
    assert create_metric("topk").k == 1


def test_bad_topk_variant_is_refused_when_registered() -> None:
    from neuronperf_core.errors import RegistrationError

    with pytest.raises(RegistrationError, match="k must be a whole number >= 1"):
        npf.register_metric_from_existing("topk", "top0", k=0)


def test_backend_registered_as_an_object_satisfying_the_contract() -> None:
    from neuronperf_core.backend import Backend

    entry = get_host().backends.get("torch")
    assert isinstance(entry.value, Backend)
    assert entry.provider == "torch"


@pytest.mark.skipif(
    not __import__("os").environ.get("NEURONPERF_TORCH_EXPECT_INSTALLED"),
    reason="only in the nox session `torch`, which installs real distributions",
)
def test_the_installed_distributions_are_under_test() -> None:
    from importlib.metadata import distribution

    import neuronperf_torch

    import neuronperf_core

    for module in (neuronperf_core, neuronperf_torch):
        assert "site-packages" in module.__file__, module.__file__  # type: ignore[operator]
    direct_url = distribution("neuronperf-torch").read_text("direct_url.json") or "{}"
    assert '"editable": true' not in direct_url
