"""What each core ``neuronperf`` command does, once click has parsed its arguments.

Each function returns the exit status; tables and paths go to stdout, progress and
warnings to stderr. ``compile``, ``benchmark`` and ``evaluate`` call
``neuronperf_core.api`` with the backend that owns the model. Heavy modules (numpy, the
engine, reporting) are imported inside the functions, so ``neuronperf --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuronperf_core.cli import sources
from neuronperf_core.cli.messages import as_flags
from neuronperf_core.cli.sources import UsageError
from neuronperf_core.files import RESULTS_KEYS

if TYPE_CHECKING:
    from neuronperf_core.backend import Backend

FAILED = 1


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, allow_nan=False))


def print_files(files: Mapping[str, Any]) -> None:
    for kind, path in files.items():
        print(f"{kind}: {path}")


def all_finished(reports: Sequence[Mapping[str, Any]]) -> bool:
    return bool(reports) and all(r.get("status") == "finished" for r in reports)


def _default(options_type: type[Any], name: str) -> Any:
    """A keyword's declared default (``neuronperf_core.options``)."""
    return next(f.default for f in dataclasses.fields(options_type) if f.name == name)


def _folder(text: Any, what: str) -> Path:
    """An output folder (created by whatever writes into it first); a clear error when a
    file is in the way."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path} is a file, not a folder")
    return path


@contextlib.contextmanager
def _created(folder: Path, what: str) -> Iterator[None]:
    """``folder`` created for the block, and removed again if the block fails and leaves
    it empty: a refused run leaves nothing behind."""
    existed = folder.is_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {what} {folder}: {exc.strerror}") from exc
    try:
        yield
    except BaseException:
        if not existed and not any(folder.iterdir()):
            folder.rmdir()
        raise


# -- inputs ---------------------------------------------------------------------------------


def _inputs(
    shapes: Sequence[tuple[int, ...]],
    dtypes: Sequence[str],
    inputs_file: str | None,
    backend: Backend,
    batch_sizes: list[int] | None,
    recorded: Callable[[], list[Any] | None] | None = None,
) -> list[Any]:
    """One model input per batch size, from --input-shape/--dtype or --inputs; else, for a
    model that was compiled, ``recorded()``: random inputs of the shapes and dtypes recorded
    for it (None: it records none)."""
    if inputs_file and shapes:
        raise UsageError("give either --inputs FILE or --input-shape, not both")
    if dtypes and not shapes:
        raise UsageError("--dtype applies to --input-shape: give the shapes too")
    if inputs_file:
        path = sources.existing_path(inputs_file, "--inputs file")
        return sources.sliced_inputs(sources.read_arrays(path, backend), batch_sizes, path)
    if shapes:
        return sources.random_inputs(shapes, dtypes or ["float32"], batch_sizes)
    found = recorded() if recorded is not None else None
    if found is None:
        records = " (it records no input shapes)" if recorded is not None else ""
        raise UsageError(
            f"the model needs inputs{records}: give --input-shape 1x3x224x224 (random values "
            "of that shape, batch first; add --dtype) or --inputs FILE (.npz arrays, batch first)"
        )
    return found


def _recorded_inputs(
    path: Path, backend: Backend, sizes: list[int] | None, options: Mapping[str, Any]
) -> list[Any] | None:
    """Random inputs of the shapes and dtypes the index records for the configs the options
    select (or that one model file records), one per batch size in ``sizes``; None when a
    config records no shapes."""
    from neuronperf_core import model_index

    if path.suffix == ".json":
        configs = model_index.filter(
            model_index.load(path),
            status="finished",
            batch_size=sizes,
            pipeline_size=options.get("pipeline_sizes"),
            cast_mode=options.get("cast_modes"),
        )["model_configs"]
    else:
        meta = backend.model_meta(path)
        configs = [dict(meta)] if meta else []
    by_size: dict[int | None, set[str]] = {}
    for config in configs:
        shapes = config.get("input_shapes")
        if not shapes or any(not isinstance(s, list) for s in shapes):
            return None
        dtypes = config.get("input_dtypes") or ["float32"] * len(shapes)
        for dtype in dtypes:
            if dtype not in sources.DTYPES:
                raise UsageError(
                    f"{path} records the input dtype {dtype}, which random inputs cannot have: "
                    "give --inputs FILE with arrays of it"
                )
        by_size.setdefault(config.get("batch_size"), set()).add(json.dumps([shapes, dtypes]))
    if not by_size:
        return None
    inputs = []
    for size, kinds in by_size.items():
        if len(kinds) > 1:
            raise UsageError(
                f"the configs of batch size {size} in {path} take different inputs "
                f"({'; '.join(sorted(kinds))}): give --input-shape or --inputs FILE"
            )
        shapes, dtypes = json.loads(kinds.pop())
        inputs.append(sources.random_inputs([tuple(s) for s in shapes], dtypes, None)[0])
    if sizes is not None:  # in the order of the batch sizes to run
        order = list(by_size)
        inputs = [inputs[order.index(size)] for size in sizes]
    return inputs


def _model_path(text: str, chosen: str | None) -> tuple[Path, Backend, str]:
    """An index or model file, the backend that runs it, and the model's name."""
    from neuronperf_core import model_index
    from neuronperf_core.benchmarking.plan import missing_files

    path = sources.existing_path(text, "INDEX_OR_MODEL")
    name = path.stem
    if path.suffix == ".json":
        index = model_index.resolve(path)  # a malformed index fails here, clearly
        name = index["model_name"]
        finished = model_index.filter(index, status="finished")["model_configs"]
        missing = missing_files(finished)  # else no backend would own the index
        if finished and len(missing) == len(finished):
            raise UsageError(
                f"{path} lists model files that do not exist ({', '.join(missing[:3])}"
                f"{', ...' if len(missing) > 3 else ''}): were they moved or deleted? Compile "
                "the model again, or move the index together with its models"
            )
    return path, sources.backend_for(str(path), str(path), chosen), name


