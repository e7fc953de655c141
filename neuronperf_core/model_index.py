"""The model index: a JSON file that lists compiled model artifacts and their configs.

File format (``version`` is the format version)::

    {"version": "1.0", "model_name": "resnet",
     "model_configs": [{"filename": "models/resnet_b1_p1_x8k2js0a.pt", "input_idx": 0,
                        "batch_size": 1, "pipeline_size": 1, "cast_mode": null,
                        "compile_s": 5.32, "status": "finished"}]}

A config may hold more keys (``performance_level``, ``error``, ...); they are kept.
``filename`` is null for a config that failed to compile. Index files written by
NeuronPerf 1.x load too: their ``version`` is the package version ("1.6.0.0",
"0.0.0.0+0bc220a"), and missing ``model_name``, ``cast_mode``, ``compile_s`` and
``status`` get defaults.

Paths: in an index *file*, a relative model filename is relative to the folder that
holds the file, so an index and its models can be moved together; ``save`` writes the
models under the index's folder as relative paths, the others as absolute ones. In an
index *dict*, filenames are kept as the user gave them, and a relative one is relative
to the current directory, as in 1.x: ``create("m.pt")`` holds ``"m.pt"``, and ``load``
joins the file's relative names to the folder of the index path it was given
(``load("runs/net.json")`` holds ``"runs/models/m.pt"``; an index in the current
directory reads exactly as written). Filenames are made absolute only where a file is
touched: ``copy``, ``move``, ``delete``, and ``resolve``, which the benchmark engine
calls before loading models, so that a run finds them from any current directory.

Every function takes an index dict or the path of an index file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from copy import deepcopy
from pathlib import Path
from typing import Any

from neuronperf_core.errors import NeuronPerfError
from neuronperf_core.files import atomic_write, random_suffix, safe_name

__all__ = [
    "FORMAT_VERSION",
    "IndexDict",
    "IndexLike",
    "ModelIndexError",
    "append",
    "copy",
    "create",
    "delete",
    "filter",
    "load",
    "move",
    "resolve",
    "save",
]

log = logging.getLogger("neuronperf.model_index")

FORMAT_VERSION = "1.0"
_READABLE_MAJORS = ("0", "1")  # 1.x wrote its package version: "1.6.0.0", "0.0.0.0+hash"

IndexDict = dict[str, Any]
IndexLike = Mapping[str, Any] | str | os.PathLike[str]

# key -> (accepted types, default when missing; _REQUIRED when it must be present)
_REQUIRED = object()
_CONFIG_FIELDS: dict[str, tuple[tuple[type, ...], Any]] = {
    "filename": ((str, type(None)), _REQUIRED),
    "input_idx": ((int,), _REQUIRED),
    "batch_size": ((int,), _REQUIRED),
    "pipeline_size": ((int,), _REQUIRED),
    "cast_mode": ((str, type(None)), None),
    "compile_s": ((int, float, type(None)), None),
    "status": ((str,), "finished"),
}
_MINIMUM = {"input_idx": 0, "batch_size": 1, "pipeline_size": 1}


class ModelIndexError(NeuronPerfError, ValueError):
    """A model index that is malformed, or an operation on one that was refused."""


# ---------------------------------------------------------------- public API


def create(
    filename: str | os.PathLike[str] | None,
    input_idx: int = 0,
    batch_size: int = 1,
    pipeline_size: int = 1,
    cast_mode: str | None = None,
    compile_s: float | None = None,
    *,
    model_name: str | None = None,
    status: str = "finished",
    **extra: Any,
) -> IndexDict:
    """An index holding one config; ``extra`` keys (e.g. ``performance_level``) go into it.

    ``model_name`` defaults to the stem of ``filename``.
    """
    if model_name is None:
        if filename is None:
            raise ModelIndexError(
                "model_index.create() needs model_name= when filename is None "
                "(there is no file name to take the model name from)."
            )
        model_name = Path(filename).stem
    config = {
        "filename": None if filename is None else os.fspath(filename),
        "input_idx": input_idx,
        "batch_size": batch_size,
        "pipeline_size": pipeline_size,
        "cast_mode": cast_mode,
        "compile_s": compile_s,
        "status": status,
        **extra,
    }
    index = {"version": FORMAT_VERSION, "model_name": model_name, "model_configs": [config]}
    return _read(index)[0]


def load(filename: IndexLike) -> IndexDict:
    """Read and validate an index. Its relative model filenames come joined to the folder
    of ``filename`` as given, so they are relative to the current directory like those of
    any index dict (unchanged when the index is in the current directory)."""
    return _read(filename)[0]


def resolve(index: IndexLike) -> IndexDict:
    """The index with every model filename absolute: what a loader needs, from any current
    directory (an index file's relative names are relative to its folder, a dict's to the
    current directory). The one place the benchmark engine turns index filenames into the
    paths it loads."""
    data, _ = _read(index)
    for config in data["model_configs"]:
        if config["filename"] is not None:
            config["filename"] = os.fspath(_absolute(Path(config["filename"])))
    return data


def save(
    index: IndexLike,
    filename: str | os.PathLike[str] | None = None,
    root_dir: str | os.PathLike[str] | None = None,
) -> str:
    """Write ``index`` atomically and return the filename written.

    The default filename is ``{model_name}_{8 random chars}.json``; ``root_dir``
    (created if missing) is prepended to it.
    """
    data, _ = _read(index)
    if filename is None:  # the name may come from a file someone gave you: never a path
        filename = f"{safe_name(data['model_name'], 'model_name')}_{random_suffix()}.json"
    elif not os.fspath(filename).endswith(".json"):
        filename = f"{os.fspath(filename)}.json"  # as 1.x: an index file is always .json
    target = Path(root_dir, filename) if root_dir is not None else Path(filename)
    path = _absolute(target)
    blocker = _file_in_the_way(path.parent)
    if blocker is not None:
        raise ModelIndexError(
            f"Cannot save the model index as {os.fspath(target)!r}: {os.fspath(blocker)!r} is "
            "a file, not a folder. Choose another filename or root_dir."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, _to_json(data, path))
    return os.fspath(target)


def append(*indexes: IndexLike) -> IndexDict:
    """One index holding the configs of all, in order; exact duplicate configs dropped.

    The model name is the first index's.
    """
    if not indexes:
        raise ModelIndexError("model_index.append() needs at least one index.")
    loaded = [_read(index)[0] for index in indexes]
    configs: list[dict[str, Any]] = []
    for data in loaded:
        configs.extend(c for c in data["model_configs"] if c not in configs)
    return {**loaded[0], "model_configs": configs}


def filter(index: IndexLike, **kv: Any) -> IndexDict:  # shadows the builtin: the 1.x name
    """The configs whose ``key`` equals ``value`` for every ``key=value`` given.

    A value may be a list (or tuple, set) of accepted values; ``None`` filters nothing.
    A relative ``filename`` value is relative to the index file's folder (for a dict, to
    the current directory), like the filenames in the index, and matches however the
    same file is spelled.
    """
    data, path = _read(index)
    configs = data["model_configs"]
    valid = set(_CONFIG_FIELDS).union(*(c.keys() for c in configs))
    unknown = sorted(set(kv) - valid)
    if unknown:
        raise ModelIndexError(
            f"Cannot filter a model index on {', '.join(unknown)}: not a config key. "
            f"Valid keys: {', '.join(sorted(valid))}."
        )
    for key, value in kv.items():
        if value is None:
            continue
        accepted = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        if key == "filename":
            wanted = {_resolve(v, _base_dir(path)) if v is not None else v for v in accepted}
            configs = [c for c in configs if _resolve_or_none(c["filename"]) in wanted]
            continue
        configs = [c for c in configs if key in c and c[key] in accepted]
    return {**data, "model_configs": configs}


def copy(
    old_index: IndexLike, new_index: str | os.PathLike[str], new_dir: str | os.PathLike[str]
) -> str:
    """Copy the index's model files into ``new_dir`` and save an index listing the copies.

    Returns the new index's filename. Refuses to overwrite anything: ``new_index`` and
    every copy must not exist yet.
    """
    data, path = _read(old_index)
    return _copy(data, path, new_index, new_dir)


def move(
    old_index: IndexLike,
    new_index: str | os.PathLike[str],
    new_dir: str | os.PathLike[str],
    *,
    allow_outside: bool = False,
) -> str:
    """``copy``, then ``delete`` the old index and models; returns the new index's filename.

    Both halves are checked before anything is copied; see ``delete`` for ``allow_outside``.
    """
    data, path = _read(old_index)
    doomed = _deletion_targets(data, path, allow_outside)
    new_filename = _copy(data, path, new_index, new_dir)
    _remove(doomed, path)
    return new_filename


def delete(index: IndexLike, *, allow_outside: bool = False) -> None:
    """Delete every model file (or folder) the index lists, then the index file itself.

    Model files already missing are skipped. A model path outside the index's folder
    (the current directory for an index dict) is refused unless ``allow_outside=True``;
    the index's folder, any folder above it and the index file itself are always
    refused. Nothing is deleted unless every path passes.
    """
    if isinstance(index, (str, os.PathLike)) and not Path(index).exists():
        log.warning("model index %s does not exist: nothing to delete", os.fspath(index))
        return  # as 1.x: deleting what is already gone is not an error
    data, path = _read(index)
    _remove(_deletion_targets(data, path, allow_outside), path)


# ---------------------------------------------------------------- reading and validation


def _read(index: IndexLike) -> tuple[IndexDict, Path | None]:
    """A validated copy of the index, its filenames relative to the current directory (or
    absolute), and its file (None for a dict)."""
    if isinstance(index, (str, os.PathLike)):
        path = _absolute(Path(index))
        where = f"model index {os.fspath(path)!r}"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ModelIndexError(
                f"No {where}: the file does not exist. Check the path, or create the index "
                "with compile() or model_index.create() and save()."
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise ModelIndexError(f"Cannot read {where}: {e}.") from e
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise _malformed(where, f"it is not valid JSON ({e})") from None
        data = _validate(raw, where, default_name=path.stem)
        folder = os.path.dirname(os.fspath(index))  # as the user gave it
        for config in data["model_configs"]:
            if config["filename"] is not None:
                config["filename"] = _joined(folder, config["filename"])
    elif isinstance(index, Mapping):
        path = None
        data = _validate(deepcopy(dict(index)), "model index dict", default_name="model")
    else:
        raise ModelIndexError(
            f"Expected a model index dict or the path of an index file, got {type(index).__name__}."
        )
    return data, path


def _malformed(where: str, problem: str) -> ModelIndexError:
    return ModelIndexError(
        f"Malformed {where}: {problem}. Fix the index (its format is described in "
        "neuronperf_core.model_index), or re-create it with compile() or model_index.create()."
    )


def _validate(raw: Any, where: str, default_name: str) -> IndexDict:
    """``raw`` checked and completed to the current format, or a ModelIndexError."""
    if not isinstance(raw, dict):
        raise _malformed(where, f"expected a JSON object at the top, found {_kind(raw)}")
    missing = [key for key in ("version", "model_configs") if key not in raw]
    if missing:
        raise _malformed(where, f"missing key(s) {', '.join(map(repr, missing))}")
    version = raw["version"]
    if not isinstance(version, str):
        raise _malformed(where, f"'version' must be a string, found {_kind(version)}")
    if version.split(".")[0] not in _READABLE_MAJORS:
        raise ModelIndexError(
            f"Unsupported {where}: format version {version!r}, this neuronperf reads "
            f"{FORMAT_VERSION} and 1.x indexes. Upgrade neuronperf, or re-create the index."
        )
    name = raw.get("model_name", default_name)
    if not isinstance(name, str) or not name:
        raise _malformed(where, f"'model_name' must be a non-empty string, found {name!r}")
    configs = raw["model_configs"]
    if not isinstance(configs, list):
        raise _malformed(where, f"'model_configs' must be a list, found {_kind(configs)}")
    for i, config in enumerate(configs):
        _validate_config(config, f"{where}, model_configs[{i}]")
    return {**raw, "version": FORMAT_VERSION, "model_name": name}


def _validate_config(config: Any, where: str) -> None:
    """Check one config in place, filling in the defaults of missing optional keys."""
    if not isinstance(config, dict):
        raise _malformed(where, f"expected a JSON object, found {_kind(config)}")
    for key, (types, default) in _CONFIG_FIELDS.items():
        if key not in config:
            if default is _REQUIRED:
                raise _malformed(where, f"missing key {key!r}")
            config[key] = default
        value = config[key]
        # bool is an int subclass, but True is no batch size.
        if isinstance(value, bool) or not isinstance(value, types):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise _malformed(where, f"{key!r} must be {expected}, found {value!r}")
        minimum = _MINIMUM.get(key)
        if minimum is not None and config[key] < minimum:
            raise _malformed(where, f"{key!r} must be at least {minimum}, found {value}")
    if config["filename"] == "":
        raise _malformed(where, "'filename' is empty")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# ---------------------------------------------------------------- paths


def _absolute(path: Path) -> Path:
    """``path`` made absolute and normalised (``..`` removed), symlinks left alone."""
    return Path(os.path.abspath(path))


def _file_in_the_way(folder: Path) -> Path | None:
    """The file that stands where ``folder`` or one of its parents should be, if any."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def _base_dir(index_path: Path | None) -> Path:
    """The folder that relative model filenames of an index are relative to."""
    return index_path.parent if index_path is not None else Path.cwd()


