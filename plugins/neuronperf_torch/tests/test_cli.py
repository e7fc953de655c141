"""The `neuronperf` command line with the torch plugin, run in subprocesses as users run it."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

FACTORY = """
import torch


def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
"""
ONE_CONFIG = ["--n-models", "1", "--workers-per-model", "1"]


class Cli:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {**os.environ, "NEURONPERF_CACHE_DIR": str(cwd / "cache")}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "neuronperf", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def user_error(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result.stderr


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / "tiny.py").write_text(FACTORY)
    return Cli(tmp_path)


@pytest.fixture
def index(cli: Cli) -> Path:
    data = cli.json("compile", "tiny.py:build", "--input-shape", "1x16", "--batch-sizes", "1,4",
                    "--device", "cpu", "--out", "models")  # fmt: skip
    assert [c["status"] for c in data["model_index"]["model_configs"]] == ["finished"] * 2
    return Path(data["index"])


@pytest.mark.slow
def test_demo_quick_writes_every_file(cli):
    data = cli.json("demo", "--quick", "--output-dir", "demo")
    files = {kind: Path(path) for kind, path in data["files"].items()}
    reports = json.loads(files["json"].read_text())
    assert len(reports) == 6  # batch sizes 1, 8, 32 x workers 1, 2
    assert {(r["batch_size"], r["workers_per_model"]) for r in reports} == {
        (b, w) for b in (1, 8, 32) for w in (1, 2)
    }
    assert all(r["status"] == "finished" and r["throughput_avg"] > 0 for r in reports)
    assert len(files["csv"].read_text().splitlines()) == 1 + 6
    png = files["plot"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1200, 500)
    evaluation = json.loads(files["evaluation"].read_text())
    assert all(r["accuracy"] > 0.85 for r in evaluation)
    assert all(files[k].parent.parent == cli.cwd for k in ("json", "plot"))
    # a second run keeps the first's results: the two compare, config by config
    second = cli.json("demo", "--quick", "--output-dir", "demo")["files"]
    assert Path(second["json"]) != files["json"] and files["json"].is_file()
    compared = cli.run("report", str(files["json"]), second["json"])
    assert compared.returncode == 0, compared.stderr
    rows = [line for line in compared.stdout.splitlines() if line.startswith("b")]
    assert len(rows) == 6  # every config of the first run matched in the second


@pytest.mark.slow
def test_compile_benchmark_evaluate_report(cli, index):
    data = cli.json("benchmark", str(index), "--input-shape", "1x16", "--duration", "0.3",
                    *ONE_CONFIG, "--output-dir", "runs")  # fmt: skip
    reports = data["reports"]
    assert [(r["batch_size"], r["status"]) for r in reports] == [(1, "finished"), (4, "finished")]
    assert json.loads(Path(data["files"]["json"]).read_text()) == reports

    x = torch.randn(40, 16)
    y = torch.randint(0, 4, (40,))
    torch.save((x, y), cli.cwd / "val.pt")
    data = cli.json("evaluate", str(index), "--dataset", "val.pt", "--metrics",
                    "accuracy,topk_2,precision:average=macro")  # fmt: skip
    expected = (cli_model()(x).argmax(dim=1) == y).float().mean().item()
    for r in data["reports"]:
        assert r["accuracy"] == pytest.approx(expected)
        assert r["topk_2"] >= r["accuracy"]
        assert r["total_infs"] * r["batch_size"] == 40
    np.savez(cli.cwd / "val.npz", x=x.numpy(), y=y.numpy())
    again = cli.json("evaluate", str(index), "--dataset", "val.npz", "--batch-sizes", "4")
    assert again["reports"][0]["accuracy"] == pytest.approx(expected)

    out = cli.run("report", data["files"]["json"], data["files"]["json"])
    assert out.returncode == 0 and "within noise" in out.stdout


EMBEDDING = """
import torch


