"""``neuronperf demo``: train, compile, benchmark, evaluate and plot a small model, end to end.

The model is an MLP (64 -> 128 -> 10, ReLU) that classifies scikit-learn's bundled 8x8
digits (no download). It takes the raw pixel values (0..16) and scales them itself, so the
compiled model, the benchmark inputs and the evaluation data all use the dataset as it is.
Training is seeded, on a fixed stratified split: 448 held-out records (a quarter of the
1797, and a multiple of every batch size, so evaluation scores each record at each one).
Its weights are cached (a ``state_dict`` read back with ``weights_only=True``) under a
name that changes with the architecture or the training recipe.

Written into ``output_dir``, each run's results under new names (``STAMP`` is the run's
``YYYYmmdd-HHMMSS``), so two runs compare with ``neuronperf report OLD.json NEW.json``:

- ``demo.index.json`` and ``models/``: the model compiled for batch sizes 1, 8 and 32
  (replaced each run);
- ``digits_mlp.results-STAMP.json`` and ``.csv``: the benchmark reports, one per config;
- ``digits_mlp.evaluation-STAMP.json``: the evaluation reports (one per batch size) with
  accuracy, ``precision_macro`` and ``topk_3`` on the held-out records;
- ``digits_mlp.results-STAMP.png``: the benchmark reports plotted (``neuronperf_core.plots``).

``quick=True`` (for CI) runs one ``n_models``, 0.4 s per config, with the model copies as
threads of this process: a fresh interpreter per copy costs about 2 s per config on a
small machine, more than the measurement. The full run uses fresh interpreters, as
``npf.torch.benchmark`` does by default.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuronperf_core import devices as machine
from neuronperf_torch import devices
from neuronperf_torch.devices import one_thread
from neuronperf_torch.errors import TorchArgumentError

if TYPE_CHECKING:
    import click
    from torch import nn

logger = logging.getLogger("neuronperf.torch.demo")

ARCH = "digits-mlp-64x128x10-adam30-v1"  # change it when the model or training changes
MODEL_NAME = "digits_mlp"
N_FEATURES, N_HIDDEN, N_CLASSES = 64, 128, 10
PIXEL_MAX = 16.0  # load_digits' pixel values are 0..16
TEST_RECORDS = 448  # 14 * 32: every batch size divides it
SEED = 0
EPOCHS, TRAIN_BATCH, LEARNING_RATE = 30, 64, 3e-3
BATCH_SIZES = (1, 8, 32)
WORKERS = [1, 2]
FULL_DURATION, QUICK_DURATION = 2.0, 0.4
METRICS = ["accuracy", "precision_macro", "topk_3"]
# The demo's table: its configs (one model file per batch size, pipeline size 1) and their
# figures; the files hold every field, the sort column throughput_peak comes last.
TABLE_COLS = [
    "batch_size", "n_models", "workers_per_model", "throughput_avg", "latency_ms_p50",
    "latency_ms_p99",
]  # fmt: skip
EXTRA_HINT = "pip install 'neuronperf-torch[demo]'"


def _require(module: str, distribution: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise TorchArgumentError(f"the demo needs {distribution}: {EXTRA_HINT}")


def _output_dir(output_dir: str | os.PathLike[str]) -> Path:
    folder = Path(os.path.abspath(output_dir))
    if folder.exists() and not folder.is_dir():
        raise TorchArgumentError(
            f"output_dir {folder} is a file; the demo writes several files into a folder. "
            "Pass a folder (it is created if missing)."
        )
    return folder


def default_cache_dir() -> Path:
    """$NEURONPERF_CACHE_DIR, else $XDG_CACHE_HOME/neuronperf, else ~/.cache/neuronperf."""
    own = os.environ.get("NEURONPERF_CACHE_DIR")
    if own:
        return Path(own)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "neuronperf" if xdg else Path.home() / ".cache" / "neuronperf"


def _device(device_type: str | None) -> str:
    """The device to run on (Neuron where torch-neuronx is installed, else CPU), checked now:
    nothing expensive has run yet."""
    if device_type is None:
        device = devices.NEURON if devices.neuron_installed() else devices.CPU
    else:
        device = devices.device_type_of(device_type)
    if device == devices.NEURON:
        from neuronperf_torch import neuron

        devices.neuron_cores()  # torch-neuronx installed, a NeuronCore visible
        neuron.resolve_target(None, [])  # the compiler target, from this instance's family
    elif device == devices.CUDA:
        devices.cuda_devices()
    return device


def _n_models(device: str, quick: bool) -> list[int]:
    """[1] quick, else [1, 2] where the device has room for two copies."""
    if quick:
        return [1]
    if device == devices.CPU:
        room = machine.cpu_cores()
    elif device == devices.CUDA:
        import torch

        room = torch.cuda.device_count()
    else:
        room = len(devices.neuron_cores()[0])
    return sorted({1, min(2, room)})


def _register_metrics() -> None:
    """precision_macro and topk_3, once per process; a different metric under either name is
    an error rather than a mislabelled score."""
    from neuronperf_core.errors import RegistrationError
    from neuronperf_core.metrics.registry import get_metric, register_metric_from_existing
    from neuronperf_core.plugins import get_host

    for name, base, options in (
        ("precision_macro", "precision", {"average": "macro"}),
        ("topk_3", "topk", {"k": 3}),
    ):
        if name not in get_host().metrics:
            register_metric_from_existing(base, name, **options)
            continue
        have, want = get_metric(name), get_metric(base)
        if have.value is not want.value or dict(have.options) != {**want.options, **options}:
            raise RegistrationError(
                f"metric {name!r} is already registered as {have.value.__name__} with "
                f"{dict(have.options)}; the demo needs it to be {base!r} with {options}. "
                "Run the demo in a process where that name is free."
            )


# -- data and model ----------------------------------------------------------------------


def _digits() -> tuple[Any, Any, Any, Any]:
    """x_train, x_test (float32, raw pixels), y_train, y_test (int64): a fixed split."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    split = train_test_split(
        x.astype(np.float32),
        y.astype(np.int64),
        test_size=TEST_RECORDS,
        stratify=y,
        random_state=SEED,
    )
    x_train, x_test, y_train, y_test = split
    return x_train, x_test, y_train, y_test


