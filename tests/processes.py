"""What the tests that run scripts and watch processes share: run a script as a user would,
wait for something another process does, tell whether a process still runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path


def run_script(
    folder: Path, source: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python script.py ARGS`` in ``folder``, ``source`` dedented into script.py."""
    script = folder / "script.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie waits for a reaper that may never come)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
