"""What each ``neuronperf`` command does. Each takes the parsed arguments and returns the exit
status; reports and tables go to stdout, progress and warnings to stderr."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from neuronperf_core import model_index
from neuronperf_core.cli import sources
from neuronperf_core.cli.sources import Framework, UsageError
from neuronperf_core.reporting import SUMMARY_COLS, print_reports, write_csv

FAILED = 1
REPORT_KEYS = {"batch_size", "n_models", "workers_per_model", "status"}  # in every report


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, allow_nan=False))


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _all_finished(reports: list[dict[str, Any]]) -> bool:
    return bool(reports) and all(r.get("status") == "finished" for r in reports)


def _folder(text: str, what: str) -> Path:
    """An output folder, created if missing; a clear error when it cannot be."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {what} {path}: {exc.strerror}") from exc
    return path


# -- inputs ---------------------------------------------------------------------------------


def _inputs(args: argparse.Namespace, fw: Framework, batch_sizes: list[int] | None) -> list[Any]:
    """One model input per batch size, from --input-shape/--dtype or --inputs."""
    if args.inputs and args.input_shape:
        raise UsageError("give either --inputs FILE or --input-shape, not both")
    if args.inputs:
        if args.dtype:
            raise UsageError("--dtype applies to --input-shape; a --inputs file has its dtypes")
        path = sources.existing_path(args.inputs, "--inputs file")
        return sources.sliced_inputs(sources.read_arrays(path, fw), batch_sizes, path)
    if not args.input_shape:
        raise UsageError(
            "the model needs inputs: give --input-shape 1x3x224x224 (random values of that "
            "shape, batch first; add --dtype) or --inputs FILE (.npz arrays, batch first)"
        )
    return sources.random_inputs(args.input_shape, args.dtype or ["float32"], batch_sizes)


def _model_path(text: str, fw_name: str | None) -> tuple[Path, Framework, str]:
    """An index or model file, the framework that loads it, and the model's name."""
    path = sources.existing_path(text, "INDEX_OR_MODEL")
    name = path.stem
    if path.suffix == ".json":
        name = model_index.load(path)["model_name"]  # a malformed index fails here, clearly
    fw = sources.framework_for(str(path), str(path), fw_name)
    return path, fw, name


def _index_batch_sizes(path: Path, chosen: list[int] | None) -> list[int] | None:
    """The batch sizes to run: the index's finished ones (those chosen), or None for one
    model file without --batch-sizes (the framework knows its batch size)."""
    if path.suffix != ".json":
        return chosen
    configs = model_index.load(path)["model_configs"]
    compiled = list(dict.fromkeys(c["batch_size"] for c in configs if c["status"] == "finished"))
    if not compiled:
        raise UsageError(f"{path} holds no finished configs: compile the model again")
    missing = sorted(set(chosen or []) - set(compiled))
    if missing:
        raise UsageError(
            f"--batch-sizes {','.join(map(str, missing))} not in {path}, which has "
            f"{','.join(map(str, compiled))}"
        )
    return [b for b in compiled if chosen is None or b in chosen]


def _results_stem(args: argparse.Namespace, name: str) -> Path:
    folder = _folder(args.output_dir, "--output-dir")
    return folder / f"{name}.results-{time.strftime('%Y%m%d-%H%M%S')}"


def _with(stem: Path, suffix: str) -> str:
    return f"{stem}{suffix}"  # not with_suffix(): the stem ends in ".results-<time>"


def _print_files(files: dict[str, str]) -> None:
    for kind, path in files.items():
        print(f"{kind}: {path}")


# -- commands -------------------------------------------------------------------------------


def demo(args: argparse.Namespace) -> int:
    fw = sources.framework(args.framework)
    run = fw.need("demo")
    result: dict[str, Any] = run(
        args.output_dir, quick=args.quick, device_type=args.device, verbosity=args.verbosity
    )
    if args.json:
        _print_json(result)
    else:
        print(f"benchmark on {result['device_type']}:")
        print_reports(result["benchmark"])
        evaluation = result["evaluation"]
        known = sources.registered_metrics()
        metrics = [k for k in evaluation[0] if k in known] if evaluation else []
        print("\nevaluation on the held-out split:")
        print_reports(evaluation, cols=["batch_size", *metrics], sort_by=None)
        print()
        _print_files(result["files"])
    finished = _all_finished(result["benchmark"]) and _all_finished(result["evaluation"])
    return 0 if finished else FAILED