_digits_mlp: type[nn.Module] | None = None


def _model_class() -> type[nn.Module]:
    """``DigitsMLP``, defined on first use: this module is imported whenever ``neuronperf``
    starts (the plugin's commands hook registers ``demo`` from here), so it imports torch
    only when the demo runs."""
    global _digits_mlp
    if _digits_mlp is None:
        import torch
        from torch import nn

        class DigitsMLP(nn.Module):
            """Raw 8x8 digit pixels (0..16), flattened to 64 -> class logits."""

            def __init__(self) -> None:
                super().__init__()
                self.hidden = nn.Linear(N_FEATURES, N_HIDDEN)
                self.out = nn.Linear(N_HIDDEN, N_CLASSES)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                # Scaling here, not in the data: every caller passes the dataset as it is.
                logits: torch.Tensor = self.out(torch.relu(self.hidden(x * (1.0 / PIXEL_MAX))))
                return logits

        DigitsMLP.__qualname__ = "DigitsMLP"  # found as neuronperf_torch.demo.DigitsMLP
        _digits_mlp = DigitsMLP
    return _digits_mlp


def __getattr__(name: str) -> Any:
    if name == "DigitsMLP":
        return _model_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _train(x_train: Any, y_train: Any) -> nn.Module:
    import torch
    import torch.nn.functional as F

    # One intra-op thread: this MLP trains in about 0.5 s on it, while two OpenMP threads on a
    # busy 2-core machine spun at barriers for 5-10 s; and no OpenMP team is left running in
    # this thread to slow down the benchmark's workers (see loading.CpuModel).
    with torch.random.fork_rng(devices=[]), one_thread():  # the caller's RNG left alone
        torch.manual_seed(SEED)
        model = _model_class()()
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        x, y = torch.from_numpy(x_train), torch.from_numpy(y_train)
        order = torch.Generator().manual_seed(SEED)
        model.train()
        for _ in range(EPOCHS):
            permutation = torch.randperm(len(x), generator=order)
            for start in range(0, len(x), TRAIN_BATCH):
                batch = permutation[start : start + TRAIN_BATCH]
                loss = F.cross_entropy(model(x[batch]), y[batch])
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
    return model.eval()


def _cache_file(cache_dir: str | os.PathLike[str] | None) -> Path:
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return Path(os.path.abspath(folder)) / f"demo-{ARCH}.pt"