def _resolve(filename: str | os.PathLike[str], base: Path) -> str:
    return os.fspath(_absolute(base / filename))


def _resolve_or_none(filename: str | None) -> str | None:
    """An index dict's filename made absolute (relative names are the current directory's)."""
    return None if filename is None else _resolve(filename, Path.cwd())


def _joined(folder: str, filename: str) -> str:
    """A filename read from an index file in ``folder`` (as given: "" is the current
    directory), as a name relative to the current directory, or absolute."""
    if not folder or os.path.isabs(filename):
        return filename
    return os.path.normpath(os.path.join(folder, filename))


def _relative_if_inside(filename: str, folder: Path) -> str:
    """``filename`` (relative to the current directory, or absolute) relative to
    ``folder`` when it lies inside it, else absolute."""
    absolute = os.fspath(_absolute(Path(filename)))
    try:
        relative = Path(os.path.relpath(absolute, folder))
    except ValueError:  # Windows: another drive
        return absolute
    return absolute if relative.parts[:1] == (os.pardir,) else relative.as_posix()


def _real(path: Path) -> Path:
    """Where ``path`` really is: its folder's symlinks resolved, not a symlink it is itself."""
    return Path(os.path.realpath(path.parent), path.name)


# ---------------------------------------------------------------- writing