def _batch_sizes(path: Path, options: Mapping[str, Any]) -> list[int] | None:
    """The batch sizes to run, in order: those of the index's finished configs that the
    options select; for one model file, --batch-sizes (None: the file knows its own)."""
    from neuronperf_core import model_index

    chosen = options.get("batch_sizes")
    if path.suffix != ".json":
        return chosen
    index = model_index.load(path)
    finished = model_index.filter(index, status="finished")["model_configs"]
    if not finished:
        raise UsageError(f"{path} holds no finished configs: compile the model again")
    compiled = list(dict.fromkeys(c["batch_size"] for c in finished))
    missing = sorted(set(chosen or []) - set(compiled))
    if missing:
        raise UsageError(
            f"--batch-sizes {','.join(map(str, missing))} not in {path}, which has "
            f"{','.join(map(str, compiled))}"
        )
    selected = model_index.filter(
        index,
        status="finished",
        batch_size=chosen,
        pipeline_size=options.get("pipeline_sizes"),
        cast_mode=options.get("cast_modes"),
    )["model_configs"]
    if not selected:
        held = ", ".join(
            f"(batch {c['batch_size']}, pipeline {c['pipeline_size']}, cast {c['cast_mode']})"
            for c in finished
        )
        raise UsageError(
            f"no finished config of {path} matches the --batch-sizes, --pipeline-sizes and "
            f"--cast-modes given; it holds {held}"
        )
    return list(dict.fromkeys(c["batch_size"] for c in selected))


@contextlib.contextmanager
def _results_file(options: dict[str, Any], name: str) -> Iterator[Path]:
    """The results JSON this run writes (checked; --output-dir created for the block, and
    removed again if the run fails before writing), taken out of ``options``."""
    from neuronperf_core import files
    from neuronperf_core.options import BenchmarkOptions

    results_file = options.pop("results_file", None)
    results_dir = options.pop("results_dir", _default(BenchmarkOptions, "results_dir"))
    if results_file is not None:
        results, csv = Path(results_file), Path(results_file).with_suffix(".csv")
        if results.suffix == ".csv" or (csv.exists() and not files.is_results(csv)):
            raise UsageError(
                f"--results-file {results}: the CSV goes beside it as {csv}, which "
                + ("would replace it" if results.suffix == ".csv" else "is not a results CSV")
                + "; name another .json file"
            )
    if not options.get("model_name"):
        try:
            files.safe_name(name, "model_name")
        except files.OutputPathError:
            raise UsageError(
                f"the model index names its model {name!r}, which cannot be part of a "
                "results file's name (it holds a path separator): give --name NAME"
            ) from None
    folder = _folder(results_dir, "--output-dir") if results_file is None else None
    with _created(folder, "--output-dir") if folder is not None else contextlib.nullcontext():
        path = files.results_path(results_dir, results_file, options.get("model_name") or name)
        assert path is not None  # a folder or a file was given
        try:
            yield path
        finally:
            files.release(path)  # the file results_path created, if no report replaced it


# -- commands -------------------------------------------------------------------------------


