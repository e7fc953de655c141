"""CPU and CUDA artifacts: ``torch.export`` programs (``.pt2``), saved and loaded safely;
TorchScript archives (``torch.jit.save``), loaded with ``torch.jit.load`` after a check
(see the TorchScript notes at the end: they are programs, to run only when trusted).

Why torch.export and not TorchScript: ``torch.jit.trace``/``script`` are
deprecated (torch 2.13 warns "Please switch to torch.compile or
torch.export"), and a ``.pt2`` archive stores the graph as versioned JSON
(ATen operators) and the weights as raw tensor bytes, so loading it needs no
Python code from the file. torch.export.load can still unpickle (legacy
entries, custom objects, tensor subclasses, sample inputs that weights_only
rejects) and run code from the program JSON (sympy, generated source), so
``check_safe`` first vets the archive against an allowlist of what
torch.export.save writes for a plain program and refuses anything else.

Running a loaded program: ``ExportedProgram.module()`` wraps the graph in
Python input checks (pytree flattening, shape guards) that cost 50-100 us per
call, which would inflate a small CNN's CPU latency by tens of per cent. We
call the lifted graph directly with its weights (``lean_callable``), exactly
what ``module()`` runs underneath, and check input shapes once, before loading,
instead of on every call. Programs the direct path does not cover (buffer
mutation, custom objects, nested inputs) fall back to ``module()``.

Cast modes are the dtype the model runs in (fp32, bf16, fp16). A non-fp32
artifact includes the casts: it takes the same (fp32) inputs as the fp32 one
and returns floating outputs in the input dtype, as Neuron's auto-cast does.
"""

from __future__ import annotations

import ast
import copy
import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuronperf_torch.errors import TorchArgumentError, UnsafeArtifactError
from neuronperf_torch.neuron import jit_deprecation_silenced

FORMAT = "torch.export"
EXTENSION = ".pt2"
META_NAME = "neuronperf.json"  # stored in the archive's extra/ folder
CAST_MODES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
DEFAULT_CAST_MODE = "fp32"