def _to_json(data: IndexDict, path: Path) -> str:
    configs = [
        {**c, "filename": _relative_if_inside(c["filename"], path.parent)}
        if c["filename"] is not None
        else c
        for c in data["model_configs"]
    ]
    try:
        return json.dumps({**data, "model_configs": configs}, indent=4) + "\n"
    except (TypeError, ValueError) as e:
        raise ModelIndexError(
            f"Cannot save model index {os.fspath(path)!r}: {e}. Config values must be JSON "
            "types (str, int, float, bool, None, list, dict); convert numpy scalars with .item()."
        ) from e


# ---------------------------------------------------------------- copy and delete


def _model_paths(data: IndexDict) -> list[Path]:
    """The distinct model paths the index lists, absolute, in order."""
    paths = [
        _absolute(Path(c["filename"])) for c in data["model_configs"] if c["filename"] is not None
    ]
    return list(dict.fromkeys(paths))


def _copy(
    data: IndexDict,
    old_path: Path | None,
    new_index: str | os.PathLike[str],
    new_dir: str | os.PathLike[str],
) -> str:
    new_path, folder = _absolute(Path(new_index)), _absolute(Path(new_dir))
    sources = _model_paths(data)
    destinations = {src: folder / src.name for src in sources}
    problems = []
    if new_path.exists():
        problems.append(f"the new index {os.fspath(new_path)!r} already exists")
    problems += [f"model {os.fspath(src)!r} does not exist" for src in sources if not src.exists()]
    blocker = _file_in_the_way(folder)
    if blocker is not None:
        problems.append(f"{os.fspath(blocker)!r} is a file, not a folder")
    problems += [
        f"{os.fspath(dst)!r} already exists" for dst in destinations.values() if dst.exists()
    ]
    seen: dict[Path, Path] = {}
    for src, dst in destinations.items():
        if dst in seen:
            problems.append(f"{os.fspath(seen[dst])!r} and {os.fspath(src)!r} share a file name")
        seen[dst] = src
    if problems:
        raise ModelIndexError(
            "Cannot copy the model index: " + "; ".join(problems) + ". Nothing was copied; "
            "choose a new index name and an empty folder, or remove what is in the way."
        )

    folder.mkdir(parents=True, exist_ok=True)
    started: list[Path] = []  # checked absent above, so whatever is there now is ours
    try:
        for src, dst in destinations.items():
            started.append(dst)
            if src.is_dir():
                shutil.copytree(src, dst, symlinks=True)
            else:
                shutil.copy2(src, dst)
        new_data = deepcopy(data)
        for config in new_data["model_configs"]:
            if config["filename"] is not None:  # in new_dir as the user gave it, as in 1.x
                name = destinations[_absolute(Path(config["filename"]))].name
                config["filename"] = os.path.join(os.fspath(new_dir), name)
        return save(new_data, new_index)
    except BaseException:
        for dst in started:  # leave no half copy behind
            _discard(dst)
        raise