def compile_(args: argparse.Namespace) -> int:
    if sources.is_object_spec(args.model):
        target: Any = sources.load_object(args.model, "MODEL")
        name = args.name or args.model.rpartition(":")[2]
        fw = sources.framework_for(target, args.model, args.framework)
        model = target
    else:
        path = sources.existing_path(args.model, "MODEL")
        name = args.name or path.stem
        fw = sources.framework_offering("read_model", str(path), args.framework)
        model = fw.need("read_model")(path)
    batch_sizes = args.batch_sizes or [1]
    inputs = _inputs(args, fw, batch_sizes)
    out = _folder(args.out, "--out")
    index_file = out / f"{name}.json"
    if index_file.exists():  # never overwrite what an earlier compile wrote
        raise UsageError(f"{index_file} exists: choose another --name or --out, or remove it")
    options: dict[str, Any] = {"device_type": args.device} if args.device else {}
    written = fw.module.compile(
        model,
        inputs,
        batch_sizes=batch_sizes,
        pipeline_sizes=args.pipeline_sizes,
        cast_modes=args.cast_modes,
        models_dir=str(out),
        model_name=name,
        filename=str(index_file),
        compiler_args=args.compiler_args,
        compiler_target=args.compiler_target,
        verbosity=args.verbosity,
        **options,
    )
    index = model_index.load(written)
    configs = index["model_configs"]
    if args.json:
        _print_json({"index": str(Path(written).resolve()), "model_index": index})
    else:
        rows = [
            [
                str(c["batch_size"]),
                str(c["pipeline_size"]),
                str(c["cast_mode"]),
                c["status"],
                "N/A" if c["compile_s"] is None else f"{c['compile_s']:.2f}",
                c["filename"] or c.get("error") or "",
            ]
            for c in configs
        ]
        headers = ["BATCH", "PIPELINE", "CAST", "STATUS", "COMPILE_S", "FILE / ERROR"]
        print(_table(headers, rows))
        print(f"\nmodel index: {written}")
    return 0 if all(c["status"] == "finished" for c in configs) else FAILED


def benchmark(args: argparse.Namespace) -> int:
    path, fw, name = _model_path(args.model, args.framework)
    batch_sizes = _index_batch_sizes(path, args.batch_sizes)
    inputs = _inputs(args, fw, batch_sizes)
    stem = _results_stem(args, name)
    reports = fw.module.benchmark(
        str(path),
        inputs,
        batch_sizes=batch_sizes,
        duration=args.duration,
        n_models=args.n_models,
        workers_per_model=args.workers_per_model,
        device_type=args.device,
        cost_per_hour=args.cost_per_hour,
        max_infers=args.max_infers,
        verbosity=args.verbosity,
        results_file=_with(stem, ".json"),
    )
    return _finish(args, reports, stem, SUMMARY_COLS, "throughput_peak")


def evaluate(args: argparse.Namespace) -> int:
    path, fw, name = _model_path(args.model, args.framework)
    batch_sizes = _index_batch_sizes(path, args.batch_sizes)
    if sources.is_object_spec(args.dataset):
        dataset = sources.load_object(args.dataset, "--dataset")
    else:
        data_path = sources.existing_path(args.dataset, "--dataset file")
        arrays = sources.read_arrays(data_path, fw)
        dataset = fw.need("dataset_from_arrays")(arrays)
    metrics = sources.metric_names(args.metrics)
    stem = _results_stem(args, name)
    reports = fw.module.evaluate(
        str(path),
        dataset,
        metrics=metrics,
        eval_target_col=args.target_col,
        batch_sizes=batch_sizes,
        device_type=args.device,
        max_infers=args.max_infers,
        verbosity=args.verbosity,
        results_file=_with(stem, ".json"),
    )
    cols = ["batch_size", *metrics, "total_infs", "model_filename"]
    return _finish(args, reports, stem, cols, None)


