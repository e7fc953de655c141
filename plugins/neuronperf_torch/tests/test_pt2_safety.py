"""A crafted .pt2 never runs code: export.check_safe, which export.load, npf.torch.load and
``neuronperf compile`` (datafiles.read_model) call before torch.export.load, refuses every
archive that is not what torch.export.save writes for a plain program.

Each malicious archive is built from a real one and carries a payload that creates a marker
file if anything from the archive is unpickled or executed: a test proves the refusal AND
that the marker does not exist. test_the_payloads_are_live shows, on the torch these tests
were written for, that torch.export.load does run them when nothing vets the archive."""

from __future__ import annotations

import builtins
import io
import json
import pickle
import stat
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from neuronperf_torch import datafiles, export
from neuronperf_torch.errors import UnsafeArtifactError
from npt_helpers import make_model

import neuronperf as npf

X = torch.randn(2, 3, 8, 8)
PROGRAM = "models/model.json"
WEIGHTS = "data/weights/model_weights_config.json"
CONSTANTS = "data/constants/model_constants_config.json"
SAMPLES = "data/sample_inputs/model.pt"

Entries = list[tuple[str, bytes]]  # (name inside the archive folder, content)


class Touch:
    """Unpickling it calls open(marker, "w"): the marker file proves code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.open, (self.marker, "w"))


def torch_pickle(marker: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save(Touch(marker), buffer)
    return buffer.getvalue()


def code(marker: Path) -> str:
    """A Python expression that creates the marker, with no '.' or '"' (it survives being
    split at dots or pasted between double quotes)."""
    return f"open(bytes({list(str(marker).encode())}),'w')"


# -- archives -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What npf.torch.compile(..., device_type="cpu") writes: export.compile_artifact, which
    also loads it back (through check_safe) and runs it once."""
    path = tmp_path_factory.mktemp("pt2") / "SmallCNN_b2_p1_test.pt2"
    meta = {"device_type": "cpu", "batch_size": 2, "cast_mode": "fp32", "model_name": "SmallCNN"}
    export.compile_artifact(
        make_model(), (X,), device="cpu", cast_mode="fp32", path=path, meta=meta, export_kwargs={}
    )
    return path


def read(path: Path) -> tuple[str, Entries]:
    with zipfile.ZipFile(path) as archive:
        folder = archive.namelist()[0].split("/", 1)[0]
        return folder, [(i.filename.split("/", 1)[1], archive.read(i)) for i in archive.infolist()]


def write(
    path: Path, folder: str, entries: Entries, raw: Entries = (), links: Entries = ()
) -> Path:
    """A zip of ``entries`` under ``folder/``, ``raw`` entries by their full names and
    ``links`` as symbolic links (content: the link target)."""
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
        warnings.simplefilter("ignore")  # duplicate names are what some variants are about
        for name, data in entries:
            archive.writestr(f"{folder}/{name}", data)
        for name, data in raw:
            archive.writestr(name, data)
        for name, target in links:
            info = zipfile.ZipInfo(f"{folder}/{name}")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def get(entries: Entries, name: str) -> bytes:
    return dict(entries)[name]


def replaced(entries: Entries, name: str, data: bytes) -> Entries:
    return [(n, data if n == name else d) for n, d in entries]


def renamed(entries: Entries, old: str, new: str) -> Entries:
    return [(new if n == old else n, d) for n, d in entries]


def program(entries: Entries) -> Any:
    return json.loads(get(entries, PROGRAM))


def with_program(entries: Entries, changed: Any) -> Entries:
    return replaced(entries, PROGRAM, json.dumps(changed).encode())


def pickled_weight_config(entries: Entries) -> tuple[bytes, str]:
    """The weights config with its first weight marked use_pickle, and that weight's file."""
    config = json.loads(get(entries, WEIGHTS))
    first = next(iter(config["config"].values()))
    first["use_pickle"] = True
    return json.dumps(config).encode(), f"data/weights/{first['path_name']}"


# -- the variants: entries -> (entries, raw entries, symbolic links) ------------------------

Variant = Callable[[Entries, Path], tuple[Entries, Entries, Entries]]