def _deletion_targets(data: IndexDict, index_path: Path | None, allow_outside: bool) -> list[Path]:
    """The model paths ``delete`` would remove, or a ModelIndexError naming every refused one."""
    base = Path(os.path.realpath(_base_dir(index_path)))
    index_real = _real(index_path) if index_path is not None else None
    problems = []
    targets = _model_paths(data)
    for target in targets:
        real = _real(target)
        if real == base or real in base.parents:
            problems.append(f"{os.fspath(target)!r} is the index's folder or a folder above it")
        elif real == index_real:
            problems.append(f"{os.fspath(target)!r} is the index file itself")
        elif not allow_outside and base not in real.parents:
            problems.append(
                f"{os.fspath(target)!r} is outside the index's folder {os.fspath(base)!r}"
            )
    if problems:
        raise ModelIndexError(
            "Refusing to delete: " + "; ".join(problems) + ". Nothing was deleted. "
            "Pass allow_outside=True to delete models outside the index's folder; fix the index "
            "if it lists a folder that holds it."
        )
    return targets


def _remove(targets: Iterable[Path], index_path: Path | None) -> None:
    """Remove each target (file, folder or symlink), then the index file, models first so
    that a failure leaves an index that can be deleted again."""
    for target in targets:
        if not _discard(target):
            log.warning("Model %s listed in the index is already gone; skipped.", target)
    if index_path is not None:
        index_path.unlink()


def _discard(path: Path) -> bool:
    """Remove a file, symlink or folder; False if nothing was there."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    else:
        return False
    return True