def _load_cached(path: Path) -> nn.Module | None:
    """The cached model, or None (missing, or unreadable: logged, then retrained)."""
    if not path.is_file():
        return None
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        with torch.random.fork_rng(devices=[]):  # its initial weights are replaced anyway
            model = _model_class()()
        expected = model.state_dict()
        if not isinstance(state, dict) or set(state) != set(expected):
            raise ValueError(f"keys {sorted(state) if isinstance(state, dict) else state!r}")
        for key, want in expected.items():
            got = state[key]
            if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
                raise ValueError(f"{key} is {shape}, expected {tuple(want.shape)}")
            if got.dtype != want.dtype or not bool(torch.isfinite(got).all()):
                raise ValueError(f"{key} has dtype {got.dtype} or non-finite values")
        model.load_state_dict(state)
    except Exception as exc:  # any damage to the cache means retraining, never a crash
        logger.warning(
            "ignoring the cached demo model %s (%s: %s); training it again",
            path,
            type(exc).__name__,
            exc,
        )
        return None
    return model.eval()


def _save_cached(model: nn.Module, path: Path) -> bool:
    """Write the weights atomically; a cache that cannot be written only costs a retrain."""
    import torch

    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        logger.warning("cannot cache the demo model in %s: %s", path, exc)
        return False
    return True


def _accuracy(model: nn.Module, x: Any, y: Any) -> float:
    import torch

    with torch.inference_mode(), one_thread():
        predicted = model(torch.from_numpy(x)).argmax(1)
    return float((predicted == torch.from_numpy(y)).float().mean())


def _remove_previous(index_file: Path) -> None:
    """A previous demo's models in this folder: delete them so reruns do not pile up."""
    if not index_file.exists():
        return
    from neuronperf_core import model_index

    try:
        model_index.delete(index_file)  # refuses anything outside the index's folder
    except (model_index.ModelIndexError, OSError) as exc:
        logger.warning("leaving the previous demo's models in place (%s)", exc)


# -- the demo -----------------------------------------------------------------------------


def demo(
    output_dir: str | os.PathLike[str],
    *,
    quick: bool = False,
    device_type: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    verbosity: int = 1,
) -> dict[str, Any]:
    """Train (or load from the cache), compile, benchmark, evaluate and plot the digits MLP.

    ``device_type``: Neuron when torch-neuronx is installed, else CPU; "cpu", "cuda" or
    "neuron" to choose. ``cache_dir`` holds the trained weights (``default_cache_dir()``).
    Returns ``device_type``, ``model_cached`` (weights read from the cache), ``train_s``
    (seconds spent training; 0.0 when cached), ``test_accuracy`` (the eager model on the
    held-out records), the ``benchmark`` and ``evaluation`` reports, and ``files``: the
    absolute paths of ``json``, ``csv`` (benchmark), ``evaluation``, ``index`` and ``plot``
    (None, with a logged warning, when no benchmark config finished).
    Progress is logged (``neuronperf.torch.demo``) and printed by the engine, by verbosity.
    """
    # -- everything checked before any work ------------------------------------------
    folder = _output_dir(output_dir)
    _require("sklearn", "scikit-learn")
    _require("matplotlib", "matplotlib")
    if importlib.util.find_spec("neuronperf_core.plots") is None:
        raise TorchArgumentError(
            "the demo plots with neuronperf_core.plots, which this neuronperf-core lacks: "
            "upgrade neuronperf-core."
        )
    device = _device(device_type)
    n_models = _n_models(device, quick)
    _register_metrics()
    cache = _cache_file(cache_dir)
    try:
        (folder / "models").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TorchArgumentError(f"cannot create output_dir {folder}: {exc}") from exc

    import torch

    from neuronperf_core import api, files
    from neuronperf_core.plots import PlotError, plot_reports
    from neuronperf_core.reporting import write_csv
    from neuronperf_torch.backend import TorchBackend
    from neuronperf_torch.datafiles import dataset_from_arrays

    backend = TorchBackend()

    # -- the model ------------------------------------------------------------------------
    x_train, x_test, y_train, y_test = _digits()
    model = _load_cached(cache)
    cached = model is not None
    train_s = 0.0
    if model is None:
        start = time.perf_counter()
        model = _train(x_train, y_train)
        train_s = round(time.perf_counter() - start, 3)
        logger.info("trained the digits model in %.2f s", train_s)
        if _save_cached(model, cache):
            logger.info("cached its weights in %s", cache)
    else:
        logger.info("loaded the digits model from %s", cache)
    test_accuracy = _accuracy(model, x_test, y_test)
    logger.info("test accuracy of the eager model: %.4f", test_accuracy)

    # -- compile, benchmark, evaluate -------------------------------------------------
    index_file = folder / "demo.index.json"
    _remove_previous(index_file)
    examples = [torch.from_numpy(x_test[:size]) for size in BATCH_SIZES]
    index = api.compile(
        backend,
        model,
        examples,
        batch_sizes=list(BATCH_SIZES),
        models_dir=folder / "models",
        model_name=MODEL_NAME,
        filename=index_file,
        device_type=device,
        verbosity=verbosity,
    )
    run_kwargs: dict[str, Any] = {"verbosity": verbosity}
    if quick:
        run_kwargs["multiprocess"] = False
    # A new name each run: the engine says where, and rewrites it after every config.
    json_file = files.results_path(folder, None, MODEL_NAME)
    assert json_file is not None  # a folder was given
    try:
        benchmark = api.benchmark(
            backend,
            index,
            examples,
            duration=QUICK_DURATION if quick else FULL_DURATION,
            n_models=n_models,
            workers_per_model=WORKERS,
            results_file=json_file,
            **run_kwargs,
        )
    finally:
        files.release(json_file)  # the name taken, if no report replaced it
    csv_file = write_csv(benchmark, json_file.with_suffix(".csv"))
    stamp = json_file.stem.removeprefix(f"{MODEL_NAME}.results-")
    for report in benchmark:
        if report.get("status") != "finished":
            logger.warning(
                "benchmark config (batch size %s, n_models %s, workers %s) %s: %s",
                report.get("batch_size"),
                report.get("n_models"),
                report.get("workers_per_model"),
                report.get("status"),
                report.get("error"),
            )
    evaluation_file = folder / f"{MODEL_NAME}.evaluation-{stamp}.json"
    try:
        evaluation = api.evaluate(
            backend,
            index,
            dataset_from_arrays([x_test, y_test]),
            metrics=METRICS,
            results_file=evaluation_file,
            **run_kwargs,
        )
    finally:
        files.release(evaluation_file)
    for report in evaluation:
        values = ", ".join(f"{m} {report.get(m)}" for m in METRICS)
        logger.info("evaluation at batch size %s: %s", report.get("batch_size"), values)

    plot_file: str | None
    try:
        plot_file = plot_reports(
            benchmark,
            json_file.with_suffix(".png"),
            title=f"neuronperf demo: {MODEL_NAME} on {device}, digits",
        )
    except PlotError as exc:
        logger.warning("no plot: %s", exc)
        plot_file = None
    return {
        "device_type": device,
        "model_cached": cached,
        "train_s": train_s,
        "test_accuracy": test_accuracy,
        "benchmark": benchmark,
        "evaluation": evaluation,
        "files": {
            "json": os.path.abspath(json_file),
            "csv": os.path.abspath(csv_file),
            "plot": os.path.abspath(plot_file) if plot_file is not None else None,
            "index": os.path.abspath(index),
            "evaluation": os.path.abspath(evaluation_file),
        },
    }


