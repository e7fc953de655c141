"""The model index: format, validation, paths, atomic saves and safe copy/move/delete."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neuronperf_core import model_index
from neuronperf_core.errors import NeuronPerfError
from neuronperf_core.model_index import ModelIndexError


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def touch(path: Path, text: str = "weights") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_index(path: Path, content: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def config(filename: str | None, batch_size: int = 1, **kv: Any) -> dict[str, Any]:
    return {
        "filename": filename,
        "input_idx": 0,
        "batch_size": batch_size,
        "pipeline_size": 1,
        **kv,
    }


def index_file(path: Path, *configs: dict[str, Any], model_name: str = "net") -> Path:
    """An index file at ``path`` listing ``configs``; each listed model file is created."""
    for c in configs:
        if c["filename"] is not None:
            touch(path.parent / c["filename"], text=c["filename"])
    return write_index(
        path, {"version": "1.0", "model_name": model_name, "model_configs": list(configs)}
    )


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------- create


def test_create_holds_one_config_with_the_1x_fields(cwd: Path) -> None:
    index = model_index.create("models/resnet_b4_p1_abcd1234.pt", 1, 4, 2, "fp16", 5.32)
    assert index == {
        "version": model_index.FORMAT_VERSION,
        "model_name": "resnet_b4_p1_abcd1234",
        "model_configs": [
            {
                "filename": "models/resnet_b4_p1_abcd1234.pt",  # as given, as in 1.x
                "input_idx": 1,
                "batch_size": 4,
                "pipeline_size": 2,
                "cast_mode": "fp16",
                "compile_s": 5.32,
                "status": "finished",
            }
        ],
    }


def test_create_keeps_extra_keys_and_takes_name_and_status(cwd: Path) -> None:
    index = model_index.create(
        Path("m.pt"), model_name="net", status="error", performance_level=2, error="oom"
    )
    assert index["model_name"] == "net"
    (c,) = index["model_configs"]
    assert (c["status"], c["performance_level"], c["error"]) == ("error", 2, "oom")
    assert (c["input_idx"], c["batch_size"], c["pipeline_size"]) == (0, 1, 1)
    assert (c["cast_mode"], c["compile_s"]) == (None, None)


def test_create_a_failed_config_without_a_file() -> None:
    index = model_index.create(None, batch_size=8, model_name="net", status="error")
    assert index["model_configs"][0]["filename"] is None
    with pytest.raises(ModelIndexError, match="needs model_name="):
        model_index.create(None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "'batch_size' must be at least 1, found 0"),
        ({"batch_size": "4"}, "'batch_size' must be int, found '4'"),
        ({"pipeline_size": True}, "'pipeline_size' must be int, found True"),
        ({"input_idx": -1}, "'input_idx' must be at least 0"),
        ({"cast_mode": 3}, "'cast_mode' must be str or null"),
    ],
)
def test_create_rejects_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelIndexError, match=re.escape(message)):
        model_index.create("m.pt", **kwargs)


def test_errors_are_neuronperf_value_errors() -> None:
    assert issubclass(ModelIndexError, NeuronPerfError)
    assert issubclass(ModelIndexError, ValueError)


# ---------------------------------------------------------------- save and load


def test_save_load_round_trip_keeps_everything(cwd: Path) -> None:
    index = model_index.append(
        model_index.create("models/a.pt", batch_size=1, model_name="net", performance_level=3),
        model_index.create("models/b.pt", batch_size=2, status="error", error="compiler failed"),
    )
    index["owner"] = "team-x"  # unknown top-level keys survive too
    written = model_index.save(index, "net.json")
    assert written == "net.json"
    assert model_index.load(written) == index
    # An index path given absolute gives absolute filenames: the same files.
    assert model_index.load(cwd / written) == model_index.resolve(index)


def test_save_writes_filenames_relative_to_the_index_folder(cwd: Path) -> None:
    index = model_index.create("out/models/a.pt", model_name="net")
    model_index.save(index, "out/net.json")
    on_disk = json.loads((cwd / "out/net.json").read_text())
    assert on_disk["model_configs"][0]["filename"] == "models/a.pt"
    assert on_disk["version"] == "1.0"


def test_save_writes_filenames_outside_the_index_folder_as_absolute(cwd: Path) -> None:
    index = model_index.create("models/a.pt", model_name="net")
    model_index.save(index, "indexes/net.json")
    on_disk = json.loads((cwd / "indexes/net.json").read_text())
    assert on_disk["model_configs"][0]["filename"] == str(cwd / "models/a.pt")


def test_relative_filenames_are_resolved_against_the_index_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_file(tmp_path / "project/net.json", config("models/a.pt"), config("../shared/b.pt"))
    monkeypatch.chdir(tmp_path / "project/models")  # anywhere but the index's folder
    loaded = model_index.load(tmp_path / "project/net.json")
    assert [c["filename"] for c in loaded["model_configs"]] == [
        str(tmp_path / "project/models/a.pt"),
        str(tmp_path / "shared/b.pt"),
    ]


def test_save_default_name_and_root_dir(cwd: Path) -> None:
    index = model_index.create("m.pt", model_name="resnet")
    name = model_index.save(index)
    assert re.fullmatch(r"resnet_[a-z0-9]{8}\.json", name)
    assert model_index.load(name)["model_name"] == "resnet"
    in_dir = model_index.save(index, root_dir="new/dir")
    assert re.fullmatch(r"new/dir/resnet_[a-z0-9]{8}\.json", in_dir)
    assert (cwd / in_dir).is_file()
    assert model_index.save(index, "x.json", root_dir="new/dir") == "new/dir/x.json"


def test_save_accepts_a_path_and_rebases_its_filenames(tmp_path: Path) -> None:
    old = index_file(tmp_path / "a/net.json", config("models/m.pt"))
    new = model_index.save(old, tmp_path / "b/net.json")
    assert json.loads(Path(new).read_text())["model_configs"][0]["filename"] == str(
        tmp_path / "a/models/m.pt"
    )


def test_save_leaves_only_the_index_and_honours_the_umask(tmp_path: Path) -> None:
    model_index.save(model_index.create("m.pt"), tmp_path / "net.json")
    assert files_under(tmp_path) == ["net.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "net.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_1x_index_loads_with_defaults(tmp_path: Path) -> None:
    # The example index of the 1.x model index guide: package version, no name or status.
    legacy = {
        "version": "0.0.0.0+0bc220a",
        "model_configs": [
            {
                "filename": "models/model_b1_p1_38793jda.pt",
                "input_idx": 0,
                "batch_size": 1,
                "pipeline_size": 1,
                "compile_s": 5.32,
            }
        ],
    }
    path = write_index(tmp_path / "model_83b3raj2.json", legacy)
    loaded = model_index.load(path)
    assert loaded["version"] == "1.0"
    assert loaded["model_name"] == "model_83b3raj2"
    assert loaded["model_configs"][0]["status"] == "finished"
    assert loaded["model_configs"][0]["cast_mode"] is None
    assert loaded["model_configs"][0]["compile_s"] == 5.32
    legacy["version"] = "1.6.0.0"
    assert model_index.load(write_index(path, legacy))["version"] == "1.0"


# ---------------------------------------------------------------- malformed indexes

GOOD_CONFIG = config("m.pt")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "it is not valid JSON"),
        ("", "it is not valid JSON"),
        ([GOOD_CONFIG], "expected a JSON object at the top, found list"),
        ({"model_configs": []}, "missing key(s) 'version'"),
        ({"version": "1.0"}, "missing key(s) 'model_configs'"),
        ({"version": 1, "model_configs": []}, "'version' must be a string, found int"),
        ({"version": "1.0", "model_configs": {}}, "'model_configs' must be a list, found dict"),
        ({"version": "1.0", "model_configs": [3]}, "model_configs[0]: expected a JSON object"),
        (
            {"version": "1.0", "model_name": "", "model_configs": []},
            "'model_name' must be a non-empty string",
        ),
        (
            {"version": "1.0", "model_configs": [GOOD_CONFIG, {"filename": "b.pt"}]},
            "model_configs[1]: missing key 'input_idx'",
        ),
        (
            {"version": "1.0", "model_configs": [{**GOOD_CONFIG, "batch_size": 2.0}]},
            "'batch_size' must be int, found 2.0",
        ),
        (
            {"version": "1.0", "model_configs": [{**GOOD_CONFIG, "filename": 7}]},
            "'filename' must be str or null, found 7",
        ),
        (
            {"version": "1.0", "model_configs": [{**GOOD_CONFIG, "filename": ""}]},
            "'filename' is empty",
        ),
        (
            {"version": "1.0", "model_configs": [{**GOOD_CONFIG, "status": None}]},
            "'status' must be str, found None",
        ),
    ],
)
def test_malformed_index_error_names_file_problem_and_remedy(
    tmp_path: Path, content: Any, problem: str
) -> None:
    path = write_index(tmp_path / "bad.json", content)
    with pytest.raises(ModelIndexError) as info:
        model_index.load(path)
    message = str(info.value)
    assert message.startswith(f"Malformed model index {str(path)!r}")
    assert problem in message
    assert "re-create it with compile()" in message


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    path = write_index(tmp_path / "new.json", {"version": "2.0", "model_configs": []})
    with pytest.raises(ModelIndexError, match=r"format version '2.0'.*Upgrade neuronperf"):
        model_index.load(path)


def test_missing_index_file(tmp_path: Path) -> None:
    with pytest.raises(ModelIndexError, match=r"nope\.json'.*does not exist"):
        model_index.load(tmp_path / "nope.json")


def test_not_an_index_at_all() -> None:
    with pytest.raises(ModelIndexError, match="got int"):
        model_index.load(42)  # type: ignore[arg-type]


def test_malformed_dict_is_refused_everywhere(tmp_path: Path) -> None:
    bad = {"version": "1.0", "model_configs": [{"filename": "a.pt"}]}
    for call in (
        lambda: model_index.save(bad, tmp_path / "x.json"),
        lambda: model_index.filter(bad),
        lambda: model_index.append(bad),
        lambda: model_index.delete(bad),
    ):
        with pytest.raises(ModelIndexError, match="Malformed model index dict"):
            call()
    assert files_under(tmp_path) == []


# ---------------------------------------------------------------- append and filter


def test_append_keeps_order_and_first_name_and_drops_exact_duplicates(tmp_path: Path) -> None:
    a = model_index.create(tmp_path / "a.pt", batch_size=1, model_name="first")
    b = model_index.create(tmp_path / "b.pt", batch_size=2, model_name="second")
    b_again_other_time = model_index.create(tmp_path / "b.pt", batch_size=2, compile_s=9.0)
    path = model_index.save(b, tmp_path / "b.json")
    merged = model_index.append(a, path, b, b_again_other_time, a)
    assert merged["model_name"] == "first"
    assert [(c["filename"], c["compile_s"]) for c in merged["model_configs"]] == [
        (str(tmp_path / "a.pt"), None),
        (str(tmp_path / "b.pt"), None),
        (str(tmp_path / "b.pt"), 9.0),
    ]


def test_append_needs_an_index() -> None:
    with pytest.raises(ModelIndexError, match="at least one"):
        model_index.append()


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return index_file(
        tmp_path / "sweep.json",
        config("m/b1.pt", 1, cast_mode="fp32", performance_level=1),
        config("m/b2.pt", 2, cast_mode="fp16", performance_level=3),
        config("m/b4.pt", 4, cast_mode="fp16"),
        config(None, 8, status="error", error="oom"),
    )


def batches(index: dict[str, Any]) -> list[int]:
    return [c["batch_size"] for c in index["model_configs"]]


def test_filter_by_scalar_list_and_none(sweep: Path) -> None:
    assert batches(model_index.filter(sweep, batch_size=2)) == [2]
    assert batches(model_index.filter(sweep, batch_size=[4, 1, 99])) == [1, 4]
    assert batches(model_index.filter(sweep, batch_size=(2,), cast_mode="fp16")) == [2]
    assert batches(model_index.filter(sweep, batch_size=None, cast_mode=None)) == [1, 2, 4, 8]
    assert batches(model_index.filter(sweep, status="finished")) == [1, 2, 4]
    assert batches(model_index.filter(sweep, performance_level=3)) == [2]  # an extra key
    assert batches(model_index.filter(sweep, batch_size=3)) == []


def test_filter_by_filename_is_relative_to_the_index_folder(sweep: Path) -> None:
    assert batches(model_index.filter(sweep, filename="m/b2.pt")) == [2]
    assert batches(model_index.filter(sweep, filename=[str(sweep.parent / "m/b4.pt")])) == [4]


def test_filter_unknown_key_names_the_valid_ones(sweep: Path) -> None:
    with pytest.raises(ModelIndexError) as info:
        model_index.filter(sweep, batch_sizes=[1])
    message = str(info.value)
    assert "batch_sizes: not a config key" in message
    for key in ("batch_size", "cast_mode", "error", "performance_level", "pipeline_size"):
        assert key in message.split("Valid keys:")[1]


def test_filter_returns_a_new_index(sweep: Path) -> None:
    index = model_index.load(sweep)
    before = json.dumps(index)
    filtered = model_index.filter(index, batch_size=1)
    filtered["model_configs"][0]["batch_size"] = 100
    assert json.dumps(index) == before
    assert filtered["model_name"] == "net"


# ---------------------------------------------------------------- atomic save


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "net.json"
    model_index.save(model_index.create(tmp_path / "a.pt", model_name="net"), path)
    return path


def test_serialisation_failing_midway_leaves_the_old_index(saved: Path) -> None:
    before = saved.read_text()
    index = model_index.create(saved.parent / "b.pt", model_name="net", extra=object())
    with pytest.raises(ModelIndexError, match="Config values must be JSON types"):
        model_index.save(index, saved)
    assert saved.read_text() == before
    assert files_under(saved.parent) == ["net.json"]


def test_numpy_scalar_gets_a_clear_error(saved: Path) -> None:
    index = model_index.create("b.pt", model_name="net", accuracy=np.float32(0.5))
    with pytest.raises(ModelIndexError, match=r"\.item\(\)"):
        model_index.save(index, saved)


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_crash_while_writing_leaves_the_old_index_and_no_temp_file(
    saved: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    before = saved.read_text()

    def crash(*args: object) -> None:
        raise OSError(f"simulated {failing} failure")

    monkeypatch.setattr(os, failing, crash)
    with pytest.raises(OSError, match="simulated"):
        model_index.save(model_index.create(saved.parent / "b.pt", model_name="net"), saved)
    monkeypatch.undo()
    assert saved.read_text() == before
    assert files_under(saved.parent) == ["net.json"]


# ---------------------------------------------------------------- copy


def test_copy_copies_models_and_writes_a_new_index(sweep: Path, tmp_path: Path) -> None:
    new = model_index.copy(sweep, tmp_path / "copy/net.json", tmp_path / "copy/models")
    assert new == str(tmp_path / "copy/net.json")
    assert files_under(tmp_path / "copy") == [
        "models/b1.pt",
        "models/b2.pt",
        "models/b4.pt",
        "net.json",
    ]
    assert (tmp_path / "copy/models/b2.pt").read_text() == "m/b2.pt"  # the content came along
    assert files_under(tmp_path / "m") == ["b1.pt", "b2.pt", "b4.pt"]  # originals stay
    on_disk = json.loads(Path(new).read_text())
    assert [c["filename"] for c in on_disk["model_configs"]] == [
        "models/b1.pt",
        "models/b2.pt",
        "models/b4.pt",
        None,
    ]
    old, copied = model_index.load(sweep), model_index.load(new)
    for a, b in zip(old["model_configs"], copied["model_configs"], strict=True):
        assert {**a, "filename": None} == {**b, "filename": None}


def test_copy_accepts_a_dict_and_copies_model_folders(cwd: Path) -> None:
    touch(cwd / "saved_model/variables/data")
    index = model_index.create("saved_model", model_name="tf")
    new = model_index.copy(index, "out.json", "out")
    assert new == "out.json"
    assert (cwd / "out/saved_model/variables/data").read_text() == "weights"
    assert model_index.load(new)["model_configs"][0]["filename"] == "out/saved_model"


@pytest.mark.parametrize(
    ("prepare", "problem"),
    [
        (lambda t: touch(t / "copy/net.json"), "already exists"),
        (lambda t: touch(t / "copy/models/b2.pt"), "b2.pt' already exists"),
        (lambda t: (t / "m/b4.pt").unlink(), "b4.pt' does not exist"),
    ],
)
def test_copy_refuses_before_copying_anything(
    sweep: Path, tmp_path: Path, prepare: Any, problem: str
) -> None:
    prepare(tmp_path)
    before = files_under(tmp_path)
    with pytest.raises(ModelIndexError, match=problem) as info:
        model_index.copy(sweep, tmp_path / "copy/net.json", tmp_path / "copy/models")
    assert "Nothing was copied" in str(info.value)
    assert files_under(tmp_path) == before


def test_copy_refuses_two_models_with_one_file_name(tmp_path: Path) -> None:
    path = index_file(tmp_path / "net.json", config("x/m.pt"), config("y/m.pt", 2))
    with pytest.raises(ModelIndexError, match="share a file name"):
        model_index.copy(path, tmp_path / "new.json", tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_copy_failing_midway_removes_the_partial_copy(
    sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_copy2 = shutil.copy2
    calls = []

    def flaky_copy2(src: Path, dst: Path) -> Any:
        calls.append(src)
        if len(calls) == 2:
            Path(dst).write_text("half")  # a half-written file, then the disk fills up
            raise OSError("disk full")
        return real_copy2(src, dst)

    monkeypatch.setattr(shutil, "copy2", flaky_copy2)
    with pytest.raises(OSError, match="disk full"):
        model_index.copy(sweep, tmp_path / "copy/net.json", tmp_path / "copy/models")
    assert files_under(tmp_path / "copy") == []
    assert files_under(tmp_path / "m") == ["b1.pt", "b2.pt", "b4.pt"]


# ---------------------------------------------------------------- delete


def test_delete_removes_the_index_and_only_the_listed_models(sweep: Path, tmp_path: Path) -> None:
    touch(tmp_path / "m/not_listed.pt")
    touch(tmp_path / "other.json")
    model_index.delete(sweep)
    assert files_under(tmp_path) == ["m/not_listed.pt", "other.json"]


def test_delete_removes_a_listed_folder_and_skips_missing_models(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    touch(tmp_path / "saved/variables/data")
    path = write_index(
        tmp_path / "net.json",
        {"version": "1.0", "model_configs": [config("saved"), config("gone.pt", 2)]},
    )
    with caplog.at_level(logging.WARNING, logger="neuronperf.model_index"):
        model_index.delete(str(path))
    assert list(tmp_path.iterdir()) == []
    assert "gone.pt" in caplog.text


def test_delete_of_a_dict_removes_models_relative_to_cwd(cwd: Path) -> None:
    touch(cwd / "models/a.pt")
    touch(cwd / "keep.pt")
    model_index.delete(model_index.create("models/a.pt"))
    assert files_under(cwd) == ["keep.pt"]


@pytest.mark.parametrize("escape", ["../outside.pt", "ABSOLUTE", "models/../../outside.pt"])
def test_delete_refuses_models_outside_the_index_folder(tmp_path: Path, escape: str) -> None:
    outside = touch(tmp_path / "outside.pt")
    escape = str(outside) if escape == "ABSOLUTE" else escape
    path = index_file(tmp_path / "project/net.json", config("models/a.pt"))
    write_index(
        path,
        {"version": "1.0", "model_configs": [config("models/a.pt"), config(escape, 2)]},
    )
    before = files_under(tmp_path)
    with pytest.raises(ModelIndexError) as info:
        model_index.delete(path)
    message = str(info.value)
    assert f"{str(outside)!r} is outside the index's folder" in message
    assert "Nothing was deleted" in message and "allow_outside=True" in message
    assert files_under(tmp_path) == before  # not even the listed model inside

    model_index.delete(path, allow_outside=True)
    assert files_under(tmp_path) == []


def test_delete_refuses_a_symlinked_folder_that_leads_outside(tmp_path: Path) -> None:
    touch(tmp_path / "elsewhere/a.pt")
    (tmp_path / "project").mkdir()
    (tmp_path / "project/models").symlink_to(tmp_path / "elsewhere")
    path = write_index(
        tmp_path / "project/net.json", {"version": "1.0", "model_configs": [config("models/a.pt")]}
    )
    with pytest.raises(ModelIndexError, match="outside the index's folder"):
        model_index.delete(path)
    assert (tmp_path / "elsewhere/a.pt").exists()


def test_delete_removes_a_symlinked_model_not_its_target(tmp_path: Path) -> None:
    target = touch(tmp_path / "elsewhere/a.pt")
    (tmp_path / "project").mkdir()
    (tmp_path / "project/a.pt").symlink_to(target)
    path = write_index(
        tmp_path / "project/net.json", {"version": "1.0", "model_configs": [config("a.pt")]}
    )
    model_index.delete(path)
    assert list((tmp_path / "project").iterdir()) == []
    assert target.read_text() == "weights"


@pytest.mark.parametrize(
    ("filename", "problem"),
    [
        (".", "is the index's folder or a folder above it"),
        ("..", "is the index's folder or a folder above it"),
        ("net.json", "is the index file itself"),
    ],
)
def test_delete_always_refuses_the_index_itself_and_its_folders(
    tmp_path: Path, filename: str, problem: str
) -> None:
    touch(tmp_path / "project/models/a.pt")
    path = write_index(
        tmp_path / "project/net.json",
        {"version": "1.0", "model_configs": [config("models/a.pt"), config(filename, 2)]},
    )
    for allow_outside in (False, True):
        with pytest.raises(ModelIndexError, match=problem):
            model_index.delete(path, allow_outside=allow_outside)
    assert files_under(tmp_path) == ["project/models/a.pt", "project/net.json"]


# ---------------------------------------------------------------- move


def test_move_copies_then_deletes_the_old(sweep: Path, tmp_path: Path) -> None:
    touch(tmp_path / "m/not_listed.pt")
    new = model_index.move(sweep, tmp_path / "moved/net.json", tmp_path / "moved/models")
    assert files_under(tmp_path) == [
        "m/not_listed.pt",
        "moved/models/b1.pt",
        "moved/models/b2.pt",
        "moved/models/b4.pt",
        "moved/net.json",
    ]
    assert batches(model_index.load(new)) == [1, 2, 4, 8]


def test_move_refuses_outside_models_before_copying(tmp_path: Path) -> None:
    touch(tmp_path / "outside.pt")
    path = index_file(tmp_path / "project/net.json", config("models/a.pt"))
    write_index(
        path,
        {"version": "1.0", "model_configs": [config("models/a.pt"), config("../outside.pt", 2)]},
    )
    before = files_under(tmp_path)
    with pytest.raises(ModelIndexError, match="outside the index's folder"):
        model_index.move(path, tmp_path / "new.json", tmp_path / "new")
    assert files_under(tmp_path) == before

    model_index.move(path, tmp_path / "new.json", tmp_path / "new", allow_outside=True)
    assert files_under(tmp_path) == ["new.json", "new/a.pt", "new/outside.pt"]


def test_move_into_the_same_folder_is_refused(sweep: Path, tmp_path: Path) -> None:
    before = files_under(tmp_path)
    with pytest.raises(ModelIndexError, match="already exists"):
        model_index.move(sweep, tmp_path / "same.json", tmp_path / "m")
    assert files_under(tmp_path) == before


# ---------------------------------------------------------------- the whole life of an index


def test_round_trip_create_save_load_filter_copy_move_delete(cwd: Path) -> None:
    for b in (1, 2):
        touch(cwd / f"models/net_b{b}_p1.pt", text=f"batch {b}")
    index = model_index.append(
        *(
            model_index.create(f"models/net_b{b}_p1.pt", i, b, cast_mode="fp16", model_name="net")
            for i, b in enumerate((1, 2))
        )
    )
    path = model_index.save(index)
    loaded = model_index.load(path)
    assert loaded == index

    only_b2 = model_index.filter(loaded, batch_size=[2])
    assert [(c["input_idx"], c["batch_size"]) for c in only_b2["model_configs"]] == [(1, 2)]

    copied = model_index.copy(only_b2, "b2/net.json", "b2/models")
    moved = model_index.move(copied, "final/net.json", "final/models")
    assert not (cwd / "b2/net.json").exists()
    assert not (cwd / "b2/models/net_b2_p1.pt").exists()
    final = model_index.load(moved)
    assert (cwd / final["model_configs"][0]["filename"]).read_text() == "batch 2"

    model_index.delete(moved)
    model_index.delete(path)
    assert files_under(cwd) == []


# ---------------------------------------------------------------- NeuronPerf 1.x's filenames
# 1.x kept each filename as the user gave it and wrote it so. The first tests are 1.x's own
# sanity tests of the model index, adapted only to run in a temporary folder.


def test_1x_create_keeps_the_filename_as_given(cwd: Path) -> None:
    index = model_index.create("dummy_model.ext", model_name="dummy")
    assert index["model_name"] == "dummy"
    assert len(index["model_configs"]) == 1
    assert index["model_configs"][0]["filename"] == "dummy_model.ext"


def test_1x_create_save_load_delete(cwd: Path) -> None:
    model_filename = os.path.join("models", "dummy.model")
    index = model_index.create(model_filename, model_name="Dummy")
    model_index.save(index, filename="dummy_index.json")
    assert os.path.exists("dummy_index.json")
    loaded = model_index.load("dummy_index.json")
    assert loaded == index
    assert loaded["model_configs"][0]["filename"] == model_filename
    assert loaded["model_configs"][0]["batch_size"] == 1
    model_index.delete("dummy_index.json")
    assert not os.path.exists("dummy_index.json")


@pytest.mark.parametrize("given", ["dict", "file"])
def test_1x_copy_gives_filenames_in_the_new_folder_as_named(cwd: Path, given: str) -> None:
    model_filename = os.path.join("models", "dummy.model")
    touch(cwd / model_filename)
    index = model_index.create(model_filename, model_name="Dummy")
    model_index.save(index, filename="dummy_index.json")
    old = index if given == "dict" else "dummy_index.json"
    assert model_index.copy(old, "new_index.json", "new_models") == "new_index.json"
    assert os.path.exists(model_filename) and os.path.exists("dummy_index.json")
    assert os.path.exists(os.path.join("new_models", "dummy.model"))
    new_index = model_index.load("new_index.json")
    assert new_index["model_configs"][0]["filename"] == os.path.join("new_models", "dummy.model")
    on_disk = json.loads((cwd / "new_index.json").read_text())
    assert on_disk["model_configs"][0]["filename"] == "new_models/dummy.model"


def test_1x_move(cwd: Path) -> None:
    model_filename = os.path.join("models", "dummy.model")
    touch(cwd / model_filename)
    model_index.save(model_index.create(model_filename, model_name="Dummy"), "dummy_index.json")
    model_index.move("dummy_index.json", "new_index.json", "new_models")
    assert not os.path.exists("dummy_index.json") and not os.path.exists(model_filename)
    new_index = model_index.load("new_index.json")
    assert new_index["model_configs"][0]["filename"] == os.path.join("new_models", "dummy.model")
    model_index.delete("new_index.json")
    assert files_under(cwd) == []


def test_1x_append_and_filter_on_filenames_as_given(cwd: Path) -> None:
    indexes = [model_index.create(f"Dummy_{x}", model_name="Dummy") for x in range(10)]
    combined = model_index.append(*indexes)
    assert [c["filename"] for c in combined["model_configs"]] == [f"Dummy_{x}" for x in range(10)]
    assert (
        len(model_index.append(*(model_index.create("Dummy") for _ in range(10)))["model_configs"])
        == 1
    )

    idx = model_index.append(
        model_index.create("fake", performance_level=2, compile_s=1),
        model_index.create("fake2", compile_s=2),
    )
    filtered = model_index.filter(idx, filename="fake")
    assert [c["filename"] for c in filtered["model_configs"]] == ["fake"]
    assert filtered["model_name"] == "fake"
    assert len(model_index.filter(idx, filename=str(cwd / "fake"))["model_configs"]) == 1
    assert len(model_index.filter(idx, compile_s=None)["model_configs"]) == 2


def test_compile_style_index_keeps_models_dir_relative(cwd: Path) -> None:
    # What api.compile does: create(os.fspath(models_dir / name)), append, save(filename).
    for filename, models_dir, expected in [
        ("net_x.json", "models", "models/net_b1.pt"),  # the defaults: both in the cwd
        ("out/net.json", "out/models", "out/models/net_b1.pt"),  # the CLI's --out
    ]:
        entry = model_index.create(os.fspath(Path(models_dir) / "net_b1.pt"), model_name="net")
        model_index.save(model_index.append(entry), filename)
        assert json.loads((cwd / filename).read_text())["model_configs"][0]["filename"] == (
            "models/net_b1.pt"
        )
        assert model_index.load(filename)["model_configs"][0]["filename"] == expected


def test_load_joins_names_to_the_index_path_as_given_and_resolve_makes_them_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_file(tmp_path / "project/net.json", config("models/a.pt"))
    monkeypatch.chdir(tmp_path)
    loaded = model_index.load("project/net.json")
    assert loaded["model_configs"][0]["filename"] == os.path.join("project", "models", "a.pt")
    assert Path(loaded["model_configs"][0]["filename"]).is_file()  # usable as it is
    resolved = model_index.resolve("project/net.json")
    assert resolved["model_configs"][0]["filename"] == str(tmp_path / "project/models/a.pt")
    monkeypatch.chdir(tmp_path / "project/models")  # from anywhere: the same files
    assert model_index.resolve("../net.json") == resolved
    assert model_index.resolve(model_index.create("a.pt"))["model_configs"][0]["filename"] == (
        str(tmp_path / "project/models/a.pt")
    )


def test_a_loaded_index_from_another_folder_deletes_its_own_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_file(tmp_path / "project/net.json", config("models/a.pt"))
    touch(tmp_path / "models/a.pt", "a model of the same name, here")
    monkeypatch.chdir(tmp_path)
    loaded = model_index.load("project/net.json")
    model_index.delete(loaded)  # a dict: its names are the current directory's
    assert files_under(tmp_path) == ["models/a.pt", "project/net.json"]


class ChecksItsFile:
    """A load_fn that records the filename it gets and refuses a file it cannot see."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, filename: str, device_id: int = 0) -> Any:
        self.seen.append(filename)
        if not Path(filename).is_file():
            raise FileNotFoundError(filename)
        return lambda x: x


def test_benchmark_finds_the_models_of_an_index_from_another_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import neuronperf as npf

    index_file(tmp_path / "project/net.json", config("models/a.pt"))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    loader = ChecksItsFile()
    (report,) = npf.benchmark(
        loader, "../project/net.json", [1], duration=0, n_models=1, workers_per_model=1,
        multiprocess=False, results_dir=None, verbosity=0,
    )  # fmt: skip
    assert report["status"] == "finished", report["error"]
    assert set(loader.seen) == {str(tmp_path / "project/models/a.pt")}
