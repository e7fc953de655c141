"""Errors and warnings written for Python, worded for the command line.

The core and the plugins say what to pass as Python keywords (``device_type='cpu'``,
``metrics=['recall:average=macro']``); on the command line the same advice names flags
(``--device cpu``, ``--metrics recall:average=macro``). ``as_flags`` rewrites a message
with the flag of each keyword declared in ``neuronperf_core.options``, so each message is
written once, where the problem is found.
"""

from __future__ import annotations

import functools
import logging
import re
import shlex
from dataclasses import fields

from neuronperf_core.options import BenchmarkOptions, CompileOptions

# `npf.torch.compile(..., device_type='cpu')` -> `neuronperf compile ... --device cpu`
_CALL = re.compile(r"npf\.\w+\.(compile|benchmark|evaluate)\(\.\.\.,\s*([^()]*)\)")
_COMMANDS = {"npf.list_metrics()": "neuronperf metrics"}
_VALUE = r"'[^']*'|\"[^\"]*\"|\[[^\]]*\]|[\w.+-]*[\w+-]"  # a trailing period ends a sentence


@functools.cache
def _flags() -> dict[str, str]:
    """keyword -> flag, for every keyword that has one (``metrics``: evaluate's own name)."""
    found = {"metrics": "--metrics"}
    for options in (BenchmarkOptions, CompileOptions):
        for f in fields(options):
            flag = f.metadata["flag"]
            if flag is not None and "/" not in flag:  # not a pair of switches (-v/-q)
                found[f.name] = flag
    return found


@functools.cache
def _keyword() -> re.Pattern[str]:
    names = "|".join(sorted(_flags(), key=len, reverse=True))
    return re.compile(rf"(?<![\w.])({names})=({_VALUE})?")


def _value(text: str) -> str:
    if text[:1] in "'\"":
        return shlex.quote(text[1:-1])
    if text.startswith("["):  # a list: the flag takes comma-separated values
        items = [item.strip().strip("'\"") for item in text[1:-1].split(",")]
        return shlex.quote(",".join(item for item in items if item))
    return text


def _flag(match: re.Match[str]) -> str:
    flag = _flags()[match.group(1)]
    return f"{flag} {_value(match.group(2))}" if match.group(2) else flag


def as_flags(text: str) -> str:
    """``text`` with each keyword written as its flag: ``device_type='cpu'`` -> ``--device
    cpu``, ``n_models=[1, 2]`` -> ``--n-models 1,2``, ``npf.list_metrics()`` -> ``neuronperf
    metrics``."""
    for python, command in _COMMANDS.items():
        text = text.replace(python, command)
    text = _CALL.sub(r"neuronperf \1 ... \2", text)
    return _keyword().sub(_flag, text)


class FlagsFormatter(logging.Formatter):
    """Log records worded for the command line (``as_flags``)."""

    def format(self, record: logging.LogRecord) -> str:
        return as_flags(super().format(record))
