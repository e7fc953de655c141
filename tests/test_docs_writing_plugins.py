"""docs/writing-plugins.md builds a whole backend package step by step: assemble it from the
page's file blocks, register it through a fake dist-info, and run the page's "Using it" script.
The page stays true to the contract only as long as this passes."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import FakeSite

PAGE = Path(__file__).resolve().parents[1] / "docs" / "writing-plugins.md"
FILE_BLOCK = re.compile(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", re.S)


def assemble(root: Path) -> str:
    """Write the page's files under ``root`` (blocks naming one file are concatenated in
    page order, as the page adds methods step by step); return the "Using it" script."""
    text = PAGE.read_text()
    files: dict[str, str] = {}
    for path, body in FILE_BLOCK.findall(text):
        files[path] = files.get(path, "") + body
    for path, body in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    using = text.split("### 10. Using it", 1)[1]
    return re.search(r"```python\n(.*?)```", using, re.S).group(1)  # type: ignore[union-attr]


def test_the_pages_package_runs_as_written(fake_site: FakeSite, tmp_path: Path) -> None:
    package = tmp_path / "npf-linear"
    script = assemble(package)
    assert "linear" in (package / "pyproject.toml").read_text()
    fake_site.add_dist("npf-linear", "0.1.0", {"linear": "npf_linear.plugin"}, {})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    code = (
        f"import os, sys; sys.path.insert(0, {str(package / 'src')!r}); "
        f"os.chdir({str(run_dir)!r}); exec(compile({script!r}, 'using_it.py', 'exec'), "
        "{'__name__': '__main__'})"
    )
    done = fake_site.run(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == ["1 finished 100 0.9", "8 finished 13 0.9"]
    assert (run_dir / "linear.json").exists()
