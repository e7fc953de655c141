"""Bad input, met as a hostile or an unlucky user would (issue 15 points 2, 3, 5, 8-11;
issue 16 points 1-3): each gets a clear error, or a visible warning, before any work, and
nothing is written outside its folder or over a file the run did not create.

Command-line tests run the installed ``neuronperf`` script (not ``python -m``, which puts
the current folder on the import path by itself) in a subprocess, with the framework
double ``cli_framework_double`` (a test double of a framework plugin) installed as a fake
distribution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from neuronperf_core import plugins

DOUBLE = Path(__file__).with_name("cli_framework_double.py")


# -- 11: a plugin that raises any BaseException at import fails like any other ------------


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("raise KeyboardInterrupt('plugin pressed Ctrl-C')", "KeyboardInterrupt"),
        ("class Odd(BaseException):\n    pass\nraise Odd('odd')\n", "Odd: odd"),
    ],
    ids=["keyboard-interrupt", "base-exception"],
)
def test_a_plugin_raising_any_base_exception_at_import_is_a_failed_plugin(
    fake_site: Any, source: str, error: str
) -> None:
    fake_site.add_dist("npf-rude", "0.1", {"rude": "npf_rude"}, {"npf_rude": source})
    with pytest.warns(plugins.PluginWarning, match="'rude'"):
        host = plugins.get_host()
    (rude,) = [p for p in host.plugins if p.name == "rude"]
    assert rude.status == "failed" and error in str(rude.error)
    assert "accuracy" in host.metrics  # the host carries on


def test_a_plugin_raising_keyboard_interrupt_in_its_commands_hook_is_a_failed_plugin(
    fake_site: Any,
) -> None:
    source = (
        "from neuronperf_core import hookimpl\n"
        "@hookimpl\ndef neuronperf_register_commands(cli):\n"
        "    raise KeyboardInterrupt\n"
    )
    fake_site.add_dist("npf-rude", "0.1", {"rude": "npf_rude"}, {"npf_rude": source})
    import click

    with pytest.warns(plugins.PluginWarning, match="'rude'"):
        plugins.get_host().add_commands(click.Group())
    (rude,) = [p for p in plugins.get_host().plugins if p.name == "rude"]
    assert rude.status == "failed" and "KeyboardInterrupt" in str(rude.error)