def legacy_weights(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    # torch prefers data/weights/<model>.pt over the config and unpickles it
    return [*e, ("data/weights/model.pt", torch_pickle(marker))], [], []


def legacy_constants(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    return [*e, ("data/constants/model.pt", torch_pickle(marker))], [], []


def program_under_another_name(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    # torch reads every models/* entry as a program, cutting off 5 characters: this is
    # program "model"; the old check looked at models/*.json only and so vetted no config
    config, weight = pickled_weight_config(e)
    e = renamed(replaced(e, WEIGHTS, config), PROGRAM, "models/modelXjson")
    return replaced(e, weight, torch_pickle(marker)), [], []


def second_program(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    extra = [
        ("models/extra.json", get(e, PROGRAM)),
        ("data/sample_inputs/extra.pt", get(e, SAMPLES)),
        ("data/weights/extra.pt", torch_pickle(marker)),
        ("data/constants/extra_constants_config.json", get(e, CONSTANTS)),
    ]
    return [*e, *extra], [], []


def pickled_weight(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    config, weight = pickled_weight_config(e)
    return replaced(replaced(e, WEIGHTS, config), weight, torch_pickle(marker)), [], []


def pickled_constant(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    # an opaque object: torch reads it with pickle.loads
    config = json.loads(get(e, CONSTANTS))
    config["config"]["evil"] = {
        "path_name": "opaque_obj_0",
        "is_param": False,
        "use_pickle": True,
        "tensor_meta": None,
    }
    e = replaced(e, CONSTANTS, json.dumps(config).encode())
    return [*e, ("data/constants/opaque_obj_0", pickle.dumps(Touch(marker)))], [], []


def pickled_sample_inputs(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    # weights_only=True refuses them, and torch then unpickles them fully
    return replaced(e, SAMPLES, torch_pickle(marker)), [], []


def outside_the_folder(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    # an entry outside the folder makes torch's reader fail (RuntimeError), and
    # torch.export.load then tries its pre-2.8 format, which it finds at the top level
    payload = torch_pickle(marker)
    raw = [
        ("version", b"8.20"),
        ("serialized_exported_program.json", get(e, PROGRAM)),
        ("serialized_state_dict.pt", payload),
        ("serialized_constants.pt", payload),
        ("serialized_example_inputs.pt", payload),
    ]
    return e, raw, []


def duplicate_entry(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    config, weight = pickled_weight_config(e)
    return [*replaced(e, weight, torch_pickle(marker)), (WEIGHTS, config)], [], []


def case_twin(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    # torch's zip reader finds names regardless of case
    config, weight = pickled_weight_config(e)
    twin = ("data/weights/MODEL_weights_config.json", config)
    return [*replaced(e, weight, torch_pickle(marker)), twin], [], []


def aotinductor_library(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    return [*e, ("data/aotinductor/model/model.so", b"\x7fELF" + torch_pickle(marker))], [], []


def dot_dot(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    return [*e, ("extra/../../model.pt", torch_pickle(marker))], [], []


def symbolic_link(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    return e, [], [("extra/notes.txt", str(marker).encode())]


def shape_expression(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    # torch parses shape expressions with sympy.sympify, which evaluates Python
    changed = program(e)
    meta = next(iter(changed["graph_module"]["graph"]["tensor_values"].values()))
    evil = f"open({str(marker)!r}, 'w') and 2"  # sympy makes unknown names (bytes) symbols
    meta["sizes"][0] = {"as_expr": {"expr_str": evil, "hint": {"as_int": 2}}}
    return with_program(e, changed), [], []


def input_name(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    # input names become the parameters of the forward FX generates and execs
    evil = f"x={code(marker)}"
    text = get(e, PROGRAM).decode()
    text = text.replace('"name": "x"', f'"name": {json.dumps(evil)}')
    text = text.replace('"x": {', f"{json.dumps(evil)}: {{")
    return replaced(e, PROGRAM, text.encode()), [], []


def parameter_name(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    # FQNs are pasted between double quotes in getattr(self, "...") by module()
    evil = f'fc.weight" if {code(marker)} else "weight'
    return (
        [
            (
                n,
                d.replace(b'"fc.weight"', json.dumps(evil).encode())
                if n in (PROGRAM, WEIGHTS)
                else d,
            )
            for n, d in e
        ],
        [],
        [],
    )


def guards_code(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    # ExportedProgram.module() execs guards_code
    changed = program(e)
    changed["guards_code"] = [f"{code(marker)} is not None"]
    return with_program(e, changed), [], []


def any_callable(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    changed = program(e)
    changed["graph_module"]["graph"]["nodes"].insert(
        0,
        {
            "target": "torch.os.system",
            "inputs": [{"name": "command", "arg": {"as_string": f"touch {marker}"}, "kind": 1}],
            "outputs": [],
            "metadata": {},
            "name": "evil",
        },
    )
    return with_program(e, changed), [], []


def file_operator(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    changed = program(e)
    changed["graph_module"]["graph"]["nodes"][0]["target"] = "torch.ops.aten.from_file.default"
    return with_program(e, changed), [], []


def input_spec_key(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    # keyword names in the input spec are pasted between quotes in module()'s forward
    changed = program(e)
    signature = changed["graph_module"]["module_call_graph"][0]["signature"]
    spec = json.loads(signature["in_spec"])
    spec[1]["children_spec"][1]["context"] = json.dumps([f"x':{code(marker)},'x"])
    signature["in_spec"] = json.dumps(spec)
    return with_program(e, changed), [], []


def forward_arg_names(e: Entries, marker: Path) -> tuple[Entries, Entries, Entries]:
    changed = program(e)
    signature = changed["graph_module"]["module_call_graph"][0]["signature"]
    signature["forward_arg_names"] = [f"x={code(marker)}"]
    return with_program(e, changed), [], []


VARIANTS: dict[str, tuple[Variant, str]] = {
    # the three known bypasses of the old denylist
    "legacy_weights": (legacy_weights, "legacy weights"),
    "legacy_constants": (legacy_constants, "legacy constants"),
    "program_under_another_name": (program_under_another_name, "another program file"),
    # more ways torch.export.load unpickles
    "second_program": (second_program, "another program file"),
    "pickled_weight": (pickled_weight, "is stored as a pickled Python object"),
    "pickled_constant": (pickled_constant, "a custom object, which torch unpickles"),
    "pickled_sample_inputs": (pickled_sample_inputs, "sample inputs hold objects"),
    "outside_the_folder": (outside_the_folder, "outside the archive folder"),
    "duplicate_entry": (duplicate_entry, "twice"),
    "case_twin": (case_twin, "differ only in case"),
    "aotinductor_library": (aotinductor_library, "AOTInductor"),
    "dot_dot": (dot_dot, "does not write"),
    "symbolic_link": (symbolic_link, "not a plain file"),
    # the program JSON turned into code
    "shape_expression": (shape_expression, "shape expression"),
    "input_name": (input_name, "names may hold only"),
    "parameter_name": (parameter_name, "names may hold only"),
    "guards_code": (guards_code, "input guard"),
    "any_callable": (any_callable, "not an operator neuronperf vets"),
    "file_operator": (file_operator, "not an operator neuronperf vets"),
    "input_spec_key": (input_spec_key, "names may hold only"),
    "forward_arg_names": (forward_arg_names, "names may hold only"),
}


def build(artifact: Path, tmp_path: Path, name: str) -> tuple[Path, Path]:
    """The variant ``name`` of ``artifact`` and the marker its payload would create."""
    marker = tmp_path / f"{name}_ran"
    folder, entries = read(artifact)
    changed, raw, links = VARIANTS[name][0](entries, marker)
    return write(tmp_path / f"{name}.pt2", folder, changed, raw, links), marker


# -- refused, and nothing ran -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_crafted_archive_is_refused_and_runs_nothing(
    artifact: Path, tmp_path: Path, name: str
) -> None:
    path, marker = build(artifact, tmp_path, name)
    with pytest.raises(UnsafeArtifactError, match=VARIANTS[name][1]) as refused:
        export.load(path, "cpu")
    assert not marker.exists()
    message = str(refused.value)
    assert "could run code" in message and "only if you trust" in message  # why, and what to do


@pytest.mark.parametrize("name", ["legacy_weights", "program_under_another_name", "guards_code"])
def test_npf_torch_load_refuses_them(artifact: Path, tmp_path: Path, name: str) -> None:
    path, marker = build(artifact, tmp_path, name)
    with pytest.raises(UnsafeArtifactError):
        npf.torch.load(path, device_type="cpu")
    assert not marker.exists()


@pytest.mark.parametrize("name", ["legacy_constants", "input_name", "parameter_name"])
def test_neuronperf_compile_refuses_them_as_saved_models(
    artifact: Path, tmp_path: Path, name: str
) -> None:
    path, marker = build(artifact, tmp_path, name)
    with pytest.raises(UnsafeArtifactError):
        datafiles.read_model(path)
    assert not marker.exists()


LIVE = {  # variant -> what runs it: torch.export.load alone, or module() as well
    "legacy_weights": "load",
    "legacy_constants": "load",
    "program_under_another_name": "load",
    "pickled_weight": "load",
    "pickled_constant": "load",
    "pickled_sample_inputs": "load",
    "outside_the_folder": "load",
    "shape_expression": "load",
    "input_name": "load",
    "parameter_name": "module",
    "guards_code": "module",
}


@pytest.mark.skipif(
    not torch.__version__.startswith("2.13."), reason="the payloads were checked on torch 2.13"
)
@pytest.mark.parametrize("name", sorted(LIVE))
def test_the_payloads_are_live(artifact: Path, tmp_path: Path, name: str) -> None:
    """Without the check, torch.export.load (and module()) runs what these archives hold:
    the refusals above are not vacuous. (The payload only creates an empty file.)"""
    path, marker = build(artifact, tmp_path, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            loaded = torch.export.load(str(path))
            if LIVE[name] == "module":
                loaded.module()(X)
        except Exception:
            pass  # most payloads break the program after they ran
    assert marker.exists()


# -- what is legitimate still loads ---------------------------------------------------------


def test_what_compile_writes_loads_and_computes(artifact: Path) -> None:
    run = export.load(artifact, "cpu")
    with torch.no_grad():
        torch.testing.assert_close(run(X), make_model()(X))
    assert export.read_meta(artifact)["device_type"] == "cpu"


class Everything(torch.nn.Module):
    """Strings, keywords, dict outputs, ModuleList FQNs, a lifted constant, a buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(6, 6) for _ in range(2)])
        self.register_buffer("offset", torch.ones(6))

    def forward(self, x: torch.Tensor, *, scale: torch.Tensor) -> dict[str, Any]:
        for layer in self.layers:
            x = torch.nn.functional.gelu(layer(x), approximate="tanh")
        y = torch.div(x, 3, rounding_mode="floor") + torch.tensor([1.0])
        return {"out": x * scale + self.offset, "parts": (y, torch.einsum("bi,bj->bij", x, y))}


def test_plain_user_archives_load(tmp_path: Path) -> None:
    """What a user saves with torch.export.save: a plain program, one with dynamic shapes
    (shape expressions, guards) and one with keywords, strings and nested outputs."""
    model = make_model()
    plain = tmp_path / "plain.pt2"
    torch.export.save(torch.export.export(model, (X,)), plain)
    export.check_safe(plain)
    module = datafiles.read_model(plain)  # as neuronperf compile reads it
    with torch.no_grad():
        torch.testing.assert_close(module(X), model(X))

    batch = torch.export.Dim("batch", min=2, max=64)
    dynamic = tmp_path / "dynamic.pt2"
    program = torch.export.export(model, (X,), dynamic_shapes=({0: batch},))
    torch.export.save(program, dynamic)
    x5 = torch.randn(5, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(datafiles.read_model(dynamic)(x5), model(x5))

    everything = tmp_path / "everything.pt2"
    args, kwargs = (torch.randn(2, 6),), {"scale": torch.tensor(2.0)}
    program = torch.export.export(Everything(), args, kwargs)
    torch.export.save(program, everything, extra_files={"notes.txt": "hello"})
    export.check_safe(everything)
    out = torch.export.load(everything).module()(*args, **kwargs)
    assert set(out) == {"out", "parts"}


def test_it_fails_closed_when_torch_lacks_the_archive_layout(
    artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torch.export.pt2_archive import constants

    monkeypatch.delattr(constants, "WEIGHTS_CONFIG_FILENAME_FORMAT")
    with pytest.raises(UnsafeArtifactError, match="does not define the pt2 archive layout"):
        export.check_safe(artifact)