def read_meta(path: str | Path) -> dict[str, Any] | None:
    """The neuronperf metadata stored in a .pt2 or TorchScript archive (no torch import)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(f"extra/{META_NAME}"):
                    meta = json.loads(archive.read(name).decode("utf-8"))
                    return meta if isinstance(meta, dict) else None
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    return None


# -- compiling ----------------------------------------------------------------------


def _cast_module(model: Any, dtype: Any, io_dtype: Any) -> Any:
    import torch
    from torch.utils._pytree import tree_map

    class CastTo(torch.nn.Module):
        """Runs ``model`` in ``dtype``; takes and returns floating tensors in ``io_dtype``."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model.to(dtype)

        def forward(self, *args: Any) -> Any:
            args = tuple(
                a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                for a in args
            )
            out = self.model(*args)
            return tree_map(
                lambda t: (
                    t.to(io_dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() else t
                ),
                out,
            )

    return CastTo()


def compile_artifact(
    model: Any,
    example: tuple[Any, ...],
    *,
    device: str,
    cast_mode: str,
    path: Path,
    meta: dict[str, Any],
    export_kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Export ``model`` for ``example`` in ``cast_mode`` on ``device``, save it to ``path``,
    load it back and run it once (so a config that cannot run fails here, not later).

    Returns extra keys for the model index.
    """
    import torch

    dtype = getattr(torch, CAST_MODES[cast_mode])  # bf16 on CUDA: checked by plan_compile
    float_inputs = [
        t.dtype for t in example if isinstance(t, torch.Tensor) and t.is_floating_point()
    ]
    io_dtype = float_inputs[0] if float_inputs else torch.float32
    module = model
    if dtype is not torch.float32 or device != "cpu":
        module = copy.deepcopy(model)  # .to() works in place: never change the user's model
    if dtype is not torch.float32:
        module = _cast_module(module, dtype, io_dtype)
    module = module.to(device).eval()
    example = tuple(t.to(device) if isinstance(t, torch.Tensor) else t for t in example)
    program = torch.export.export(module, example, **export_kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(path), extra_files={META_NAME: json.dumps(meta)})
    from neuronperf_torch.devices import one_thread

    run = load(path, device)
    with torch.inference_mode(), one_thread():  # no OpenMP team here: see loading.CpuModel
        run(*example)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return {"format": FORMAT, "dtype": str(dtype).removeprefix("torch.")}


# -- loading: vetting an archive before torch.export.load reads it -------------------
#
# torch.export.load is not a safe loader. Besides the raw-tensor path it unpickles
# (torch.load(weights_only=False), pickle.loads) for legacy weights or constants files
# (data/weights/<model>.pt), payloads marked use_pickle, custom objects and sample
# inputs that weights_only refuses; it reads every models/* entry as a program, whatever
# its suffix; it falls back to the pre-2.8 loader (pickles again) on any RuntimeError,
# e.g. an entry outside the archive's folder; it dlopens AOTInductor libraries under
# data/aotinductor/. The program JSON is not inert either: symbolic shapes are parsed
# with sympy.sympify (eval), names and FQNs are pasted into the Python source FX
# generates and execs, guards_code is exec'd by ExportedProgram.module(), and node
# targets pick any attribute under torch (operators that write files included).
#
# So the check is an allowlist. The archive may hold only what torch.export.save writes
# for one plain program (and our metadata under extra/), seen identically by Python's
# zipfile and by torch's own zip reader, and its JSON may hold only plain names, vetted
# operators and expressions built from a fixed vocabulary. What it does not know, it
# refuses. We still load with the public torch.export.load (not its private
# deserializer with hand-picked pieces): datafiles.read_model loads user archives the
# same way, the program JSON has to be vetted on either route, and the private API
# changes between torch versions.

_ZIP_WRITER_ENTRIES = (".data/version", ".data/serialization_id", "byteorder")
_ARCHIVE_CONSTANTS = (
    "ARCHIVE_FORMAT_PATH",
    "ARCHIVE_FORMAT_VALUE",
    "ARCHIVE_VERSION_PATH",
    "ARCHIVE_VERSION_VALUE",
    "MODELS_FILENAME_FORMAT",
    "WEIGHTS_CONFIG_FILENAME_FORMAT",
    "CONSTANTS_CONFIG_FILENAME_FORMAT",
    "SAMPLE_INPUTS_FILENAME_FORMAT",
    "WEIGHTS_DIR",
    "CONSTANTS_DIR",
    "WEIGHT_FILENAME_PREFIX",
    "TENSOR_CONSTANT_FILENAME_PREFIX",
    "EXTRA_DIR",
)
_PROGRAM = "model"  # torch.export.save's one program; torch.export.load returns only it
_NAME = re.compile(r"[A-Za-z0-9_.]*")  # names, FQNs, type names: nothing that leaves a name
_EXTRA_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_METADATA_TEXT = frozenset(
    {"stack_trace", "nn_module_stack", "source_fn_stack", "torch_fn", "custom", "from_node"}
)  # node metadata the loader stores, or looks up under torch (source_fn_stack), never runs
_OPERATOR = re.compile(r"torch\.ops\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)")
_OP_NAMESPACES = frozenset({"aten", "prims", "quantized", "quantized_decomposed", "torchvision"})
_FILE_ARGUMENTS = frozenset({"filename"})  # aten::from_file reads any file


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_HIGHER_ORDER = _words(
    "cond while_loop scan map_impl wrap_with_set_grad_enabled wrap_with_autocast "
    "auto_functionalized auto_functionalized_v2 with_effects invoke_subgraph"
)  # they run only their subgraphs and operators, which are vetted too
_SIMPLE_OPERATORS = {
    "operator": "eq ne le ge lt gt neg pos mul add sub floordiv mod pow truediv and_ or_ "
    "lshift rshift not_ abs getitem",
    "math": "trunc ceil floor",
    "torch": "sym_not sym_int sym_float sym_ite sym_max sym_min sym_sqrt sym_sum",
}  # symbolic-shape arithmetic; torch's verifier allows the same
_SYMPY_NAMES = _words(
    "Symbol Integer Rational Float Add Mul Pow Mod Max Min Abs floor ceiling sqrt Eq Ne Lt "
    "Le Gt Ge Equality Unequality StrictLessThan StrictGreaterThan LessThan GreaterThan "
    "And Or Not ITE Piecewise ExprCondPair oo zoo nan true false int_oo IntInfinity "
    "NegativeIntInfinity Infinity NegativeInfinity Zero One NegativeOne Half "
    "FloorDiv ModularIndexing Where PythonMod CleanDiv CeilToInt FloorToInt CeilDiv "
    "LShift RShift PowByNatural FloatPow FloatTrueDiv IntTrueDiv "
    "IsNonOverlappingAndDenseIndicator TruncToFloat TruncToInt RoundToInt RoundDecimal "
    "ToFloat Identity True False None integer positive negative nonnegative nonpositive "
    "real finite zero nonzero precision"
)  # sympy's srepr of shape expressions, torch's sympy functions, Symbol assumptions
_SYMBOL = re.compile(r"[a-z]{1,4}[0-9]+")  # s0, u3, zf1: torch's shape symbols
_SYMPY_STRING = re.compile(r"'(?:[A-Za-z_][A-Za-z0-9_]*|[0-9.eE+-]+)'")
_SYMPY_OPERATORS = _words("( ) , = + - * / % ** < > <= >= == != & | ~")
_GUARD_NAMES = _words(
    "L size stride storage_offset and or not if else True False inf max min abs round math "
    "floor ceil trunc log2 sin cos tan asin acos atan sinh cosh tanh torch sym_float _sym_sqrt"
)  # torch's ShapeGuardPythonPrinter: sizes of the inputs, arithmetic, math functions
_GUARD_STRING = re.compile(r"'[A-Za-z_][A-Za-z0-9_]*'")
_GUARD_OPERATORS = _words("( ) [ ] . , + - * / // % ** < > <= >= == !=")


class _Refused(Exception):
    """Why an archive is refused; check_safe turns it into UnsafeArtifactError."""


def check_safe(path: str | Path) -> None:
    """Refuse a .pt2 archive unless it holds exactly what torch.export.save writes for a
    plain program, so that torch.export.load can neither unpickle nor run code from it."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise UnsafeArtifactError(
            f"{path} is not a torch.export archive (.pt2 zip): {exc}. Re-create it with "
            "npf.torch.compile(..., device_type='cpu' or 'cuda')."
        ) from exc
    try:
        with archive:
            _vet_archive(path, archive)
    except _Refused as exc:
        raise UnsafeArtifactError(
            f"refusing to load {path}: {exc}. torch.export.load could run code from such a "
            "file (by unpickling or by executing what it holds). Re-export the model with "
            "npf.torch.compile or torch.export.save (plain tensors, no custom objects); load "
            "it yourself with torch.export.load only if you trust where the file came from."
        ) from None


def _archive_layout() -> Any:
    import torch

    constants: Any
    try:
        from torch.export.pt2_archive import constants
    except ImportError:
        constants = None
    missing = [n for n in _ARCHIVE_CONSTANTS if not isinstance(getattr(constants, n, None), str)]
    if missing:
        raise _Refused(
            f"torch {torch.__version__} does not define the pt2 archive layout neuronperf "
            f"checks against (torch.export.pt2_archive.constants: {', '.join(missing)}), so "
            "it cannot tell what its loader would read; use the torch version neuronperf "
            "supports (2.13)"
        )
    return constants


def _vet_archive(path: str | Path, archive: zipfile.ZipFile) -> None:
    layout = _archive_layout()
    entries = _vet_entries(archive, layout)
    reader = _torch_reader(path, entries)

    def read(name: str) -> bytes:
        return bytes(reader.get_record(name))

    if read(layout.ARCHIVE_FORMAT_PATH) != layout.ARCHIVE_FORMAT_VALUE.encode():
        raise _Refused("it is not in the pt2 archive format (older formats are read with pickle)")
    version = read(layout.ARCHIVE_VERSION_PATH)
    if version != layout.ARCHIVE_VERSION_VALUE.encode():
        raise _Refused(
            f"its pt2 archive version {version[:20]!r} is not the one neuronperf knows how "
            f"to check ({layout.ARCHIVE_VERSION_VALUE!r})"
        )
    referenced: set[str] = set()
    for config_name, directory, prefix in (
        (layout.WEIGHTS_CONFIG_FILENAME_FORMAT, layout.WEIGHTS_DIR, layout.WEIGHT_FILENAME_PREFIX),
        (
            layout.CONSTANTS_CONFIG_FILENAME_FORMAT,
            layout.CONSTANTS_DIR,
            layout.TENSOR_CONSTANT_FILENAME_PREFIX,
        ),
    ):
        name = config_name.format(_PROGRAM)
        referenced |= _vet_payload_config(read(name), name, directory, prefix, entries)
    unreferenced = sorted({n for n, kind in entries.items() if kind == "tensor"} - referenced)
    if unreferenced:
        raise _Refused(f"it holds {unreferenced[0]!r}, which no weights or constants config uses")
    _vet_sample_inputs(read(layout.SAMPLE_INPUTS_FILENAME_FORMAT.format(_PROGRAM)))
    _vet_program(read(layout.MODELS_FILENAME_FORMAT.format(_PROGRAM)))


def _vet_entries(archive: zipfile.ZipFile, layout: Any) -> dict[str, str]:
    """The archive's entries (relative to its folder) and what each one is."""
    infos = archive.infolist()
    if not infos:
        raise _Refused("it is an empty zip file")
    root = infos[0].filename.split("/", 1)[0]
    if not root or root in (".", "..") or not re.fullmatch(r"[^\x00-\x1f\\:]+", root):
        raise _Refused(f"its first entry {infos[0].filename!r} is not inside an archive folder")
    fixed = {
        layout.ARCHIVE_FORMAT_PATH: "format",
        layout.ARCHIVE_VERSION_PATH: "format",
        layout.MODELS_FILENAME_FORMAT.format(_PROGRAM): "program",
        layout.WEIGHTS_CONFIG_FILENAME_FORMAT.format(_PROGRAM): "config",
        layout.CONSTANTS_CONFIG_FILENAME_FORMAT.format(_PROGRAM): "config",
        layout.SAMPLE_INPUTS_FILENAME_FORMAT.format(_PROGRAM): "samples",
        **dict.fromkeys(_ZIP_WRITER_ENTRIES, "zip"),
    }
    tensors = re.compile(
        f"(?:{re.escape(layout.WEIGHTS_DIR + layout.WEIGHT_FILENAME_PREFIX)}"
        f"|{re.escape(layout.CONSTANTS_DIR + layout.TENSOR_CONSTANT_FILENAME_PREFIX)})[0-9]+"
    )
    entries: dict[str, str] = {}
    folded: dict[str, str] = {}
    for info in infos:
        full = info.filename
        if not full.startswith(root + "/"):
            raise _Refused(
                f"its entry {full!r} is outside the archive folder {root + '/'!r} (torch "
                "would then fall back to its legacy loader, which unpickles)"
            )
        name = full[len(root) + 1 :]
        if name in entries:
            raise _Refused(f"it holds {full!r} twice (zip readers may pick different copies)")
        if name.lower() in folded:
            raise _Refused(
                f"its entries {root + '/' + folded[name.lower()]!r} and {full!r} differ only in "
                "case (torch's zip reader matches names regardless of case)"
            )
        file_type = (info.external_attr >> 16) & 0o170000
        if info.is_dir() or file_type not in (0, 0o100000) or info.flag_bits & 0x1:
            raise _Refused(f"its entry {full!r} is not a plain file (a link, folder or encrypted)")
        if name in fixed:
            kind = fixed[name]
        elif tensors.fullmatch(name):
            kind = "tensor"
        elif name.startswith(layout.EXTRA_DIR) and _EXTRA_NAME.fullmatch(
            name[len(layout.EXTRA_DIR) :]
        ):
            kind = "extra"
        else:
            raise _Refused(f"it holds {full!r}, {_unexpected(name, layout)}")
        entries[name] = kind
        folded[name.lower()] = name
    if layout.ARCHIVE_FORMAT_PATH not in entries:
        raise _Refused("it is not in the pt2 archive format (older formats are read with pickle)")
    for name, kind in fixed.items():
        if kind != "zip" and name not in entries:
            raise _Refused(f"it has no {name!r} entry, which torch.export.save always writes")
    return entries


def _unexpected(name: str, layout: Any) -> str:
    """Why an entry torch.export.save does not write is refused."""
    legacy = {
        f"{layout.WEIGHTS_DIR}{_PROGRAM}.pt": "legacy weights, which torch unpickles",
        f"{layout.CONSTANTS_DIR}{_PROGRAM}.pt": "legacy constants, which torch unpickles",
    }
    if name in legacy:
        return legacy[name]
    if name.startswith(layout.MODELS_FILENAME_FORMAT.split("{}")[0]):
        return "another program file (torch's loader reads every entry in that folder)"
    objects = (
        getattr(layout, "CUSTOM_OBJ_FILENAME_PREFIX", "custom_obj_"),
        getattr(layout, "OPAQUE_OBJ_FILENAME_PREFIX", "opaque_obj_"),
    )
    if name.startswith(layout.CONSTANTS_DIR) and name[len(layout.CONSTANTS_DIR) :].startswith(
        objects
    ):
        return "a custom object, which torch unpickles"
    if name.startswith("data/aotinductor/"):
        return "AOTInductor code, a native library torch would load"
    return "which torch.export.save does not write for a plain program"


def _torch_reader(path: str | Path, entries: dict[str, str]) -> Any:
    """torch's own zip reader on the archive, checked to see what zipfile saw."""
    import torch

    reader_class = getattr(torch._C, "PyTorchFileReader", None)
    if reader_class is None:
        raise _Refused(f"torch {torch.__version__} has no PyTorchFileReader to check it with")
    try:
        reader = reader_class(str(path))
        records = sorted(reader.get_all_records())
    except Exception as exc:
        raise _Refused(f"torch's zip reader cannot read it ({exc})") from exc
    if records != sorted(entries):
        raise _Refused("torch's zip reader sees other entries in it than Python's zipfile")
    return reader


def _load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))  # as torch reads it
    except (ValueError, RecursionError) as exc:
        raise _Refused(f"its {what} is not valid JSON ({exc})") from exc


