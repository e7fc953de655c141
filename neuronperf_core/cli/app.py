"""The ``neuronperf`` command line: the click group ``cli``, exit statuses, errors, Ctrl-C.

Core commands are declared here; their keyword flags are generated from
``neuronperf_core.options`` (``flags.py``) and their work is in ``commands.py``. Plugins
add commands through ``neuronperf_register_commands(cli)``, asked the first time the group
lists its commands or meets a name it does not know, so a core command never waits for
plugins to load. Nothing heavy (numpy, torch, the engine) is imported here.

Exit statuses: 0 done; 1 a config failed, or ``report --fail-if-slower`` found a slowdown;
2 a user error (one line, a traceback only with ``-v``; click's usage errors too), which
includes the user's own code failing (a model or dataset factory, a module that fails to
import) and the machine refusing a file (a full disk, no permission); 70 neuronperf (or a
plugin) itself failed: a bug, shown with its traceback; 130 Ctrl-C (143 SIGTERM), with what
finished kept.
"""

from __future__ import annotations

import difflib
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from neuronperf_core import __version__
from neuronperf_core.cli import commands, flags
from neuronperf_core.cli.messages import as_flags
from neuronperf_core.errors import NeuronPerfError

EXIT_OK = 0
EXIT_FAILED = 1  # a config failed, or a comparison found a regression
EXIT_USAGE = 2  # click uses 2 for its own usage errors too
EXIT_CRASH = 70  # EX_SOFTWARE (sysexits.h): an internal error, a bug to report
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM
EXIT_ON_SIGNAL = {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}

F = TypeVar("F", bound=Callable[..., Any])


def _epilog_as_written(
    command: click.Command, ctx: click.Context, formatter: click.HelpFormatter
) -> None:
    if command.epilog:
        formatter.write_paragraph()
        formatter.write(command.epilog.rstrip("\n") + "\n")


class Command(click.Command):
    """A command whose epilog (``example:`` and the command line) is shown as written."""

    format_epilog = _epilog_as_written


class _Interrupted:
    """Remembers a Ctrl-C (or SIGTERM): the engine returns what finished, and we still exit
    130 (143)."""

    seen: int | None = None  # the exit status of the signal received

    @classmethod
    def reset(cls) -> None:
        cls.seen = None

    @classmethod
    def handler(cls, signum: int, frame: Any) -> None:
        cls.seen = EXIT_ON_SIGNAL[signal.Signals(signum)]
        raise KeyboardInterrupt  # outside a sweep; a sweep stops on its own (sweep.py)


class NeuronperfGroup(click.Group):
    """The ``neuronperf`` group: plugin commands on first need, and one place where errors,
    Ctrl-C and a closed stdout become exit statuses, for core and plugin commands alike."""

    command_class = Command
    format_epilog = _epilog_as_written

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugin_commands_added = False

    def add_plugin_commands(self) -> None:
        """Ask every plugin for its commands (once); a plugin cannot replace a core one."""
        if self._plugin_commands_added:
            return
        self._plugin_commands_added = True
        from neuronperf_core.plugins import get_host

        core = dict(self.commands)
        get_host().add_commands(self)
        for name, command in core.items():
            if self.commands.get(name) is not command:
                self.commands[name] = command
                warnings.warn(
                    f"a plugin added a command {name!r}, which is neuronperf's own; it is "
                    "ignored (`neuronperf plugins` lists what each plugin added)",
                    stacklevel=2,
                )

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.add_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            self.add_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if (
            name
            and not name.startswith("-")
            and not ctx.resilient_parsing
            and self.get_command(ctx, name) is None
        ):
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            ctx.fail(
                f"No such command {name!r}.{hint} Plugins add commands: `neuronperf plugins` "
                "lists the installed ones."
            )
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        _Interrupted.reset()
        main_thread = threading.current_thread() is threading.main_thread()
        previous = (
            {s: signal.signal(s, _Interrupted.handler) for s in EXIT_ON_SIGNAL}
            if main_thread
            else {}
        )
        try:
            status = super().invoke(ctx)
        except KeyboardInterrupt:
            print(f"neuronperf {ctx.invoked_subcommand}: interrupted", file=sys.stderr)
            return _Interrupted.seen or EXIT_INTERRUPTED
        except NeuronPerfError as exc:  # the user can act on it: one line, no traceback
            return _user_error(ctx, as_flags(str(exc)))
        except BrokenPipeError:  # `neuronperf metrics | head`: the reader left, nothing is wrong
            _quiet_stdout()
            return EXIT_OK
        except ImportError as exc:  # a framework or the user's module: the install, not us
            return _user_error(
                ctx,
                f"a module failed to import: {type(exc).__name__}: {exc}. Install it (or fix "
                "it); `neuronperf plugins` lists the plugins and what failed to load",
            )
        except OSError as exc:  # the machine refused: a full disk, no permission, ...
            return _user_error(ctx, f"{type(exc).__name__}: {exc}")
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own: usage errors (2), --help, a prompt aborted
        except Exception:  # not the user's doing: a bug in neuronperf or a plugin
            _crash(str(ctx.invoked_subcommand))
            return EXIT_CRASH
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if _Interrupted.seen:
            print(
                f"neuronperf {ctx.invoked_subcommand}: interrupted; what finished is saved",
                file=sys.stderr,
            )
            return _Interrupted.seen
        return EXIT_OK if status is None else status