def tokens():
    torch.manual_seed(0)
    layers = [torch.nn.Embedding(10, 4), torch.nn.Flatten(), torch.nn.Linear(24, 2)]
    return torch.nn.Sequential(*layers)
"""


@pytest.mark.slow
def test_benchmark_an_index_with_the_shapes_and_dtypes_it_records(cli):
    """An index of a model taking int64 token ids is benchmarked without --input-shape: the
    inputs are random values of the recorded shapes and dtypes (float32 would be refused)."""
    (cli.cwd / "emb.py").write_text(EMBEDDING)
    data = cli.json("compile", "emb.py:tokens", "--input-shape", "1x6", "--dtype", "int64",
                    "--batch-sizes", "1,4", "--device", "cpu", "--out", "m")  # fmt: skip
    configs = data["model_index"]["model_configs"]
    assert [c["input_dtypes"] for c in configs] == [["int64"], ["int64"]]
    runs = cli.json("benchmark", data["index"], "--duration", "0.2", *ONE_CONFIG)
    assert [(r["batch_size"], r["status"]) for r in runs["reports"]] == [
        (1, "finished"),
        (4, "finished"),
    ]


def cli_model() -> Any:
    namespace: dict[str, Any] = {}
    exec(FACTORY, namespace)
    return namespace["build"]().eval()


@pytest.mark.slow
def test_compile_a_saved_exported_model(cli):
    program = torch.export.export(cli_model(), (torch.randn(1, 16),))
    torch.export.save(program, cli.cwd / "saved.pt2")
    data = cli.json("compile", "saved.pt2", "--input-shape", "1x16", "--device", "cpu",
                    "--backend", "torch", "--out", "m")  # fmt: skip
    assert data["model_index"]["model_name"] == "saved"
    assert data["model_index"]["model_configs"][0]["status"] == "finished"
    again = cli.json("compile", "saved.pt2", "--input-shape", "1x16", "--device", "cpu",
                     "--out", "m", "--name", "found")  # fmt: skip
    assert again["model_index"]["model_configs"][0]["status"] == "finished"  # found by owns()


def test_demo_is_the_torch_plugins_command(cli):
    """`neuronperf demo` comes from this plugin's neuronperf_register_commands hook, and
    registering it imports no torch: `neuronperf --help` stays fast."""
    result = cli.run("--help")
    assert result.returncode == 0 and "\n  demo " in result.stdout
    out = cli.run("demo", "--help").stdout
    assert "example:\n  neuronperf demo --quick" in out and "--json" in out
    from neuronperf_core.cli.app import cli as group

    group.add_plugin_commands()
    assert [p.name for p in group.commands["demo"].params if not p.help] == []  # one line each
    plugins = {p["name"]: p for p in cli.json("plugins")}
    assert plugins["torch"]["registered"]["commands"] == ["demo"]
    imported = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "neuronperf_core.cli", "--help"],
        cwd=cli.cwd, env=cli.env, capture_output=True, text=True, timeout=60,
    ).stderr  # fmt: skip
    assert "neuronperf_torch.demo" in imported
    assert not [line for line in imported.splitlines() if line.endswith(("| torch", "| numpy"))]


def test_user_errors_are_one_line(cli, index):
    err = cli.user_error("compile", "tiny.py:build", "--input-shape", "1x16", "--out", "n",
                         "--device", "neuron", "--compiler-target", "inf2")  # fmt: skip
    assert "torch-neuronx" in err and len(err.strip().splitlines()) == 1
    err = cli.user_error("benchmark", str(index), "--input-shape", "1x15", "--duration", "0.1")
    assert "shape" in err
    (cli.cwd / "evil.pt").write_bytes(b"\x80\x04\x95")
    err = cli.user_error("evaluate", str(index), "--dataset", "evil.pt")
    assert "evil.pt" in err
    err = cli.user_error("compile", "tiny.py:nothing", "--input-shape", "1x16")
    assert "has no 'nothing'" in err