def _vet_payload_config(
    data: bytes, name: str, directory: str, prefix: str, entries: dict[str, str]
) -> set[str]:
    """The tensor files a weights or constants config refers to, all raw tensors."""
    config = _load_json(data, name)
    payloads = config.get("config") if isinstance(config, dict) else None
    if not isinstance(payloads, dict):
        raise _Refused(f"its {name!r} is not the config torch.export.save writes")
    files = set()
    for fqn, meta in payloads.items():
        _vet_name(fqn, name)
        if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
            raise _Refused(f"{fqn!r} is stored as a pickled Python object")
        path_name = meta.get("path_name")
        if not isinstance(path_name, str) or not re.fullmatch(
            re.escape(prefix) + "[0-9]+", path_name
        ):
            raise _Refused(
                f"{fqn!r} is stored as {path_name!r}, not as a raw tensor file "
                "(a custom object or other pickled Python object)"
            )
        if directory + path_name not in entries:
            raise _Refused(f"{fqn!r} refers to {directory + path_name!r}, which it lacks")
        if not isinstance(meta.get("tensor_meta"), dict):
            raise _Refused(f"{fqn!r} in {name!r} has no tensor metadata")
        files.add(directory + path_name)
    return files


def _vet_sample_inputs(data: bytes) -> None:
    """torch.export.load tries weights_only=True first and unpickles fully if that fails:
    the same bytes must load with weights_only=True here."""
    if not data:
        return
    import torch

    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:
        raise _Refused("its sample inputs hold objects that only full unpickling reads") from exc


