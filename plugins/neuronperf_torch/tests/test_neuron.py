"""The Neuron path against torch_neuronx_double (a test double of torch_neuronx): compiler
arguments, the model index, per-copy NeuronCores, and the errors."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from neuronperf_torch import devices, neuron
from neuronperf_torch.errors import DeviceUnavailableError, TorchArgumentError
from npt_helpers import RecordSetup, make_model, read_lines

import neuronperf as npf
from neuronperf_core.benchmarking.plan import BenchmarkArgumentError
from neuronperf_core.options import OptionError

QUICK = {"duration": 0.2, "results_dir": None, "verbosity": 0, "stats_interval": 0}


def compile_neuron(tmp_path: Path, **kwargs: object) -> str:
    kwargs.setdefault("compiler_target", "inf2")
    sizes = kwargs.setdefault("batch_sizes", [1, 4])
    return npf.torch.compile(  # type: ignore[no-any-return]
        make_model(),
        [torch.randn(b, 3, 8, 8) for b in sizes],  # type: ignore[attr-defined]
        models_dir=tmp_path / "models",
        filename=tmp_path / "neuron.json",
        **kwargs,
    )


def test_compiler_arguments_and_index(neuronx_double, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index = compile_neuron(
        tmp_path, cast_modes=["none", "matmult-bf16", "all-fp8_e4m3"], compiler_args="--optlevel 3"
    )
    traces = neuronx_double.records("trace")
    assert [t["compiler_args"] for t in traces] == [
        ["--optlevel", "3", "--target", "inf2", "--auto-cast", "none"],
        [
            "--optlevel",
            "3",
            "--target",
            "inf2",
            "--auto-cast",
            "matmult",
            "--auto-cast-type",
            "bf16",
        ],
        [
            "--optlevel",
            "3",
            "--target",
            "inf2",
            "--auto-cast",
            "all",
            "--auto-cast-type",
            "fp8_e4m3",
        ],
    ] * 2
    assert [t["input_shapes"] for t in traces] == [[[1, 3, 8, 8]]] * 3 + [[[4, 3, 8, 8]]] * 3
    configs = npf.model_index.load(index)["model_configs"]
    assert [(c["batch_size"], c["cast_mode"]) for c in configs] == [
        (b, m) for b in (1, 4) for m in ("none", "matmult-bf16", "all-fp8_e4m3")
    ]
    for config, trace in zip(configs, traces, strict=True):
        assert config["status"] == "finished" and config["device_type"] == "neuron"
        assert config["compiler_target"] == "inf2"
        assert config["compiler_args"] == trace["compiler_args"]
        assert (config["auto_cast"], config["auto_cast_type"]) == (
            ("none", None)
            if config["cast_mode"] == "none"
            else tuple(config["cast_mode"].split("-"))
        )
        assert config["format"] == "torchscript-neuronx" and config["filename"].endswith(".pt")
        workdir = Path(config["compiler_workdir"])
        assert workdir == Path(trace["compiler_workdir"])  # kept next to the artifact
        assert workdir.parent == Path(config["filename"]).parent
        assert "--auto-cast" in (workdir / "command.txt").read_text()


def test_auto_cast_in_compiler_args_is_recorded_as_the_cast_mode(
    neuronx_double, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    index = compile_neuron(
        tmp_path, compiler_args=["--auto-cast=all", "--target", "trn1"], compiler_target=None
    )
    assert {c["cast_mode"] for c in npf.model_index.load(index)["model_configs"]} == {"all-bf16"}
    assert neuronx_double.records("trace")[0]["compiler_args"] == [
        "--target",
        "trn1",
        "--auto-cast",
        "all",
        "--auto-cast-type",
        "bf16",
    ]


def test_a_compiler_failure_is_recorded(
    neuronx_double, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TORCH_NEURONX_DOUBLE_FAIL", "fp16")
    index = compile_neuron(tmp_path, cast_modes=["all-fp16", "all-bf16"], batch_sizes=[1, 4])
    configs = npf.model_index.load(index)["model_configs"]
    assert [c["status"] for c in configs] == ["error", "finished", "error", "finished"]
    assert "neuronx-cc failed" in configs[0]["error"] and configs[0]["filename"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pipeline_sizes": [1, 2]}, "torch-neuronx does not support NeuronCore pipelining"),
        ({"compiler_target": None}, "needs a target .* pass compiler_target="),
        ({"compiler_target": "inf1"}, "compiler_target='inf1' is not a Neuron target"),
        (
            {"compiler_args": "--target trn1"},
            "compiler_target='inf2' but compiler_args hold --target trn1",
        ),
        ({"cast_modes": ["bf16"]}, "cast mode 'bf16' is not a Neuron auto-cast mode"),
        (
            {"cast_modes": ["none"], "compiler_args": "--auto-cast all"},
            "both cast_modes and --auto-cast",
        ),
        ({"compiler_args": {"O": 3}}, "compiler_args must be a string or a list of strings"),
    ],
)
def test_compile_argument_errors(
    neuronx_double, tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:  # type: ignore[no-untyped-def]
    neuronx_double.machine("workstation")  # no instance family to take a target from
    with pytest.raises(TorchArgumentError, match=message):
        compile_neuron(tmp_path, **kwargs)
    assert neuronx_double.records("trace") == []  # refused before compiling anything


def test_without_torch_neuronx_neuron_is_a_clear_error(tmp_path: Path, cpu_index) -> None:  # type: ignore[no-untyped-def]
    assert not devices.neuron_installed()
    with pytest.raises(
        DeviceUnavailableError,
        match=r"needs torch-neuronx, which is not installed.*device_type='cpu'",
    ):
        compile_neuron(tmp_path)
    config = npf.model_index.load(cpu_index.index)["model_configs"][0]
    neuron_index = npf.model_index.create(
        config["filename"], batch_size=1, cast_mode="none", model_name="m", device_type="neuron"
    )
    path = npf.model_index.save(neuron_index, tmp_path / "n.json")
    with pytest.raises(DeviceUnavailableError, match="needs torch-neuronx, which is not installed"):
        npf.torch.benchmark(path, cpu_index.x1, **QUICK)


def test_each_copy_gets_its_own_neuron_cores_in_a_fresh_interpreter(
    neuronx_double, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    index = compile_neuron(tmp_path, batch_sizes=[1, 4])
    parent_imports = len(neuronx_double.records("import"))
    log = str(tmp_path / "setup.jsonl")
    (report,) = npf.torch.benchmark(
        index,
        [torch.randn(4, 3, 8, 8)],
        batch_sizes=[4],
        n_models=2,
        workers_per_model=1,
        setup_fn=RecordSetup(log),
        max_infers=20,
        **QUICK,
    )
    assert report["status"] == "finished", report["error"]
    assert report["device_type"] == "neuron" and report["multiinterpreter"] is True
    children = neuronx_double.records("import")[parent_imports:]
    assert sorted(r["visible_cores"] for r in children) == ["0", "1"]  # set before the import
    setups = read_lines(log)
    assert {r["copy_id"]: r["neuron_cores"] for r in setups} == {0: "0", 1: "1"}
    assert {r["pid"] for r in setups} == {r["pid"] for r in children}


def test_copies_use_the_cores_this_process_may_use(
    neuronx_double, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    index = compile_neuron(tmp_path, batch_sizes=[1, 4])
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "4-5")
    assert devices.neuron_cores() == ([4, 5], "NEURON_RT_VISIBLE_CORES")
    with pytest.raises(BenchmarkArgumentError, match=r"n_models=3: the neuron device holds 2"):
        npf.torch.benchmark(
            index, [torch.randn(1, 3, 8, 8), torch.randn(4, 3, 8, 8)], n_models=3, **QUICK
        )
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0,2")
    setup = devices.CopySetup("neuron", "interpreters", 2, ["0", "2"])
    with pytest.raises(DeviceUnavailableError, match="not contiguous"):
        setup(0, {"n_models": 1, "workers_per_model": 1, "pipeline_size": 2})


def test_threads_place_each_load_with_neuron_cores_context(neuronx_double, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index = compile_neuron(tmp_path, batch_sizes=[1, 4])
    (report,) = npf.torch.benchmark(
        index,
        [torch.randn(1, 3, 8, 8)],
        batch_sizes=[1],
        n_models=2,
        workers_per_model=1,
        multiprocess=False,
        **QUICK,
    )
    assert report["status"] == "finished", report["error"]
    contexts = neuronx_double.records("neuron_cores_context")
    assert [(c["start_nc"], c["nc_count"]) for c in contexts] == [(0, 1), (1, 1)]


def test_default_copies_are_the_visible_cores(neuronx_double, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index = compile_neuron(tmp_path, batch_sizes=[1, 4])
    reports = npf.torch.benchmark(
        index,
        [torch.randn(1, 3, 8, 8)],
        batch_sizes=[1],
        workers_per_model=1,
        multiprocess=False,
        **QUICK,
    )
    assert [r["n_models"] for r in reports] == [1, 2]


def test_evaluate_on_neuron(neuronx_double, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from npt_helpers import Records

    index = compile_neuron(tmp_path, batch_sizes=[1, 4])
    reports = npf.torch.evaluate(
        index,
        Records(8),
        metrics=["accuracy", "topk"],
        multiprocess=False,
        results_dir=None,
        verbosity=0,
    )
    assert [(r["batch_size"], r["status"], r["total_infs"]) for r in reports] == [
        (1, "finished", 8),
        (4, "finished", 2),
    ]
    assert reports[0]["accuracy"] == reports[1]["accuracy"] == reports[0]["topk"]


def test_fork_is_refused_and_pipelined_indexes_too(neuronx_double, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index = compile_neuron(tmp_path, batch_sizes=[1, 4])
    with pytest.raises(OptionError, match="Neuron runtime is not fork-safe"):
        npf.torch.benchmark(
            index, [torch.randn(1, 3, 8, 8), torch.randn(4, 3, 8, 8)], runner="processes", **QUICK
        )
    data = npf.model_index.load(index)
    data["model_configs"][0]["pipeline_size"] = 2
    pipelined = npf.model_index.save(data, tmp_path / "pipelined.json")
    with pytest.raises(TorchArgumentError, match="does not support NeuronCore pipelining"):
        npf.torch.benchmark(pipelined, [torch.randn(1, 3, 8, 8)], batch_sizes=[1], **QUICK)


def test_loading_needs_torch_neuronx_imported_first(neuronx_double, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """As with the real neuron:: operators: the double's artifacts load only after its import,
    which the plugin's loader does."""
    index = compile_neuron(tmp_path, batch_sizes=[1, 4])
    artifact = npf.model_index.load(index)["model_configs"][0]["filename"]
    code = textwrap.dedent(
        f"""
        import torch
        try:
            torch.jit.load({artifact!r})
        except RuntimeError as exc:
            print("refused:", "Unknown builtin op: neuron_double::" in str(exc))
        import neuronperf as npf
        model = npf.torch.load({artifact!r})
        print(tuple(model(torch.ones(1, 3, 8, 8)).shape))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**__import__("os").environ, "PYTHONPATH": ":".join(sys.path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["refused: True", "(1, 5)"]


def test_helpers() -> None:
    assert neuron.flag_value(["--target", "inf2", "--target=trn1"], "--target") == "trn1"
    assert neuron.without_flags(
        ["-O3", "--auto-cast", "all", "--auto-cast-type=fp16"], ("--auto-cast", "--auto-cast-type")
    ) == ["-O3"]
    assert devices.parse_core_list("0-1,4") == [0, 1, 4]
    with pytest.raises(TorchArgumentError, match="NEURON_RT_VISIBLE_CORES='a' is not"):
        devices.parse_core_list("a")
    assert neuron.CAST_MODES[:3] == ("none", "matmult-bf16", "matmult-fp16")


def test_trace_keywords_are_checked_against_torch_neuronx(neuronx_double, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from neuronperf_torch.errors import TorchArgumentError

    with pytest.raises(TorchArgumentError, match=r"'performance_levels'.*torch_neuronx.trace"):
        compile_neuron(tmp_path, performance_levels=[1])
    assert neuronx_double.records("trace") == []  # refused before any trace
    compile_neuron(tmp_path, inline_weights_to_neff=False)  # one torch_neuronx.trace takes
    assert neuronx_double.records("trace")


# -- issue 17: the Neuron path as real hardware runs it ------------------------------------


def test_cores_are_counted_with_neuron_ls_where_sysfs_is_root_only(
    neuronx_double, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The driver's core_count is root-only: the usual user counts with neuron-ls, and every
    report says which source was used."""
    index = compile_neuron(tmp_path, batch_sizes=[1, 4])
    reports = npf.torch.benchmark(
        index, [torch.randn(1, 3, 8, 8)], batch_sizes=[1], workers_per_model=1,
        multiprocess=False, max_infers=10, **QUICK,
    )  # fmt: skip
    assert [(r["n_models"], r["status"]) for r in reports] == [(1, "finished"), (2, "finished")]
    assert {r["neuron_core_source"] for r in reports} == {"neuron-ls"}
    assert {r["transfer"] for r in reports} == {"end_to_end"}


def test_readable_sysfs_is_the_fallback_and_none_is_a_clear_error(
    neuronx_double, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    neuronx_double.machine(neuron_ls=False, sysfs_readable=True)
    assert devices.neuron_cores() == ([0, 1], "sysfs")
    neuronx_double.machine(neuron_ls=False)  # root-only sysfs, as the driver makes it
    with pytest.raises(
        DeviceUnavailableError, match=r"neuron-ls --json-output is not installed.*root only"
    ):
        devices.neuron_cores()


def test_trn2_runs_logical_cores_compiled_for_the_runtimes_lnc(
    neuronx_double, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """One trn2 device: 8 physical cores (sysfs, even where readable), 4 logical at LNC=2.
    Counting physical cores gave 8 copies, 4 of them on cores the runtime does not have."""
    neuronx_double.machine("trn2.48xlarge", devices=1, physical_cores=8, sysfs_readable=True)
    assert devices.neuron_cores() == ([0, 1, 2, 3], "neuron-ls")
    index = compile_neuron(tmp_path, batch_sizes=[1, 4], compiler_target=None)
    (trace, _) = neuronx_double.records("trace")
    assert trace["compiler_args"][-4:] == ["--auto-cast", "none", "--logical-nc-config", "2"]
    assert "--target trn2" in " ".join(trace["compiler_args"])
    configs = npf.model_index.load(index)["model_configs"]
    assert {c["logical_nc_config"] for c in configs} == {2}
    reports = npf.torch.benchmark(
        index, [torch.randn(1, 3, 8, 8)], batch_sizes=[1], workers_per_model=1,
        multiprocess=False, max_infers=10, **QUICK,
    )  # fmt: skip
    assert [(r["n_models"], r["status"]) for r in reports] == [(1, "finished"), (4, "finished")]
    loads = neuronx_double.records("load")
    assert sorted(c for r in loads[-4:] for c in r["cores"]) == [0, 1, 2, 3]

    monkeypatch.setenv("NEURON_LOGICAL_NC_CONFIG", "1")  # the runtime now presents 8
    assert devices.neuron_cores()[0] == list(range(8))
    with pytest.raises(
        TorchArgumentError, match=r"compiled with --logical-nc-config 2, but the Neuron runtime"
    ):
        npf.torch.benchmark(index, [torch.randn(1, 3, 8, 8)], batch_sizes=[1], **QUICK)
    index1 = compile_neuron(tmp_path / "lnc1", batch_sizes=[1], compiler_target="trn2")
    assert neuronx_double.records("trace")[-1]["compiler_args"][-2:] == [
        "--logical-nc-config",
        "1",
    ]
    assert npf.model_index.load(index1)["model_configs"][0]["logical_nc_config"] == 1


def test_logical_nc_config_is_for_trn2_only(neuronx_double, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TorchArgumentError, match=r"--logical-nc-config 1, which only trn2"):
        compile_neuron(tmp_path, compiler_args=["--logical-nc-config", "1"])
    with pytest.raises(TorchArgumentError, match=r"--logical-nc-config 3: use 1 or 2"):
        compile_neuron(tmp_path, compiler_args="-lnc 3", compiler_target="trn2")
    assert neuronx_double.records("trace") == []
    index = compile_neuron(tmp_path, batch_sizes=[1], compiler_target="trn1")
    assert "logical_nc_config" not in npf.model_index.load(index)["model_configs"][0]
    assert "--logical-nc-config" not in neuronx_double.records("trace")[0]["compiler_args"]


def test_a_users_compiler_workdir_is_honoured(neuronx_double, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """It used to collide with the plugin's own: 'got multiple values for keyword argument
    compiler_workdir' in every config."""
    workdir = tmp_path / "neuronx-cc-work"
    index = compile_neuron(tmp_path, compiler_workdir=str(workdir))
    configs = npf.model_index.load(index)["model_configs"]
    assert [c["status"] for c in configs] == ["finished", "finished"], configs
    folders = [Path(c["compiler_workdir"]) for c in configs]
    assert len(set(folders)) == 2 and all(f.parent == workdir for f in folders)
    assert all((f / "command.txt").exists() for f in folders)
    assert [Path(t["compiler_workdir"]) for t in neuronx_double.records("trace")] == folders


@pytest.mark.parametrize(
    ("instance", "target"),
    [
        ("inf2.48xlarge", "inf2"),
        ("trn1.2xlarge", "trn1"),
        ("trn1n.32xlarge", "trn1n"),
        ("trn2.48xlarge", "trn2"),
        ("trn2n.48xlarge", "trn2"),
        ("trn2u.48xlarge", "trn2"),
    ],
)
def test_every_instance_family_has_its_compiler_target(
    neuronx_double, tmp_path: Path, instance: str, target: str
) -> None:  # type: ignore[no-untyped-def]
    neuronx_double.machine(instance)
    assert neuron.instance_target() == target
    compile_neuron(tmp_path, batch_sizes=[1], compiler_target=None)
    assert neuron.flag_value(neuronx_double.records("trace")[0]["compiler_args"], "--target") == (
        target
    )


def _hold_cores(artifact: str) -> subprocess.Popen[str]:
    """Another process that loaded a Neuron model and so holds every NeuronCore (a notebook
    kernel, say), until its stdin closes."""
    code = textwrap.dedent(
        f"""
        import sys, torch, torch_neuronx
        torch.jit.load({artifact!r})
        print("holding", flush=True)
        sys.stdin.read()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": ":".join(sys.path)},
    )
    assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
    return holder


@pytest.mark.parametrize("aborts", [False, True])
def test_cores_held_by_another_process(
    neuronx_double, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aborts: bool
) -> None:  # type: ignore[no-untyped-def]
    """The runtime either raises or aborts the copy (SIGABRT, optimum-neuron#377): either way
    the config's error names the likely cause."""
    index = compile_neuron(tmp_path, batch_sizes=[1])
    artifact = npf.model_index.load(index)["model_configs"][0]["filename"]
    if aborts:
        monkeypatch.setenv("TORCH_NEURONX_DOUBLE_ABORT", "1")
    holder = _hold_cores(artifact)
    try:
        (report,) = npf.torch.benchmark(
            index, [torch.randn(1, 3, 8, 8)], n_models=1, workers_per_model=1, **QUICK
        )
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    assert report["status"] == ("killed" if aborts else "error")
    if aborts:
        assert "killed by signal SIGABRT" in report["error"]
    assert re.search(r"another process \(a notebook kernel.*NeuronCores", report["error"])


def test_the_double_is_as_strict_as_the_runtime(neuronx_double, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """What a lenient double hid: placement outside the visible cores, shapes other than the
    traced ones, two processes on one core."""
    import torch_neuronx

    index = compile_neuron(tmp_path, batch_sizes=[1])
    artifact = npf.model_index.load(index)["model_configs"][0]["filename"]
    with (
        pytest.raises(RuntimeError, match=r"sees 2 NeuronCores"),
        torch_neuronx.neuron_cores_context(start_nc=2, nc_count=1),
    ):
        pass
    model = npf.torch.load(artifact)
    with pytest.raises(RuntimeError, match=r"compiled for \[1, 3, 8, 8\]"):
        model(torch.randn(2, 3, 8, 8))
    # this process now holds the cores: another cannot start its runtime
    code = f"import torch, torch_neuronx; torch.jit.load({artifact!r})"
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**__import__("os").environ, "PYTHONPATH": ":".join(sys.path)},
    )
    assert other.returncode != 0 and "not available" in other.stderr


def test_device_only_transfer_is_refused_on_neuron(neuronx_double, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index = compile_neuron(tmp_path, batch_sizes=[1])
    with pytest.raises(TorchArgumentError, match=r"transfer='device' on Neuron"):
        npf.torch.benchmark(index, [torch.randn(1, 3, 8, 8)], transfer="device", **QUICK)