# -- `neuronperf demo` ----------------------------------------------------------------------


def register_demo_command(cli: click.Group) -> None:
    """Add ``neuronperf demo`` to the command line (the plugin's commands hook)."""
    import click

    from neuronperf_core.cli import (
        all_finished,
        json_option,
        print_files,
        print_json,
        verbosity_options,
    )

    @cli.command(
        name="demo",
        short_help="train, compile, benchmark and evaluate a small digits classifier, end to end",
        help="Train, compile, benchmark and evaluate a small digits classifier, end to end.\n\n"
        "Needs pip install 'neuronperf-torch[demo]' (scikit-learn, matplotlib). Writes the "
        "results JSON and CSV, the evaluation JSON and a PNG plot into --output-dir.",
        epilog="example:\n  neuronperf demo --quick --output-dir demo-out",
    )
    @click.option("--quick", is_flag=True, help="a few seconds per step (for CI)")
    @click.option(
        "--output-dir", default="neuronperf-demo", show_default=True, metavar="DIR",
        help="the folder the files go to",
    )  # fmt: skip
    @click.option(
        "--device",
        type=click.Choice(devices.DEVICE_TYPES),
        help="default: neuron when torch-neuronx is installed, else cpu",
    )
    @verbosity_options
    @json_option("print the reports and file paths as JSON")
    def demo_command(
        quick: bool, output_dir: str, device: str | None, verbosity: int, as_json: bool
    ) -> int:
        from neuronperf_core.reporting import print_reports

        result = demo(output_dir, quick=quick, device_type=device, verbosity=verbosity)
        if as_json:
            print_json(result)
        else:
            print(f"benchmark on {result['device_type']}, best first:")
            print_reports(result["benchmark"], cols=TABLE_COLS)
            print("\nevaluation on the held-out split:")
            print_reports(result["evaluation"], cols=["batch_size", *METRICS], sort_by=None)
            print()
            print_files(result["files"])
        return 0 if all_finished(result["benchmark"]) and all_finished(result["evaluation"]) else 1
