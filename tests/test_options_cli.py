"""Options declared once: every keyword of compile, benchmark and evaluate has its flag on
the commands that take it (or a reason it has none), and no command has a flag that is
neither a keyword's nor one of the few the command line alone has (``CLI_ONLY_FLAGS``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import click
import pytest
from click.testing import CliRunner

from neuronperf_core.cli import app, flags
from neuronperf_core.options import BenchmarkOptions, CompileOptions, option

COMMANDS = sorted(flags.OPTIONS_OF)


def _command(name: str) -> click.Command:
    command = app.cli.commands[name]
    assert isinstance(command, click.Command)
    return command


def _flags_of(command: click.Command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}


def _keyword_flags(field: Any) -> set[str]:
    flag = str(field.metadata["flag"])
    if "/" not in flag:
        return {flag}
    return {f for part in flag.split("/") for f in (part, flags.SWITCHES[part][0])}


def missing_flags(
    options_type: type[Any],
    commands: dict[str, set[str]],
    options_of: Mapping[str, type[Any]] = flags.OPTIONS_OF,
) -> list[str]:
    """Keywords with neither a reason to be Python-only nor their flag on every command
    that should have it (``commands``: each command's flags)."""

    def takes(command: str, field: Any) -> bool:
        scope = field.metadata["commands"]
        return options_of[command] is options_type and (scope is None or command in scope)

    problems = []
    for field in fields(options_type):
        reason, flag = field.metadata["python_only"], field.metadata["flag"]
        if flag is None:
            if not reason or not str(reason).strip():
                problems.append(f"{field.name}: no flag and no python_only reason")
            continue
        for command, present in commands.items():
            if takes(command, field) and not _keyword_flags(field) <= present:
                problems.append(f"{field.name}: {flag} missing from `neuronperf {command}`")
    return problems


def unknown_flags(command: str, present: set[str]) -> list[str]:
    """Flags of ``command`` that are neither a keyword's nor in CLI_ONLY_FLAGS."""
    options_type = flags.OPTIONS_OF[command]
    declared = set().union(
        *(_keyword_flags(f) for f in fields(options_type) if f.metadata["flag"] is not None)
    )
    return sorted(present - declared - flags.CLI_ONLY_FLAGS[command])


def test_every_keyword_has_its_flag_or_a_reason():
    present = {name: _flags_of(_command(name)) for name in COMMANDS}
    assert missing_flags(CompileOptions, present) == []
    assert missing_flags(BenchmarkOptions, present) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_is_a_keyword_or_a_documented_cli_only_flag(command):
    assert unknown_flags(command, _flags_of(_command(command))) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_a_flag_is_not_a_keyword_of_another_command(command):
    present = _flags_of(_command(command))
    others = {
        "compile": {"--duration", "--metrics", "--output-dir"},
        "benchmark": {"--metrics", "--out", "--dataset"},
        "evaluate": {"--n-models", "--duration", "--input-shape"},
    }
    assert present & others[command] == set()


def test_the_checks_catch_a_keyword_without_a_flag_and_a_stray_flag():
    @dataclass(frozen=True)
    class Grown:
        batch_sizes: Any = option(None, "b", lambda n, v: v, flag="--batch-sizes")
        new_keyword: Any = option(None, "n", lambda n, v: v, flag="--new-keyword")
        empty_reason: Any = option(None, "e", lambda n, v: v, python_only=" ")

    present = {"compile": {"--batch-sizes"}}
    assert missing_flags(Grown, present, {"compile": Grown}) == [
        "new_keyword: --new-keyword missing from `neuronperf compile`",
        "empty_reason: no flag and no python_only reason",
    ]
    assert unknown_flags("benchmark", {"--duration", "--stray"}) == ["--stray"]


def test_the_type_table_names_only_keywords_and_covers_every_non_text_keyword():
    flagged = {
        f.name: f
        for cls in (BenchmarkOptions, CompileOptions)
        for f in fields(cls)
        if f.metadata["flag"] is not None and "/" not in f.metadata["flag"]
    }
    assert set(flags.FLAG_TYPES) <= set(flagged)
    for name, field in flagged.items():
        annotation = str(field.type)
        if any(t in annotation for t in ("int", "float", "list")):
            assert name in flags.FLAG_TYPES, f"{name} ({annotation}) would be read as text"


SAMPLES = {
    flags.INTS: ("1,2", [1, 2]),
    flags.NAMES: ("a,b", ["a", "b"]),
    flags.NUMBER: ("1.5", 1.5),
    flags.COUNT: ("3", 3),
    flags.INTEGER: ("-1", -1),
    flags.WHOLE: ("0", 0),
    flags.RATES: ("5,10.5", [5.0, 10.5]),
    flags.PERCENTILE: ("95", 95.0),
    click.STRING: ("x", "x"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_reaches_the_api_as_its_keyword(command, monkeypatch):
    """Each flag given on the command line arrives under its keyword's name, with a value
    the keyword's own check accepts; what is not given is not passed."""
    got: dict[str, Any] = {}

    def capture(*args: Any, **kwargs: Any) -> int:
        got.update(args[1])
        return 0

    monkeypatch.setattr(app.commands, {"compile": "compile_"}.get(command, command), capture)
    argv, expected = [command, "model.json"], {"verbosity": 0}
    if command == "evaluate":
        argv += ["--dataset", "d.npz"]
    for field in flags.keyword_fields(command):
        if "/" in field.metadata["flag"]:
            continue
        kind = flags.FLAG_TYPES.get(field.name, (click.STRING, ""))[0]
        if kind is flags.SWITCH:  # a switch takes no value
            argv.append(field.metadata["flag"])
            expected[field.name] = True
            continue
        if isinstance(kind, click.Choice):  # one of its values
            text = value = kind.choices[0]
        else:
            text, value = SAMPLES[kind]
        argv += [field.metadata["flag"], text]
        expected[field.name] = value
    result = CliRunner().invoke(app.cli, [*argv, "-q"])
    assert result.exit_code == 0, result.output
    assert got == expected
    flags.OPTIONS_OF[command].from_kwargs(got)  # every value passes its keyword's check
    got.clear()
    required = argv[: 4 if command == "evaluate" else 2]
    assert CliRunner().invoke(app.cli, required).exit_code == 0
    assert got == {"verbosity": 1}  # nothing the user left out is passed on