def compile_(
    model: str,
    options: dict[str, Any],
    *,
    shapes: Sequence[tuple[int, ...]],
    dtypes: Sequence[str],
    inputs_file: str | None,
    backend_name: str | None,
    as_json: bool,
) -> int:
    from neuronperf_core import api, files, model_index
    from neuronperf_core.options import CompileOptions

    target: Any
    if sources.is_object_spec(model):
        target = sources.load_object(model, "MODEL")
        name = model.rpartition(":")[2]
        backend = sources.backend_for(target, model, backend_name)
    else:
        path = sources.existing_path(model, "MODEL")
        name = path.stem
        backend = sources.backend_reading(path, backend_name)
        target = None
    name = files.safe_name(options.pop("model_name", None) or name, "model_name")  # --name
    inputs = _inputs(shapes, dtypes, inputs_file, backend, options.get("batch_sizes"))
    # not created here: api.compile creates it once its checks pass (none left empty)
    out = _folder(options.pop("models_dir", _default(CompileOptions, "models_dir")), "--out")
    index_file = out / f"{name}.json"
    if index_file.exists():  # never overwrite what an earlier compile wrote
        raise UsageError(f"{index_file} exists: choose another --name or --out, or remove it")
    if target is None:
        target = backend.read_model(path)
    written = api.compile(
        backend,
        target,
        inputs,
        models_dir=out,
        model_name=name,
        filename=index_file,
        **options,
    )
    index = model_index.load(written)
    configs = index["model_configs"]
    if as_json:
        print_json({"index": str(Path(written).resolve()), "model_index": index})
    else:
        from neuronperf_core.tables import Column, print_table

        rows = [
            [
                str(c["batch_size"]),
                str(c["pipeline_size"]),
                "" if c["cast_mode"] is None else str(c["cast_mode"]),
                c["status"],
                "" if c["compile_s"] is None else f"{c['compile_s']:.2f}",
                Path(c["filename"]).name if c["filename"] else c.get("error") or "",
            ]
            for c in configs
        ]
        numbers = ["batch_size", "pipeline_size"]
        columns = [Column(h, h in numbers) for h in [*numbers, "cast_mode", "status"]]
        columns += [Column("compile_s", numeric=True), Column("file or error")]
        print_table(columns, rows)
        print(f"\nmodel index: {written}")
    return 0 if all(c["status"] == "finished" for c in configs) else FAILED


def benchmark(
    model: str,
    options: dict[str, Any],
    *,
    shapes: Sequence[tuple[int, ...]],
    dtypes: Sequence[str],
    inputs_file: str | None,
    backend_name: str | None,
    as_json: bool,
) -> int:
    from neuronperf_core import api
    from neuronperf_core.reporting import SUMMARY_COLS

    path, backend, name = _model_path(model, backend_name)
    sizes = _batch_sizes(path, options)
    recorded = functools.partial(_recorded_inputs, path, backend, sizes, options)
    inputs = _inputs(shapes, dtypes, inputs_file, backend, sizes, recorded)
    options["batch_sizes"] = sizes
    if "latency_bound_ms" in options:  # --slo-ms alone marks within_bound; --find-peak searches
        options.setdefault("find_peak", False)
    with _results_file(options, name) as results:
        reports = api.benchmark(backend, str(path), inputs, results_file=results, **options)
    return _finish(reports, results, list(SUMMARY_COLS), "throughput_peak", as_json)


def evaluate(
    model: str,
    options: dict[str, Any],
    *,
    dataset: str,
    backend_name: str | None,
    as_json: bool,
) -> int:
    from neuronperf_core import api

    path, backend, name = _model_path(model, backend_name)
    _batch_sizes(path, options)  # what the options select exists, before the dataset loads
    data: Any
    if sources.is_object_spec(dataset):
        data = sources.load_object(dataset, "--dataset")
    else:
        data_path = sources.existing_path(dataset, "--dataset file")
        data = backend.dataset_from_arrays(sources.read_arrays(data_path, backend))
    metrics = options.pop("eval_metrics", None)
    given = {"metrics": metrics} if metrics else {}  # else the API's default metric
    with _results_file(options, name) as results:
        reports = api.evaluate(backend, str(path), data, results_file=results, **given, **options)
    names = metrics or [inspect.signature(api.evaluate).parameters["metrics"].default]
    cols = ["batch_size", *names, "total_infs", "model_filename"]
    return _finish(reports, results, cols, None, as_json)


