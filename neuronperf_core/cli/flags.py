"""The flags of ``compile``, ``benchmark`` and ``evaluate``, generated from the keyword
declarations in ``neuronperf_core.options``; the click types that parse them; and the short
list of flags only the command line has.

A keyword's flag, help and default are declared once, on its field (``option(...,
flag="--n-models")``); this module only adds how a flag's text becomes a value
(``FLAG_TYPES``). ``tests/test_options_cli.py`` checks that every keyword has its flag
(or a ``python_only`` reason) and that no command has a flag not declared here.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import Field, fields
from typing import TYPE_CHECKING, Any, TypeVar

import click

from neuronperf_core.cli import messages, sources
from neuronperf_core.options import (
    RAY_PLACEMENTS,
    SLO_PERCENTILES,
    TRANSFERS,
    BenchmarkOptions,
    CompileOptions,
)

F = TypeVar("F", bound=Callable[..., Any])

# -- click types --------------------------------------------------------------------------

if TYPE_CHECKING:
    ParamType = click.ParamType[Any]  # generic in newer click
else:
    ParamType = click.ParamType


class _Parsed(ParamType):
    """A click type from a parser that raises ValueError with a message for the user."""

    def __init__(self, name: str, parse: Callable[[str], Any]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value  # a default, already a value
        try:
            return self._parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"expected a number >= 0, got {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return int(text)


def _whole(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"expected a whole number (0 or more), got {text!r}")
    return int(text)


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


def _rates(text: str) -> list[float]:
    values = []
    for part in (p.strip() for p in text.split(",")):
        try:
            value = _number(part)
        except ValueError:
            value = 0.0
        if value == 0:
            raise ValueError(f"expected requests per second above 0 (e.g. 100,200), got {part!r}")
        values.append(value)
    return values


def _percentile(text: str) -> float:
    value = _number(text)
    if value not in SLO_PERCENTILES:
        choices = ", ".join(map(str, SLO_PERCENTILES))
        raise ValueError(f"expected one of {choices} (a latency percentile), got {text!r}")
    return value


INTS = _Parsed("integers", sources.positive_int_list)
RATES = _Parsed("rates", _rates)
PERCENTILE = _Parsed("percentile", _percentile)
NAMES = _Parsed("names", sources.name_list)
NUMBER = _Parsed("number", _number)
COUNT = _Parsed("count", _count)
WHOLE = _Parsed("whole number", _whole)
SWITCH = click.BOOL  # a True/False keyword: its flag takes no value and passes True
INTEGER = _Parsed("integer", _integer)
SHAPE = _Parsed("shape", sources.shape)
DTYPE = _Parsed("dtype", sources.dtype)

# How a keyword's flag is parsed, and its metavar; a keyword not listed takes text, its
# metavar the last word of its flag (--device DEVICE).
FLAG_TYPES: Mapping[str, tuple[ParamType, str]] = {
    "batch_sizes": (INTS, "B,..."),
    "n_models": (INTS, "N,..."),
    "pipeline_sizes": (INTS, "P,..."),
    "workers_per_model": (INTS, "W,..."),
    "cast_modes": (NAMES, "MODE,..."),
    "eval_metrics": (NAMES, "M,..."),
    "duration": (NUMBER, "S"),
    "stats_interval": (NUMBER, "S"),
    "cost_per_hour": (NUMBER, "USD"),
    "max_infers": (COUNT, "N"),
    "eval_target_col": (INTEGER, "I"),
    "until_stable": (SWITCH, ""),
    "window_s": (NUMBER, "S"),
    "stability_pct": (NUMBER, "PCT"),
    "warmup_infers": (WHOLE, "N"),
    "warmup_seconds": (NUMBER, "S"),
    "intra_op_threads": (COUNT, "N"),
    "config_timeout": (NUMBER, "S"),
    "arrival_rate": (RATES, "R,..."),
    "arrivals": (click.STRING, "poisson|constant|FILE"),
    "arrival_seed": (WHOLE, "N"),
    "latency_bound_ms": (NUMBER, "MS"),
    "latency_percentile": (PERCENTILE, "P"),
    "find_peak": (SWITCH, ""),
    "models_dir": (click.STRING, "DIR"),
    "results_dir": (click.STRING, "DIR"),
    "results_file": (click.STRING, "FILE"),
    "transfer": (click.Choice(TRANSFERS), "|".join(TRANSFERS)),
    "ray_placement": (click.Choice(RAY_PLACEMENTS), "|".join(RAY_PLACEMENTS)),
}

# The verbosity keyword's flag is a pair of switches: -v (2) and -q (0); 1 when neither.
SWITCHES: Mapping[str, tuple[str, int, str]] = {
    "--verbose": ("-v", 2, "debug logging, and a traceback on errors"),
    "--quiet": ("-q", 0, "no progress and no warnings, only errors"),
}

# Flags only the command line has, by command; every other flag of these commands is a
# keyword's. --framework is the hidden old name of --backend.
CLI_ONLY_FLAGS: Mapping[str, frozenset[str]] = {
    "compile": frozenset(
        {"--input-shape", "--dtype", "--inputs", "--backend", "--framework", "--json"}
    ),
    "benchmark": frozenset(
        {"--input-shape", "--dtype", "--inputs", "--backend", "--framework", "--json"}
    ),
    "evaluate": frozenset({"--dataset", "--backend", "--framework", "--json"}),
}

# The options class whose keywords each command takes.
OPTIONS_OF: Mapping[str, type[Any]] = {
    "compile": CompileOptions,
    "benchmark": BenchmarkOptions,
    "evaluate": BenchmarkOptions,
}


def keyword_fields(command: str) -> list[Field[Any]]:
    """The keywords that ``command`` has a flag for, in declaration order."""
    return [
        f
        for f in fields(OPTIONS_OF[command])
        if f.metadata["flag"] is not None
        and (f.metadata["commands"] is None or command in f.metadata["commands"])
    ]


# -- verbosity ----------------------------------------------------------------------------

VERBOSE_KEY = "neuronperf.verbose"  # in click's ctx.meta: show tracebacks


def configure_output(verbosity: int) -> None:
    """Warnings (everything at 2, errors only at 0) on stderr, one line each."""
    level = {0: logging.ERROR, 1: logging.WARNING, 2: logging.DEBUG}[verbosity]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(messages.FlagsFormatter("neuronperf: %(levelname)s: %(message)s"))
    root = logging.getLogger("neuronperf")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[VERBOSE_KEY] = verbosity == 2


def _switch_options(field: Field[Any]) -> list[click.Option]:
    found = []
    for flag in str(field.metadata["flag"]).split("/"):
        short, _, help = SWITCHES[flag]
        found.append(click.Option([short, flag], is_flag=True, default=False, help=help))
    return found


def _verbosity(given: Mapping[str, bool]) -> int:
    on = [flag for flag in SWITCHES if given.get(flag.lstrip("-"))]
    if len(on) > 1:
        raise click.UsageError(f"{' and '.join(on)} contradict each other: give one of them")
    return SWITCHES[on[0]][1] if on else 1


def verbosity_options(function: F) -> F:
    """-v/--verbose and -q/--quiet (the ``verbosity`` keyword), for any command: the
    function receives ``verbosity`` (0, 1 or 2) and logging is set up for it."""
    field = next(f for f in fields(BenchmarkOptions) if f.name == "verbosity")
    switches = _switch_options(field)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {str(s.name): kwargs.pop(str(s.name)) for s in switches}
        verbosity = _verbosity(given)
        configure_output(verbosity)
        return function(*args, verbosity=verbosity, **kwargs)

    _add_params(wrapper, function, switches)
    return wrapper  # type: ignore[return-value]


def json_option(help: str = "print JSON on stdout instead of the table") -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help=help)


# -- the generator ------------------------------------------------------------------------


def _option(field: Field[Any]) -> click.Option:
    flag = str(field.metadata["flag"])
    kind, metavar = FLAG_TYPES.get(field.name, (click.STRING, flag.rsplit("-", 1)[-1].upper()))
    default = field.default
    help = str(field.metadata["help"])
    if kind is SWITCH:  # given: True; not given: nothing passed on (the API's default)
        return click.Option(
            [flag, field.name], is_flag=True, flag_value=True, default=None, help=help
        )
    if default is not None:  # shown as click shows defaults
        help += f"  [default: {f'{default:g}' if isinstance(default, float) else default}]"
    return click.Option(
        [flag, field.name],
        type=kind,
        metavar=metavar,
        default=None,  # only what the user gives is passed on: the API has the defaults
        help=help,
    )


def keyword_options(command: str) -> Callable[[F], F]:
    """The flags of ``command``'s keywords. The function receives ``options``: the keywords
    the user gave, by name (``verbosity`` always), ready for ``neuronperf_core.api``."""
    keywords = keyword_fields(command)

    def decorate(function: F) -> F:
        params: list[click.Option] = []
        for field in keywords:
            if "/" in str(field.metadata["flag"]):
                params += _switch_options(field)
            else:
                params.append(_option(field))

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given: dict[str, Any] = {}
            for field in keywords:
                if "/" in str(field.metadata["flag"]):
                    switches = {f.lstrip("-"): kwargs.pop(f.lstrip("-")) for f in SWITCHES}
                    given[field.name] = _verbosity(switches)
                    configure_output(given[field.name])
                    continue
                value = kwargs.pop(field.name)
                if value is not None:
                    given[field.name] = value
            return function(*args, options=given, **kwargs)

        _add_params(wrapper, function, params)
        return wrapper  # type: ignore[return-value]

    return decorate


def _add_params(wrapper: Any, function: Any, params: list[click.Option]) -> None:
    """Give ``wrapper`` the click parameters of ``function`` and then ``params`` (shown in
    that order: click lists a function's parameters last-added first)."""
    wrapper.__click_params__ = [
        *getattr(function, "__click_params__", []),
        *reversed(params),
    ]
