"""The ``neuronperf`` command line (``python -m neuronperf`` runs it too)."""

from neuronperf_core.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
