"""Fixtures: a clean plugin state per test, and this plugin discoverable through its entry point."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import DIST, ENTRY_POINT, entry_point_found

from neuronperf_core import plugins


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with unloaded plugins, no run-time registrations, no plugin env vars."""
    monkeypatch.delenv(plugins.STRICT_ENV, raising=False)
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def plugin_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This plugin discoverable through its entry point.

    Installed (the nox session): nothing to do. Importable only from the source
    tree (PYTHONPATH): a fake ``.dist-info`` folder on sys.path declares the
    entry point, and importlib.metadata finds it exactly as it would find a
    pip-installed distribution's. Returns the environment for a child
    interpreter (``neuronperf plugins``) that should see the plugin too.
    """
    root = tmp_path / "site"
    root.mkdir()
    if not entry_point_found():
        info = root / "neuronperf_metrics_extra-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            textwrap.dedent(f"""\
                Metadata-Version: 2.1
                Name: {DIST}
                Version: 0.1.0
            """)
        )
        (info / "entry_points.txt").write_text(
            f"[neuronperf]\n{ENTRY_POINT} = neuronperf_metrics_extra.plugin\n"
        )
        monkeypatch.syspath_prepend(str(root))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path)}
