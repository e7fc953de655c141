"""The ``neuronperf`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from neuronperf_core import __version__


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _cmd_plugins(args: argparse.Namespace) -> int:
    from neuronperf_core.plugins import get_host

    plugins = [p.to_dict() for p in get_host().plugins]
    if args.json:
        print(json.dumps(plugins, indent=2))
        return 0
    rows = []
    for p in plugins:
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


def _cmd_metrics(args: argparse.Namespace) -> int:
    from neuronperf_core.metrics.registry import list_metrics, metric_table

    if args.json:
        print(json.dumps(metric_table(), indent=2))
    else:
        list_metrics()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuronperf",
        description="Benchmark and evaluate models on AWS Neuron, CPU and CUDA.",
    )
    parser.add_argument("--version", action="version", version=f"neuronperf {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plugins = commands.add_parser(
        "plugins",
        help="list installed plugins, what they provide and whether they loaded",
        epilog="example: neuronperf plugins --json",
    )
    plugins.add_argument("--json", action="store_true", help="print JSON for scripts")
    plugins.set_defaults(run=_cmd_plugins)

    metrics = commands.add_parser(
        "metrics",
        help="list the available evaluation metrics",
        epilog="example: neuronperf metrics --json",
    )
    metrics.add_argument("--json", action="store_true", help="print JSON for scripts")
    metrics.set_defaults(run=_cmd_metrics)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