def _finish(
    reports: list[dict[str, Any]],
    results: Path,
    cols: list[str],
    sort_by: str | None,
    as_json: bool,
) -> int:
    """Write the CSV beside the JSON the engine kept up to date; show the reports."""
    from neuronperf_core.reporting import print_reports, write_csv

    files = {}
    if reports:
        files = {
            "json": str(results.resolve()),
            "csv": str(Path(write_csv(reports, results.with_suffix(".csv"))).resolve()),
        }
    if as_json:
        print_json({"reports": reports, "files": files})
    elif not reports:
        print("no config finished")
    else:
        failed = not all_finished(reports)
        if failed:  # a failed config has no metric fields: show what it has, and its error
            present = {key for report in reports for key in report}
            cols = [c for c in cols if c in present] + ["status"]
        print_reports(reports, cols=cols, sort_by=sort_by)  # a peak search: its step table
        print()
        print_files(files)
    for error in dict.fromkeys(str(r["error"]) for r in reports if r.get("error")):
        print(f"config failed: {as_flags(error)}", file=sys.stderr)
    return 0 if all_finished(reports) else FAILED  # the engine logged each failure


def _read_reports(text: str) -> list[dict[str, Any]]:
    path = sources.existing_path(text, "results file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {path} as JSON: {exc}") from exc
    if isinstance(data, dict) and "model_configs" in data:
        raise UsageError(f"{path} is a model index; benchmark it first, then report the results")
    if (
        not isinstance(data, list)
        or not data
        or not all(isinstance(r, dict) and r.keys() >= RESULTS_KEYS for r in data)
    ):
        raise UsageError(
            f"{path} is not a results file: expected a JSON list of reports, each with "
            f"{', '.join(sorted(RESULTS_KEYS))} (what benchmark and evaluate write)"
        )
    return data


def report(
    results: Sequence[str],
    *,
    sort_by: str | None,
    cols: list[str] | None,
    plot: str | None,
    noise: float,
    fail_if_slower: float | None,
    as_json: bool,
    gate: list[str] | None = None,
) -> int:
    if len(results) > 2:
        raise UsageError(f"give one results file, or two to compare; got {len(results)}")
    runs = [_read_reports(text) for text in results]
    if len(runs) == 1:
        if fail_if_slower is not None or gate is not None:
            raise UsageError("--fail-if-slower and --gate compare two runs: give OLD.json NEW.json")
        reports = runs[0]
        if as_json:
            print_json(reports)
        else:
            from neuronperf_core.reporting import SUMMARY_COLS, print_reports

            print_reports(reports, cols=cols or SUMMARY_COLS, sort_by=sort_by or "throughput_peak")
        if plot:
            from neuronperf_core.plots import plot_reports

            written = plot_reports(reports, plot, title=Path(results[0]).name)
            print(f"plot: {Path(written).resolve()}", file=sys.stderr if as_json else sys.stdout)
        return 0
    if plot or cols or sort_by:
        raise UsageError("--plot, --cols and --sort-by apply to one results file, not a comparison")
    from neuronperf_core.compare import DEFAULT_GATE, compare_reports, format_comparison
    from neuronperf_core.tables import terminal_width

    comparison = compare_reports(runs[0], runs[1], noise_pct=noise)
    # without --fail-if-slower the JSON's pass/fail uses the noise band (the exit status
    # ignores it)
    verdict = comparison.gate(
        noise if fail_if_slower is None else fail_if_slower, gate or DEFAULT_GATE
    )
    if as_json:
        print_json({**comparison.to_dict(), "gate": verdict.to_dict()})
    else:
        print(format_comparison(comparison, width=terminal_width(sys.stdout)), end="")
    if fail_if_slower is None:
        return 0
    for message in verdict.messages():
        print(f"slower: {message}", file=sys.stderr)
    return 0 if verdict.passed else FAILED


def plugins(*, as_json: bool) -> int:
    from neuronperf_core.plugins import get_host

    found = [p.to_dict() for p in get_host().plugins]
    if as_json:
        print_json(found)
        return 0
    from neuronperf_core.tables import Column, print_table

    rows = []
    for p in found:  # the hooks each plugin implements are in --json; here what they added
        registered = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["registered"].items())
        status = p["status"] if p["error"] is None else f"{p['status']}: {p['error']}"
        rows.append(
            [
                p["name"],
                f"{p['distribution'] or '?'} {p['version'] or '?'}",
                status,
                registered or "-",
            ]
        )
    headers = ["plugin", "distribution", "status", "registered"]
    print_table([Column(h) for h in headers], rows)
    return 0


def metrics(*, as_json: bool) -> int:
    from neuronperf_core.metrics.registry import list_metrics, metric_table

    if as_json:
        print_json(metric_table())
    else:
        list_metrics()
    return 0