def _user_error(ctx: click.Context, message: str) -> int:
    """One line on stderr (the traceback too with -v); the exit status of a user error."""
    if ctx.meta.get(flags.VERBOSE_KEY):
        traceback.print_exc()
    print(f"neuronperf {ctx.invoked_subcommand}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _crash(command: str) -> None:
    """The traceback, then one line that says it is a bug (the exception being handled)."""
    traceback.print_exc()
    error = sys.exc_info()[1]
    where = f"neuronperf {command}" if command else "neuronperf"
    print(
        f"{where}: internal error: {type(error).__name__}: {error}. This is a bug "
        "in neuronperf or a plugin, not in what you gave: please report it with the "
        "traceback above (`neuronperf plugins` names each plugin's version).",
        file=sys.stderr,
    )


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


@click.group(
    cls=NeuronperfGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Each command has --help with an example. Shell completion (bash):\n"
    '  eval "$(_NEURONPERF_COMPLETE=bash_source neuronperf)"',
)
@click.version_option(__version__, prog_name="neuronperf", message="%(prog)s %(version)s")
def cli() -> None:
    """Benchmark and evaluate models on AWS Neuron, CPU and CUDA."""


def _command(
    name: str, summary: str, example: str, details: str = ""
) -> Callable[[F], click.Command]:
    text = summary[0].upper() + summary[1:] + "."
    return cli.command(
        name=name,
        short_help=summary,
        help=f"{text}\n\n{details}" if details else text,
        epilog=f"example:\n  {example}",
    )


INDEX_OR_MODEL = "a model index (.json) written by compile, or one compiled model file"


def _backend_option(function: F) -> F:
    """--backend NAME, and --framework, its hidden old name."""
    function = click.option("--framework", "framework", metavar="NAME", hidden=True)(function)
    function = click.option(
        "--backend",
        "backend",
        metavar="NAME",
        help="the backend to use (default: the installed one that recognises the model)",
    )(function)
    return function


def _chosen_backend(backend: str | None, framework: str | None) -> str | None:
    if backend and framework and backend != framework:
        raise click.UsageError("--framework is the old name of --backend: give one of them")
    return backend or framework


_INPUT_OPTIONS = [
    click.option(
        "--input-shape",
        "shapes",
        type=flags.SHAPE,
        multiple=True,
        metavar="SHAPE",
        help="random inputs of this shape, batch first (1x3x224x224); the first dimension "
        "becomes each config's batch size; repeat for models of several inputs",
    ),
    click.option(
        "--dtype",
        "dtypes",
        type=flags.DTYPE,
        multiple=True,
        metavar="DTYPE",
        help="dtype of the random inputs (default float32); once for all, or once per shape",
    ),
    click.option(
        "--inputs",
        "inputs_file",
        metavar="FILE",
        help="arrays from a file (.npz, or a backend's format such as .pt), one per model "
        "input, batch first; each config takes the first batch-size rows",
    ),
]


def _input_options(function: F) -> F:
    for decorator in reversed(_INPUT_OPTIONS):
        function = decorator(function)
    return function


@_command(
    "compile",
    "compile a model once per batch size (and cast mode) and write a model index",
    "neuronperf compile torchvision.models:resnet18 --input-shape 1x3x224x224 "
    "--batch-sizes 1,8 --device cpu --out models",
)
@click.argument(
    "model", metavar="MODEL",
    help="package.module:factory or path/to/file.py:factory (a class or function is called "
    "without arguments), or a saved model file its backend reads (PyTorch: .pt2)",
)  # fmt: skip
@flags.keyword_options("compile")
@_input_options
@_backend_option
@flags.json_option("print the model index as JSON")
def compile_command(
    model: str,
    options: dict[str, Any],
    shapes: tuple[tuple[int, ...], ...],
    dtypes: tuple[str, ...],
    inputs_file: str | None,
    backend: str | None,
    framework: str | None,
    as_json: bool,
) -> int:
    return commands.compile_(
        model,
        options,
        shapes=shapes,
        dtypes=dtypes,
        inputs_file=inputs_file,
        backend_name=_chosen_backend(backend, framework),
        as_json=as_json,
    )


@_command(
    "benchmark",
    "measure latency and throughput of a model index or model file over a sweep",
    "neuronperf benchmark models/resnet18.json --duration 10 --n-models 1,2 "
    "--workers-per-model 1,2",
    "Inputs: random values of the shapes and dtypes an index records for each config, or "
    "--input-shape / --inputs.",
)
@click.argument("model", metavar="INDEX_OR_MODEL", help=INDEX_OR_MODEL)
@flags.keyword_options("benchmark")
@_input_options
@_backend_option
@flags.json_option("print the reports and file paths as JSON")
def benchmark_command(
    model: str,
    options: dict[str, Any],
    shapes: tuple[tuple[int, ...], ...],
    dtypes: tuple[str, ...],
    inputs_file: str | None,
    backend: str | None,
    framework: str | None,
    as_json: bool,
) -> int:
    return commands.benchmark(
        model,
        options,
        shapes=shapes,
        dtypes=dtypes,
        inputs_file=inputs_file,
        backend_name=_chosen_backend(backend, framework),
        as_json=as_json,
    )


@_command(
    "evaluate",
    "score a model index or model file on a dataset with metrics",
    "neuronperf evaluate models/resnet18.json --dataset val.npz --metrics accuracy,topk_5",
    "Without --metrics, the score is accuracy. Every record is scored once per batch size.",
)
@click.argument("model", metavar="INDEX_OR_MODEL", help=INDEX_OR_MODEL)
@click.option(
    "--dataset", required=True, metavar="DATA",
    help="a file of arrays (*inputs, target), one row per record (.npz, or a backend's "
    "format such as .pt), or package.module:factory returning a dataset",
)  # fmt: skip
@flags.keyword_options("evaluate")
@_backend_option
@flags.json_option("print the reports and file paths as JSON")
def evaluate_command(
    model: str,
    dataset: str,
    options: dict[str, Any],
    backend: str | None,
    framework: str | None,
    as_json: bool,
) -> int:
    return commands.evaluate(
        model,
        options,
        dataset=dataset,
        backend_name=_chosen_backend(backend, framework),
        as_json=as_json,
    )


@_command(
    "report",
    "show a results file; with two, compare them config by config",
    "neuronperf report old.json new.json --fail-if-slower 5",
)
@click.argument(
    "results", metavar="RESULTS.json [NEW.json]",
    help="a results file benchmark or evaluate wrote; with a second, the two runs compared "
    "config by config (old first)",
    nargs=-1, required=True,
)  # fmt: skip
@click.option("--sort-by", metavar="FIELD", help="a report field (default: throughput_peak)")
@click.option("--cols", type=flags.NAMES, metavar="F,...", help="the report fields to show")
@click.option("--plot", metavar="FILE.png", help="also draw the reports (one file)")
@click.option(
    "--noise", type=flags.NUMBER, default=5.0, show_default=True, metavar="PCT",
    help="changes within PCT%, or not significant at 95%, count as noise",
)  # fmt: skip
@click.option(
    "--fail-if-slower", type=flags.NUMBER, metavar="PCT",
    help="exit 1 when a gated statistic got slower by over PCT% and significantly so, "
    "or a config that finished before failed or is missing",
)  # fmt: skip
@click.option(
    "--gate", type=flags.NAMES, metavar="S,...",
    help="the statistics --fail-if-slower gates on: throughput, p50, p90, p95, p99 "
    "(default: throughput,p50)",
)  # fmt: skip
@flags.verbosity_options
@flags.json_option("print the reports (or the comparison) as JSON")
def report_command(
    results: tuple[str, ...],
    sort_by: str | None,
    cols: list[str] | None,
    plot: str | None,
    noise: float,
    fail_if_slower: float | None,
    gate: list[str] | None,
    verbosity: int,
    as_json: bool,
) -> int:
    return commands.report(
        results,
        sort_by=sort_by,
        cols=cols,
        plot=plot,
        noise=noise,
        fail_if_slower=fail_if_slower,
        gate=gate,
        as_json=as_json,
    )


@_command(
    "plugins",
    "list installed plugins, what they provide and whether they loaded",
    "neuronperf plugins --json",
)
@flags.verbosity_options
@flags.json_option("print the plugins as JSON")
@click.pass_context
def plugins_command(ctx: click.Context, verbosity: int, as_json: bool) -> int:
    group = ctx.parent.command if ctx.parent is not None else None
    if isinstance(group, NeuronperfGroup):
        group.add_plugin_commands()  # so that the table shows the commands plugins add
    return commands.plugins(as_json=as_json)


@_command("metrics", "list the available evaluation metrics", "neuronperf metrics --json")
@flags.verbosity_options
@flags.json_option("print the metrics as JSON")
def metrics_command(verbosity: int, as_json: bool) -> int:
    return commands.metrics(as_json=as_json)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``neuronperf`` with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        status = cli.main(args=args, prog_name="neuronperf", standalone_mode=False)
    except click.exceptions.Abort:  # Ctrl-C before a command ran
        print("neuronperf: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:  # usage errors: 2
        exc.show()
        return exc.exit_code
    except NeuronPerfError as exc:  # loading plugins failed in strict mode, say
        print(f"neuronperf: error: {as_flags(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:  # before a command ran (listing commands, say): a bug
        _crash("")
        return EXIT_CRASH
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
    return status if isinstance(status, int) else EXIT_OK