def _vet_name(value: str, where: str) -> None:
    if not _NAME.fullmatch(value):
        raise _Refused(
            f"its {where} holds the name {value[:80]!r}; names may hold only letters, "
            "digits, '_' and '.' (the loader pastes them into Python code it runs)"
        )


def _vet_program(data: bytes) -> None:
    program = _load_json(data, "program (models/model.json)")
    if not isinstance(program, dict):
        raise _Refused("its program is not the JSON torch.export.save writes")
    try:
        _vet_json(program, "program", operators=_Operators())
    except RecursionError:
        raise _Refused("its program JSON is nested too deeply") from None


def _vet_json(value: Any, key: str, *, operators: _Operators) -> None:
    """Every string the deserializer may turn into code must be plain (see _vet_string)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if key == "range_constraints":  # keyed by shape expressions (2*s0)
                _vet_expression(
                    k, "shape expression", _SYMPY_NAMES, _SYMPY_STRING, _SYMPY_OPERATORS, _SYMBOL
                )
            else:
                _vet_name(k, f"program's {key!r}")
            if key == "metadata" and k in _METADATA_TEXT:
                if not isinstance(v, str):
                    raise _Refused(f"its node metadata {k!r} is not text")
                continue
            _vet_json(v, k, operators=operators)
    elif isinstance(value, list):
        for item in value:
            _vet_json(item, key, operators=operators)
    elif isinstance(value, str):
        _vet_string(value, key, operators)
    elif value is not None and not isinstance(value, (bool, int, float)):
        raise _Refused(f"its program holds an unexpected value under {key!r}")


def _vet_string(value: str, key: str, operators: _Operators) -> None:
    if key in ("as_string", "as_strings", "torch_version"):
        return  # data: the generated code quotes it (repr)
    if key == "target":
        operators.vet(value, node=True)
    elif key == "as_operator":
        operators.vet(value, node=False)
    elif key == "expr_str":
        _vet_expression(
            value, "shape expression", _SYMPY_NAMES, _SYMPY_STRING, _SYMPY_OPERATORS, _SYMBOL
        )
    elif key == "guards_code":
        _vet_expression(value, "input guard", _GUARD_NAMES, _GUARD_STRING, _GUARD_OPERATORS)
    elif key in ("in_spec", "out_spec"):
        _vet_treespec(value, key)
    else:
        _vet_name(value, f"program's {key!r}")


def _vet_treespec(text: str, key: str) -> None:
    """Input/output tree specs: their dict keys end up quoted in generated code."""

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                _vet_name(k, key)
                if k == "context" and isinstance(v, str):
                    try:
                        walk(json.loads(v))
                    except ValueError:
                        _vet_name(v, key)
                else:
                    walk(v)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            _vet_name(value, key)
        elif value is not None and not isinstance(value, (bool, int, float)):
            raise _Refused(f"its {key} holds an unexpected value")

    walk(_load_json(text.encode(), key))


def _vet_expression(
    text: str,
    what: str,
    names: frozenset[str],
    strings: re.Pattern[str],
    operators: frozenset[str],
    symbols: re.Pattern[str] | None = None,
) -> None:
    """A shape expression (parsed with sympy.sympify, that is eval) or an input guard
    (exec'd by ExportedProgram.module()) may use only a fixed vocabulary: no other
    names, no attribute access beyond it, no other string literals."""
    import tokenize

    refused = _Refused(
        f"its program holds the {what} {text[:80]!r}, which is not built only from "
        "numbers, shape symbols and the operators torch writes (it would be evaluated "
        "as Python)"
    )
    if len(text) > 10_000 or not re.fullmatch(r"[ -~]*", text):
        raise refused
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        raise refused from None
    for token in tokens:
        if token.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        if token.type == tokenize.NAME:
            ok = token.string in names or bool(symbols and symbols.fullmatch(token.string))
        elif token.type == tokenize.NUMBER:
            ok = True
        elif token.type == tokenize.STRING:
            ok = bool(strings.fullmatch(token.string))
        elif token.type == tokenize.OP:
            ok = token.string in operators
        else:
            ok = False
        if not ok:
            raise refused


class _Operators:
    """Which node targets and operator arguments a program may name: registered ATen
    (and a few other namespaces') operators with kernels and no file arguments, a few
    higher-order operators, and the symbolic-shape arithmetic torch.export emits. Each
    is resolved exactly as torch's deserializer resolves it."""

    def __init__(self) -> None:
        import math
        import operator

        import torch

        modules = {"operator": operator, "math": math, "torch": torch}
        simple = [
            getattr(modules[module], name)
            for module, names in _SIMPLE_OPERATORS.items()
            for name in names.split()
            if hasattr(modules[module], name)
        ]
        self.simple = {f"{f.__module__}.{f.__name__}": f for f in simple}
        self.cache: dict[tuple[str, bool], bool] = {}

    def vet(self, target: str, *, node: bool) -> None:
        key = (target, node)
        if key not in self.cache:
            self.cache[key] = self._allowed(target, node)
        if not self.cache[key]:
            raise _Refused(
                f"its program calls {target[:100]!r}, which is not an operator neuronperf "
                "vets (registered ATen-style operators, control flow, shape arithmetic)"
            )

    def _allowed(self, target: str, node: bool) -> bool:
        import torch

        if target in self.simple:
            return _resolve(target) is self.simple[target]
        higher_order = re.fullmatch(r"torch\.ops\.higher_order\.([A-Za-z0-9_]+)", target)
        if higher_order is not None:
            name = higher_order.group(1)
            op = _resolve(target) if node and name in _HIGHER_ORDER else None
            return isinstance(op, torch._ops.HigherOrderOperator) and op._name == name
        match = _OPERATOR.fullmatch(target)
        if match is None or match.group(1) not in _OP_NAMESPACES:
            return False
        op = _resolve(target)
        if not isinstance(op, torch._ops.OpOverload):
            return False
        has_kernel = getattr(torch._C, "_dispatch_has_kernel", None)
        if has_kernel is None or not has_kernel(op._name):
            return False  # TorchScript-only builtins (aten::save) are not dispatcher operators
        return not any(arg.name in _FILE_ARGUMENTS for arg in op._schema.arguments)


def _resolve(target: str) -> Any:
    """What torch's ExportedProgramDeserializer.deserialize_operator makes of ``target``
    (called only on strings already matched against the forms above)."""
    import math
    import operator

    import torch

    module: Any
    if target.startswith("_operator"):
        module = operator
    elif target.startswith("torch"):
        module = torch
    elif target.startswith("math"):
        module = math
    else:
        return None
    for name in target.split(".")[1:]:
        if not hasattr(module, name):
            return None
        module = getattr(module, name)
    return module


def lean_callable(program: Any) -> Callable[..., Any] | None:
    """Call the program's graph directly with its weights; None if it needs ``module()``."""
    import torch
    from torch.export.graph_signature import InputKind, OutputKind
    from torch.utils._pytree import tree_structure, tree_unflatten

    signature = program.graph_signature
    state: list[Any] = []
    n_user = 0
    for spec in signature.input_specs:
        if spec.kind == InputKind.USER_INPUT:
            n_user += 1
            continue
        if n_user or spec.kind not in (
            InputKind.PARAMETER,
            InputKind.BUFFER,
            InputKind.CONSTANT_TENSOR,
        ):
            return None  # state after user inputs, tokens or custom objects
        value = program.state_dict.get(spec.target)
        if value is None:
            value = program.constants.get(spec.target)  # non-persistent buffers, constants
        if not isinstance(value, torch.Tensor):
            return None
        state.append(value)
    if any(spec.kind != OutputKind.USER_OUTPUT for spec in signature.output_specs):
        return None  # buffer or input mutations: module() applies them
    if program.call_spec.in_spec != tree_structure(((0,) * n_user, {})):
        return None  # nested or keyword inputs
    graph = program.graph_module
    out_spec = program.call_spec.out_spec
    state_tuple = tuple(state)

    if out_spec.is_leaf():

        def run_one(*args: Any) -> Any:
            return graph(*state_tuple, *args)[0]

        return run_one

    def run(*args: Any) -> Any:
        return tree_unflatten(list(graph(*state_tuple, *args)), out_spec)

    return run


def load(path: str | Path, device: str) -> Callable[..., Any]:
    """A callable running the model file at ``path`` on ``device``: a .pt2 program (checked
    safe first), or a TorchScript archive (``load_torchscript``)."""
    import torch

    if is_torchscript(path):  # never torch.export.load: check_safe vets what reaches it
        module: Callable[..., Any] = load_torchscript(path, device)
        return module
    check_safe(path)
    program = torch.export.load(str(path))
    if program.graph_signature.input_specs and device != _program_device(program):
        from torch.export.passes import move_to_device_pass

        program = move_to_device_pass(program, device)
        # The pass rewrites the graph's nodes (factory ops' device= included) but not the
        # Python code graph_module runs, which lean_callable calls: without this, arange,
        # zeros, full (position ids) would still create their tensors on the old device
        # (pytorch/pytorch#185105). Subgraphs (cond, map) are modules of their own.
        for module in program.graph_module.modules():
            if isinstance(module, torch.fx.GraphModule):
                module.recompile()
    run = lean_callable(program)
    return run if run is not None else program.module()


def _program_device(program: Any) -> str:
    for value in program.state_dict.values():
        return str(value.device)
    return "cpu"


# -- TorchScript archives (torch.jit.save) on CPU and CUDA ----------------------------
#
# What torch-neuronx saves and NeuronPerf 1.x scripts pass by path
# (torch.jit.trace(model, x).save("model_b1.pt")). compile writes .pt2 for CPU and CUDA;
# benchmark and evaluate also run TorchScript files there.
#
# What torch.jit.load reads and runs (torch/jit/_serialization.py load ->
# torch._C.import_ir_module -> torch/csrc/jit/serialization/import.cpp; torch 2.13):
# - No Python pickle, no Python code. The file format is picked from its first bytes (zip,
#   or the mobile flatbuffer format). A zip's data.pkl and constants.pkl are read by the
#   C++ Unpickler (torch/csrc/jit/serialization/unpickler.cpp, readGlobal): its globals
#   are tensor rebuilders (torch._utils._rebuild_tensor_v2, ...), torch.jit._pickle's list
#   builders, torch.device, builtins.complex and collections.OrderedDict; any other
#   global must be, through ScriptModuleDeserializer's type_resolver, a TorchScript class
#   compiled from the archive's own code/ folder (SourceImporter) or a C++ custom class
#   registered in this process, else loading fails. TorchScript name resolution in that
#   code never reaches Python (SourceImporterImpl knows torch, ops, CONSTANTS, fork,
#   annotate, ... only).
# - TorchScript code from the file does run: a class's __setstate__ while data.pkl is read
#   (import.cpp, obj_loader), forward at every call. It may call any operator registered
#   in the process, and some touch files: aten::save writes a pickle to any path,
#   aten::from_file maps any file. A __setstate__ calling torch.save(text, path) writes
#   that file during torch.jit.load (tests/test_torchscript.py shows it on torch 2.13);
#   torch's docstring for torch.jit.load says "Only load data you trust".
# - So check_torchscript refuses an archive torch.jit.load would read another way (not a
#   zip; the legacy model.json format) and one whose code names an operator that takes a
#   file name (found in the schemas registered now: aten::save, aten::from_file, and
#   torchvision's image::read_file and write_file once torchvision is imported). That is
#   a denylist, not the .pt2 allowlist: an operator or custom class with other side
#   effects (an extension's, loaded in this process) is not caught, and torch's C++
#   parsers (zip reader, unpickler, TorchScript compiler) read the file's bytes. Run
#   TorchScript files you trust, as for Neuron (neuron.load calls torch.jit.load unchecked:
#   torch-neuronx's own operators are not known here).
# - Extra files: torch.jit.load copies only the extra/ entries named in _extra_files into
#   a dict of bytes (import.cpp, deserialize); none is named here. _restore_shapes stays
#   False, so traced_inputs.pkl is not read.

_ZIP_MAGIC = b"PK\x03\x04"
_FILE_ARGUMENT = re.compile(r"file|path|dir", re.IGNORECASE)


def _torchscript_names(names: list[str]) -> tuple[str, list[str]] | None:
    """The archive folder and the code files of a torch.jit.save listing, or None: a
    TorchScript archive holds code/ and constants.pkl, torch.save's hold neither. Every
    entry under code/ but debug info counts as code: torch's zip reader (miniz) matches
    names regardless of case, so code/x.PY may be what it compiles for code/x.py."""
    if not names:
        return None
    root = names[0].split("/", 1)[0]
    folder = f"{root}/code/".lower()
    code = [
        n
        for n in names
        if n.lower().startswith(folder) and not n.lower().endswith((".debug_pkl", "/"))
    ]
    if not code or f"{root}/constants.pkl" not in names:
        return None
    return root, code


def is_torchscript(path: str | Path) -> bool:
    """Whether ``path`` is a TorchScript archive (torch.jit.save); reads the zip listing
    only, never raises."""
    try:
        with zipfile.ZipFile(path) as archive:
            return _torchscript_names(archive.namelist()) is not None
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def torchscript_code(path: str | Path) -> dict[str, str]:
    """The TorchScript source files of the archive at ``path`` (name -> text), as
    torch.jit.save writes them under code/; empty when it is not a TorchScript archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            found = _torchscript_names(archive.namelist())
            if found is None:
                return {}
            return {name: archive.read(name).decode("utf-8", errors="replace") for name in found[1]}
    except (OSError, zipfile.BadZipFile, ValueError):
        return {}


def _file_operators() -> frozenset[str]:
    """Names of the operators and custom-class methods registered in this process that take
    a file name (a str argument called file, path, dir, ...)."""
    import torch

    schemas = list(torch._C._jit_get_all_schemas())
    custom = getattr(torch._C, "_jit_get_custom_class_schemas", None)
    if custom is not None:
        schemas += list(custom())
    names = set()
    for schema in schemas:
        for argument in schema.arguments:
            if "str" in str(argument.type) and _FILE_ARGUMENT.search(argument.name):
                names.add(schema.name.split("::")[-1].split(".")[-1])
                break
    return frozenset(names)


def check_torchscript(path: str | Path) -> dict[str, str]:
    """Refuse a TorchScript archive that torch.jit.load would read another way, or whose
    code names an operator that takes a file name (see the notes above); return its code
    files (name -> text). A denylist: load only TorchScript files you trust."""
    try:
        _vet_torchscript(path)
        code = torchscript_code(path)
        _vet_torchscript_code(code, _file_operators())
    except _Refused as exc:
        raise UnsafeArtifactError(
            f"refusing to load {path}: {exc}. torch.jit.load runs the TorchScript code a file "
            "holds (its __setstate__ while loading, forward at every call), which may call "
            "any operator registered in this process. Re-create it with torch.jit.trace, or "
            "compile the model with npf.torch.compile(..., device_type='cpu' or 'cuda')."
        ) from None
    return code


def _vet_torchscript(path: str | Path) -> None:
    try:
        with open(path, "rb") as f:
            magic = f.read(len(_ZIP_MAGIC))
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise _Refused(f"it is not a TorchScript archive (a zip file): {exc}") from exc
    if magic != _ZIP_MAGIC:
        raise _Refused("it does not start as a zip file (torch.jit.load reads it another way)")
    with archive:
        infos = archive.infolist()
        found = _torchscript_names([info.filename for info in infos])
        if found is None:
            raise _Refused("it is not a TorchScript archive (no code/ or constants.pkl)")
        root = found[0]
        entries: dict[str, str] = {}
        folded: set[str] = set()
        for info in infos:
            if not info.filename.startswith(root + "/"):
                raise _Refused(f"its entry {info.filename!r} is outside the archive folder")
            file_type = (info.external_attr >> 16) & 0o170000
            if info.is_dir() or file_type not in (0, 0o100000) or info.flag_bits & 0x1:
                raise _Refused(f"its entry {info.filename!r} is not a plain file")
            name = info.filename[len(root) + 1 :]
            if name.lower() in folded:
                raise _Refused(
                    f"it holds {info.filename!r} twice, or two entries that differ only in "
                    "case (torch's zip reader matches names regardless of case)"
                )
            entries[name] = "entry"
            folded.add(name.lower())
    if "model.json" in folded:
        raise _Refused("it is in the legacy TorchScript format (model.json)")
    if "data.pkl" not in entries:
        raise _Refused("it has no data.pkl, which torch.jit.save always writes")
    _torch_reader(path, entries)  # torch's zip reader sees what zipfile saw


def _vet_torchscript_code(code: dict[str, str], file_operators: frozenset[str]) -> None:
    """No name in the code, and no string literal (getattr(torch, "save")), may be one of
    ``file_operators``."""
    import tokenize

    for name, text in code.items():
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        except (tokenize.TokenError, SyntaxError, IndentationError) as exc:
            raise _Refused(f"its code {name!r} is not TorchScript source ({exc})") from None
        for token in tokens:
            word = token.string
            if token.type == tokenize.STRING:
                try:
                    word = str(ast.literal_eval(word))
                except (ValueError, SyntaxError):
                    continue
            elif token.type != tokenize.NAME:
                continue
            if word in file_operators:
                raise _Refused(
                    f"its code {name!r} (line {token.start[0]}) names {word!r}, an operator "
                    "that reads or writes files"
                )


def load_torchscript(path: str | Path, device: str) -> Any:
    """The TorchScript model at ``path`` on ``device`` (cpu, cuda:N), checked first
    (``check_torchscript``); one that calls Neuron operators is refused with what it needs."""
    import torch

    from neuronperf_torch import neuron

    code = torchscript_code(path)
    neuron.refuse_off_neuron(path, neuron.neuron_operators(code), device)
    check_torchscript(path)
    try:
        with jit_deprecation_silenced():
            module = torch.jit.load(str(path), map_location=device)  # type: ignore[no-untyped-call]
    except RuntimeError as exc:
        text = str(exc).strip()
        unknown = re.search(r"Unknown builtin op: ([A-Za-z0-9_]+::[A-Za-z0-9_.]+)", text)
        if unknown is not None:
            raise TorchArgumentError(
                f"cannot load {path}: it calls the operator {unknown.group(1)}, which no "
                "library loaded in this process registers. Import the package that defines "
                "it before benchmarking (it runs where that package and its device are)."
            ) from exc
        first = text.splitlines()[0] if text else type(exc).__name__
        raise TorchArgumentError(
            f"cannot load {path} as TorchScript: torch.jit.load failed ({first}). Is it a "
            "file torch.jit.save wrote, undamaged, with a torch version that reads it?"
        ) from exc
    return module.eval()
