"""Writing files so that a crash leaves either the old content or the new, never half."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import string
import time
from pathlib import Path

from neuronperf_core.options import OptionError

RESULTS_KEYS = frozenset({"batch_size", "n_models", "workers_per_model", "status"})  # any report
MAX_RESULTS_BYTES = 1 << 28  # larger is not a results file; not read to find out
# What a results file holds from the moment its name is taken until the first config's
# reports replace it: no reports, as JSON (a run killed before any config leaves it so).
PLACEHOLDER = b"[]\n"
_placeholders: set[Path] = set()  # results files this process created and has not released


class OutputPathError(OptionError):
    """A name or folder that output files cannot be written under."""


def random_suffix() -> str:
    """8 random lower-case letters and digits, for file names that must not collide.
    secrets, not random: a script that seeds random must not get the same names each run."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def safe_name(name: str, what: str) -> str:
    """``name`` if it can be part of a file name in one folder; an error otherwise."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise OutputPathError(
            f"{what}={name!r} cannot name a file: it is used in file names, so it must not be "
            "empty or hold a path separator. Pass a plain name, e.g. 'resnet50'."
        )
    return name


def results_stem(model_name: str) -> str:
    """``{model_name}.results-YYYYmmdd-HHMMSS``: the name of every results file, less its
    extension (1.x's naming)."""
    return f"{model_name}.results-{time.strftime('%Y%m%d-%H%M%S')}"


def results_path(
    results_dir: str | os.PathLike[str] | None,
    results_file: str | os.PathLike[str] | None,
    model_name: str,
) -> Path | None:
    """Where a run writes its reports (None: nowhere), checked before the run: ``results_file``
    as given (a new file, or results a run wrote), else a new
    ``{model_name}.results-YYYYmmdd-HHMMSS.json`` in ``results_dir``.

    A new file is created here, holding ``PLACEHOLDER``: the name is taken atomically (two
    runs started in the same second, in any processes, get two files), and the folder is
    known to be writable before any model loads. ``release`` removes it again if no report
    replaced it."""
    if results_file is not None:
        path = Path(results_file)
        if path.is_dir():
            raise OutputPathError(f"results_file {path} is a folder; name a file in it.")
        if not path.parent.is_dir():
            raise OutputPathError(
                f"results_file {path}: its folder {path.parent} does not exist; create it first."
            )
        if path.exists() and not is_results(path):  # a model index, anyone's data
            raise OutputPathError(
                f"results_file={os.fspath(path)!r} exists and is not a results file; a run "
                "replaces only results a run wrote. Name a new file, or pass results_dir=... "
                "for a new name each run."
            )
        if not path.exists():
            with contextlib.suppress(FileExistsError):  # another run naming it too: results
                _create(path)
        return path
    if results_dir is None:
        return None
    folder = Path(results_dir)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "is not an existing folder"
        raise OutputPathError(
            f"results_dir {folder} {what}; create it, or pass results_dir=None to write no "
            "results file."
        )
    stem = results_stem(safe_name(model_name, "model_name"))
    n = 1
    while True:
        path = folder / (f"{stem}.json" if n == 1 else f"{stem}-{n}.json")
        n += 1
        if path.with_suffix(".csv").exists():  # the command line's CSV goes beside it
            continue
        try:
            _create(path)  # atomic: a name another run took makes this one try the next
        except FileExistsError:
            continue
        return path


def _create(path: Path) -> None:
    """Create ``path`` holding ``PLACEHOLDER``; FileExistsError if it exists (O_EXCL), a
    clear error if it cannot be written (no permission, a read-only or full disk)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
    except FileExistsError:
        raise
    except OSError as exc:
        raise OutputPathError(
            f"cannot create the results file {path}: {exc.strerror}; pass a folder this "
            "process can write (results_dir=...), or results_dir=None to write no results file."
        ) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(PLACEHOLDER)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise OutputPathError(
            f"cannot write the results file {path}: {exc.strerror}; free some space there, or "
            "pass another folder (results_dir=...)."
        ) from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    _placeholders.add(path.absolute())


def release(path: Path | None) -> None:
    """After a run: remove the results file ``results_path`` created if it still holds
    ``PLACEHOLDER`` (no config finished, or none could be written); a file this process did
    not create is left alone."""
    if path is None or path.absolute() not in _placeholders:
        return
    _placeholders.discard(path.absolute())
    with contextlib.suppress(OSError):
        with open(path, "rb") as f:
            placeholder = f.read(len(PLACEHOLDER) + 1) == PLACEHOLDER
        if placeholder:
            path.unlink()


def is_results(path: Path) -> bool:
    """Whether ``path`` holds reports a run wrote (a JSON list of them, or their CSV), and so
    may be replaced by a run's results; never an index, a model or anyone's data."""
    try:
        with open(path, encoding="utf-8") as f:
            if path.suffix == ".csv":
                return set(f.readline().strip().split(",")) >= RESULTS_KEYS
            if os.fstat(f.fileno()).st_size > MAX_RESULTS_BYTES:
                return False
            reports = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(reports, list) and all(
        isinstance(r, dict) and r.keys() >= RESULTS_KEYS for r in reports
    )


def atomic_write(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` (text as UTF-8) so that a crash leaves either the old
    file or the new."""
    _check_writable(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")  # same folder: same disk
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, no permission: said of the file, not the temporary
        tmp.unlink(missing_ok=True)
        if exc.errno is None:  # not the OS's: as it was raised
            raise
        raise type(exc)(exc.errno, f"cannot write {path}: {exc.strerror}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _check_writable(path: Path) -> None:
    """The OS's own error when ``path`` cannot be written, naming ``path`` and what to do
    (left to the OS, it names the temporary file)."""
    folder = path.parent
    if path.is_dir():
        raise IsADirectoryError(
            errno.EISDIR, f"cannot write {path}: it is a folder; name a file in it"
        )
    if not folder.is_dir():
        if folder.exists():
            raise NotADirectoryError(
                errno.ENOTDIR, f"cannot write {path}: {folder} is a file, not a folder"
            )
        raise FileNotFoundError(
            errno.ENOENT, f"cannot write {path}: its folder {folder} does not exist; create it"
        )


def fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); best effort where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