def _finish(
    args: argparse.Namespace,
    reports: list[dict[str, Any]],
    stem: Path,
    cols: Any,
    sort_by: str | None,
) -> int:
    """Write the CSV beside the JSON the engine kept up to date; show the reports."""
    files = {}
    if reports:
        files = {
            "json": str(Path(_with(stem, ".json")).resolve()),
            "csv": str(Path(write_csv(reports, _with(stem, ".csv"))).resolve()),
        }
    if args.json:
        _print_json({"reports": reports, "files": files})
    elif not reports:
        print("no config finished")
    else:
        failed = not _all_finished(reports)
        print_reports(reports, cols=[*cols, "status"] if failed else cols, sort_by=sort_by)
        print()
        _print_files(files)
    return 0 if _all_finished(reports) else FAILED  # the engine logged each failure


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
        or not all(isinstance(r, dict) and r.keys() >= REPORT_KEYS for r in data)
    ):
        raise UsageError(
            f"{path} is not a results file: expected a JSON list of reports, each with "
            f"{', '.join(sorted(REPORT_KEYS))} (what benchmark and evaluate write)"
        )
    return data


def report(args: argparse.Namespace) -> int:
    if len(args.results) > 2:
        raise UsageError(f"give one results file, or two to compare; got {len(args.results)}")
    runs = [_read_reports(text) for text in args.results]
    if len(runs) == 1:
        if args.fail_if_slower is not None:
            raise UsageError("--fail-if-slower compares two runs: give OLD.json NEW.json")
        reports = runs[0]
        if args.json:
            _print_json(reports)
        else:
            sort_by = args.sort_by or "throughput_peak"
            print_reports(reports, cols=args.cols or SUMMARY_COLS, sort_by=sort_by)
        if args.plot:
            from neuronperf_core.plots import plot_reports

            written = plot_reports(reports, args.plot, title=Path(args.results[0]).name)
            print(f"plot: {Path(written).resolve()}", file=sys.stderr if args.json else sys.stdout)
        return 0
    if args.plot or args.cols or args.sort_by:
        raise UsageError("--plot, --cols and --sort-by apply to one results file, not a comparison")
    from neuronperf_core.compare import compare_reports, format_comparison

    comparison = compare_reports(runs[0], runs[1], noise_pct=args.noise)
    if args.json:
        _print_json(comparison.to_dict())
    else:
        print(format_comparison(comparison))
    if args.fail_if_slower is None:
        return 0
    slower = comparison.slower(args.fail_if_slower)
    for row in slower:
        print(f"slower by over {args.fail_if_slower:g}%: {row.label}", file=sys.stderr)
    missing = [c for c in comparison.only_old if c.status == "finished"]
    for config in missing:
        print(f"missing from the new run: {config.label}", file=sys.stderr)
    return FAILED if slower or missing else 0


def plugins(args: argparse.Namespace) -> int:
    from neuronperf_core.plugins import get_host

    found = [p.to_dict() for p in get_host().plugins]
    if args.json:
        _print_json(found)
        return 0
    rows = []
    for p in found:
        registered = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["registered"].items())
        status = p["status"] if p["error"] is None else f"{p['status']}: {p['error']}"
        rows.append(
            [
                p["name"],
                p["distribution"] or "?",
                p["version"] or "?",
                status,
                ", ".join(h.removeprefix("neuronperf_") for h in p["hooks"]) or "-",
                registered or "-",
            ]
        )
    headers = ["NAME", "DISTRIBUTION", "VERSION", "STATUS", "HOOKS", "REGISTERED"]
    print(_table(headers, rows))
    return 0


def metrics(args: argparse.Namespace) -> int:
    from neuronperf_core.metrics.registry import list_metrics, metric_table

    if args.json:
        _print_json(metric_table())
    else:
        list_metrics()
    return 0
