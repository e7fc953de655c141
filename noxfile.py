"""Test sessions. `nox` runs them all; `nox -s tests` runs one.

Each session installs what it tests as a real (non-editable) distribution, so
the tests see what users get from `pip install`.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "virtualenv"  # pip finds the local torch wheel; uv does not
nox.options.error_on_missing_interpreters = True
nox.options.sessions = [
    "tests",
    "tests_with_torch",
    "plugins_installed",
    "metrics_extra",
    "metrics_extra_with_torch",
    "lint",
    "typecheck",
    "typecheck_torch",
    "typecheck_metrics_extra",
    "torch",
    "ray",
]

SAMPLE_PLUGIN = "tests/fixtures/sample_plugin"
TORCH_PLUGIN = "plugins/neuronperf_torch"
METRICS_EXTRA = "plugins/neuronperf_metrics_extra"
RAY_PLUGIN = "plugins/neuronperf_ray"
TORCH = "torch==2.13.0"  # pinned: a CPU build on local disk; a bare "torch" pulls GBs of CUDA
RUFF = "ruff==0.17.6"
MYPY = "mypy==2.4.1"
RAY = "ray==2.60.0"  # pinned: the version the runner was tested against (a 79 MB wheel)


@nox.session
def tests(session: nox.Session) -> None:
    """The core's tests (the command line's through a framework test double), in a venv where
    torch is NOT installed; matplotlib is, for the plots."""
    session.install(".[test,plot]")
    session.run(
        "python",
        "-c",
        "import importlib.util, sys; "
        "sys.exit('torch must not be installed here' if importlib.util.find_spec('torch') else 0)",
    )
    session.run("pytest", *session.posargs)


@nox.session
def tests_with_torch(session: nox.Session) -> None:
    """The core's tests beside torch: metrics take real tensors, listing still skips torch."""
    session.install(".[test]", TORCH)
    session.run("pytest", *session.posargs)


@nox.session
def plugins_installed(session: nox.Session) -> None:
    """Plugin discovery through a really installed third-party distribution."""
    session.install(".[test]", SAMPLE_PLUGIN)
    session.run(
        "pytest",
        "-m",
        "installed_plugin",
        *session.posargs,
        env={"NEURONPERF_EXPECT_SAMPLE_PLUGIN": "1"},
    )


@nox.session
def metrics_extra(session: nox.Session) -> None:
    """neuronperf-metrics-extra installed as a real distribution beside the core, and a
    third-party metric package that a test pip-installs into this venv and removes again; run
    from the plugin's folder (src layout), so nothing is imported from the checkout."""
    session.install(".", f"./{METRICS_EXTRA}[test]", "setuptools>=77")
    session.chdir(METRICS_EXTRA)
    session.run("pytest", *session.posargs, env={"NEURONPERF_TEST_PIP_INSTALL": "1"})


@nox.session
def metrics_extra_with_torch(session: nox.Session) -> None:
    """The same beside torch: tensors as inputs, torchmetrics as a reference."""
    session.install(".", f"./{METRICS_EXTRA}[test]", TORCH, "torchmetrics")
    session.chdir(METRICS_EXTRA)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install(RUFF)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the core (its runtime dependencies and extras installed for their types)."""
    session.install(MYPY, "numpy", "pluggy", "matplotlib", "click", "cloudpickle", "rich")
    session.run("mypy")


@nox.session
def typecheck_torch(session: nox.Session) -> None:
    """mypy --strict on the torch plugin, against the installed core and torch 2.13.0."""
    session.install(MYPY, ".", f"./{TORCH_PLUGIN}", TORCH)
    session.chdir(TORCH_PLUGIN)
    session.run("mypy")


@nox.session
def typecheck_metrics_extra(session: nox.Session) -> None:
    """mypy --strict on the metrics-extra plugin, against the installed core and numpy."""
    session.install(MYPY, ".", f"./{METRICS_EXTRA}", "numpy")
    session.chdir(METRICS_EXTRA)
    session.run("mypy")


@nox.session
def torch(session: nox.Session) -> None:
    """The torch plugin's tests, with neuronperf-core and neuronperf-torch installed as real
    (non-editable) distributions beside torch 2.13.0, with the demo's extras (the command
    line's tests run `neuronperf demo --quick`); run from the plugin's folder (src layout),
    so nothing is imported from the checkout."""
    session.install(".[plot]", f"./{TORCH_PLUGIN}[test,demo]", TORCH)
    session.chdir(TORCH_PLUGIN)
    session.run("pytest", *session.posargs, env={"NEURONPERF_TORCH_EXPECT_INSTALLED": "1"})


@nox.session
def ray(session: nox.Session) -> None:
    """The Ray runner plugin's tests, with neuronperf-core and neuronperf-ray installed as real
    (non-editable) distributions beside ray; the tests start one simulated Ray cluster (3 nodes
    on this machine) for the session. Then mypy --strict on the plugin, against ray's own types
    (here, not in a session of its own: ray is a large install). Run from the plugin's folder
    (src layout), so nothing is imported from the checkout."""
    session.install(".", f"./{RAY_PLUGIN}[test]", RAY, MYPY)
    session.chdir(RAY_PLUGIN)
    session.run("pytest", *session.posargs)
    session.run("mypy")
