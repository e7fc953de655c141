"""The ``neuronperf`` command line (``python -m neuronperf`` runs it too).

``cli`` is its click group; plugins add commands to it through
``neuronperf_register_commands(cli)`` and may use ``json_option``, ``verbosity_options``,
``print_json`` and ``print_files`` to follow the shared rules (``--json``, ``-v``/``-q``).
"""

from neuronperf_core.cli.app import cli, main
from neuronperf_core.cli.commands import all_finished, print_files, print_json
from neuronperf_core.cli.flags import json_option, verbosity_options

__all__ = [
    "all_finished",
    "cli",
    "json_option",
    "main",
    "print_files",
    "print_json",
    "verbosity_options",
]
