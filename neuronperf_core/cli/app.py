"""The ``neuronperf`` command line: the parser, exit statuses, errors and Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from neuronperf_core import __version__
from neuronperf_core.cli import commands
from neuronperf_core.cli.sources import dtype, name_list, positive_int_list, shape
from neuronperf_core.errors import NeuronPerfError

EXIT_OK = 0
EXIT_FAILED = 1  # a config failed, or a comparison found a regression
EXIT_USAGE = 2  # argparse uses 2 for its own usage errors too
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C

DEVICES = ("neuron", "cpu", "cuda")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples in each command's epilog as written."""


def _type(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type`` whose ValueError message reaches the user as it is."""

    def parse(text: str) -> Any:
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = convert.__name__  # argparse names the type in some messages
    return parse


INTS = _type(positive_int_list)
NAMES = _type(name_list)


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"expected a number >= 0, got {text!r}")
    return value


NUMBER = _type(_positive_float)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return int(text)


COUNT = _type(_count)


def _common(json_help: str = "print JSON on stdout, for scripts") -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help=json_help)
    common.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, and tracebacks on errors"
    )
    common.add_argument(
        "-q", "--quiet", action="store_true", help="no progress and no warnings, only errors"
    )
    return common


def _framework_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--framework",
        metavar="NAME",
        help="the framework plugin to use (default: the installed one that recognises MODEL)",
    )


def _run_options(parser: argparse.ArgumentParser, *, evaluating: bool) -> None:
    """Options of the commands that load and run models."""
    group = parser.add_argument_group("run options")
    group.add_argument(
        "--batch-sizes", type=INTS, metavar="B,...", help="only the configs of these batch sizes"
    )
    group.add_argument(
        "--device", choices=DEVICES, help="the device to run on (default: the one compiled for)"
    )
    if not evaluating:
        group.add_argument(
            "--duration", type=NUMBER, default=120.0, metavar="S",
            help="seconds of timed inference per config (default 120; 0: one pass)",
        )  # fmt: skip
        group.add_argument(
            "--n-models", type=INTS, metavar="N,...",
            help="model copies to sweep (default: 1 and as many as the device holds)",
        )  # fmt: skip
        group.add_argument(
            "--workers-per-model", type=INTS, metavar="W,...",
            help="worker threads per copy to sweep (default: 1,2)",
        )  # fmt: skip
        group.add_argument(
            "--cost-per-hour",
            type=NUMBER,
            metavar="USD",
            help="instance price, for cost_per_1m_inf",
        )
    group.add_argument(
        "--max-infers", type=COUNT, metavar="N", help="stop each config after N inferences"
    )
    group.add_argument(
        "--output-dir", default=".", metavar="DIR",
        help="where the results JSON and CSV go (default: the current folder)",
    )  # fmt: skip


def _input_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inputs (one of)")
    group.add_argument(
        "--input-shape", type=_type(shape), action="append", metavar="SHAPE",
        help="random inputs of this shape, batch first (1x3x224x224); the first dimension "
        "becomes each config's batch size; repeat for models of several inputs",
    )  # fmt: skip
    group.add_argument(
        "--dtype", type=_type(dtype), action="append", metavar="DTYPE",
        help="dtype of the random inputs (default float32); once for all, or once per shape",
    )  # fmt: skip
    group.add_argument(
        "--inputs", metavar="FILE",
        help="arrays from a file (.npz, or .pt with neuronperf-torch), one per model input, "
        "batch first; each config takes the first batch-size rows",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuronperf",
        description="Benchmark and evaluate models on AWS Neuron, CPU and CUDA.",
        formatter_class=_Formatter,
        epilog="Start with: neuronperf demo\nEach command has --help with an example.",
    )
    parser.add_argument("--version", action="version", version=f"neuronperf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, example: str, common: argparse.ArgumentParser) -> Any:
        return sub.add_parser(
            name,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            epilog=f"example:\n  {example}",
            formatter_class=_Formatter,
            parents=[common],
        )

    demo = command(
        "demo",
        "train, compile, benchmark and evaluate a small digits classifier, end to end",
        "neuronperf demo --quick --output-dir demo-out",
        _common("print the reports and file paths as JSON"),
    )
    demo.add_argument("--quick", action="store_true", help="a few seconds per step (for CI)")
    demo.add_argument("--output-dir", default="neuronperf-demo", metavar="DIR")
    demo.add_argument("--device", choices=DEVICES, help="default: neuron when present, else cpu")
    demo.add_argument("--framework", default="torch", metavar="NAME", help="default: torch")
    demo.set_defaults(run=commands.demo)

    compile_ = command(
        "compile",
        "compile a model once per batch size (and cast mode) and write a model index",
        "neuronperf compile torchvision.models:resnet18 --input-shape 1x3x224x224 "
        "--batch-sizes 1,8 --device cpu --out models",
        _common("print the model index as JSON"),
    )
    compile_.add_argument(
        "model", metavar="MODEL", help="a saved model file, or package.module:factory"
    )
    compile_.add_argument("--batch-sizes", type=INTS, metavar="B,...", help="default: 1")
    compile_.add_argument("--cast-modes", type=NAMES, metavar="MODE,...")
    compile_.add_argument("--pipeline-sizes", type=INTS, metavar="P,...", help="Neuron only")
    compile_.add_argument("--device", choices=DEVICES, help="default: the framework's (neuron)")
    compile_.add_argument("--out", default="models", metavar="DIR", help="default: models")
    compile_.add_argument("--name", metavar="NAME", help="the model name (default: from MODEL)")
    compile_.add_argument("--compiler-args", metavar="ARGS", help="extra compiler flags (Neuron)")
    compile_.add_argument("--compiler-target", metavar="TARGET", help="inf2, trn1, ... (Neuron)")
    _framework_option(compile_)
    _input_options(compile_)
    compile_.set_defaults(run=commands.compile_)

    bench = command(
        "benchmark",
        "measure latency and throughput of a model index or model file over a sweep",
        "neuronperf benchmark models/resnet18.json --input-shape 1x3x224x224 "
        "--duration 10 --n-models 1,2 --workers-per-model 1,2",
        _common("print the reports as JSON"),
    )
    bench.add_argument("model", metavar="INDEX_OR_MODEL")
    _run_options(bench, evaluating=False)
    _input_options(bench)
    _framework_option(bench)
    bench.set_defaults(run=commands.benchmark)

    evaluate = command(
        "evaluate",
        "score a model index or model file on a dataset with metrics",
        "neuronperf evaluate models/resnet18.json --dataset val.npz --metrics accuracy,topk_5",
        _common("print the reports as JSON"),
    )
    evaluate.add_argument("model", metavar="INDEX_OR_MODEL")
    evaluate.add_argument(
        "--dataset", required=True, metavar="DATA",
        help="a file of arrays (*inputs, target), one row per record (.npz, or .pt with "
        "neuronperf-torch), or package.module:factory returning a dataset",
    )  # fmt: skip
    evaluate.add_argument(
        "--metrics", type=NAMES, default=["accuracy"], metavar="M,...",
        help="metric names (`neuronperf metrics`); NAME:KEY=VALUE for options "
        "(precision:average=macro); topk_5 is topk with k=5 (default: accuracy)",
    )  # fmt: skip
    evaluate.add_argument(
        "--target-col", type=int, default=-1, metavar="I",
        help="which array of the dataset is the target (default -1: the last)",
    )  # fmt: skip
    _run_options(evaluate, evaluating=True)
    _framework_option(evaluate)
    evaluate.set_defaults(run=commands.evaluate)

    report = command(
        "report",
        "show a results file; with two, compare them config by config",
        "neuronperf report old.json new.json --fail-if-slower 5",
        _common("print the reports (or the comparison) as JSON"),
    )
    report.add_argument("results", nargs="+", metavar="RESULTS.json", help="one or two files")
    report.add_argument("--sort-by", metavar="FIELD", help="default: throughput_peak")
    report.add_argument("--cols", type=NAMES, metavar="F,...", help="the columns to show")
    report.add_argument("--plot", metavar="FILE.png", help="also draw the reports (one file)")
    report.add_argument(
        "--noise", type=NUMBER, default=5.0, metavar="PCT",
        help="changes within PCT%% count as noise (default 5)",
    )  # fmt: skip
    report.add_argument(
        "--fail-if-slower", type=NUMBER, metavar="PCT",
        help="exit 1 when a config's throughput fell, or its p50 latency rose, by over PCT%%, "
        "or a config that finished before failed or is missing",
    )  # fmt: skip
    report.set_defaults(run=commands.report)

    plugins = command(
        "plugins",
        "list installed plugins, what they provide and whether they loaded",
        "neuronperf plugins --json",
        _common(),
    )
    plugins.set_defaults(run=commands.plugins)

    metrics = command(
        "metrics", "list the available evaluation metrics", "neuronperf metrics --json", _common()
    )
    metrics.set_defaults(run=commands.metrics)
    return parser


class _Interrupted:
    """Remembers a Ctrl-C: the engine returns what finished, and we still exit 130."""

    seen = False

    @classmethod
    def handler(cls, signum: int, frame: Any) -> None:
        cls.seen = True
        signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt


def _logging(verbose: bool, quiet: bool) -> int:
    """Warnings (or everything with --verbose) on stderr; the verbosity for the engine."""
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("neuronperf: %(levelname)s: %(message)s"))
    root = logging.getLogger("neuronperf")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    return 2 if verbose else 0 if quiet else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.verbosity = _logging(args.verbose, args.quiet)
    _Interrupted.seen = False
    previous = signal.signal(signal.SIGINT, _Interrupted.handler)
    try:
        status: int = args.run(args)
    except KeyboardInterrupt:
        print(f"neuronperf {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except NeuronPerfError as exc:  # the user can act on it: one line, no traceback
        if args.verbose:
            traceback.print_exc()
        print(f"neuronperf {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `neuronperf metrics | head`: the reader left, nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush stays quiet
        return EXIT_OK
    finally:
        signal.signal(signal.SIGINT, previous)
    if _Interrupted.seen:
        print(f"neuronperf {args.command}: interrupted; what finished is saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    return status
