from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuronperf_core import plugins


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with unloaded plugins and no run-time registrations."""
    monkeypatch.delenv(plugins.STRICT_ENV, raising=False)
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    plugins.reset()
    yield
    plugins.reset()


class FakeSite:
    """A folder on sys.path holding fake installed distributions (``.dist-info``).

    importlib.metadata discovers their entry points exactly as it would a
    pip-installed distribution's, with nothing installed.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def add_dist(
        self,
        name: str,
        version: str,
        entry_points: dict[str, str],
        modules: dict[str, str],
    ) -> None:
        info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = ["[neuronperf]", *(f"{k} = {v}" for k, v in entry_points.items())]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for module, source in modules.items():
            (self.root / f"{module}.py").write_text(textwrap.dedent(source))

    def run(self, code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``code`` in a fresh interpreter that sees this site."""
        full_env = {**os.environ, **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(self.root), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        return subprocess.run(
            [sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=60
        )


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield FakeSite(root)
    for name in set(sys.modules) - before:  # the fake plugins' modules
        if getattr(sys.modules[name], "__file__", "") and str(root) in str(
            sys.modules[name].__file__
        ):
            del sys.modules[name]
