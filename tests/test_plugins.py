"""Plugin discovery, loading and failure isolation, through real entry points."""

from __future__ import annotations

import inspect
import io
import json
import re
import subprocess
import sys

import pytest

import neuronperf as npf
from neuronperf_core import hookspecs, plugins
from neuronperf_core.errors import PluginError, UnknownNameError
from neuronperf_core.metrics.registry import create_metric, get_metric, metric_table

GOOD_PLUGIN = """
    from neuronperf_core import BaseEvalMetric, hookimpl

    class CountRecords(BaseEvalMetric):
        def __init__(self):
            super().__init__()
            self.n = 0

        def process_record(self, output, target):
            self.n += 1

        @staticmethod
        def aggregate(metrics):
            return sum(m.n for m in metrics)

    @hookimpl
    def neuronperf_register_metrics(register):
        register("CountRecords", CountRecords, description="records seen",
                 aliases=("record count",))
"""

RAISING_HOOK = """
    from neuronperf_core import BaseEvalMetric, hookimpl

    class Half(BaseEvalMetric):
        def process_record(self, output, target):
            pass

        @staticmethod
        def aggregate(metrics):
            return 0.5

    @hookimpl
    def neuronperf_register_metrics(register):
        register("HalfDone", Half, description="registered before the hook raised")
        raise RuntimeError("hook exploded")
"""


def plugin_named(name: str) -> plugins.PluginInfo:
    (info,) = [p for p in plugins.get_host().plugins if p.name == name]
    return info


def test_good_plugin_is_discovered_through_its_entry_point(fake_site):
    fake_site.add_dist(
        "npf-good", "2.0.1", {"good": "npf_good_plugin"}, {"npf_good_plugin": GOOD_PLUGIN}
    )

    info = plugin_named("good")
    assert (info.distribution, info.version, info.source) == ("npf-good", "2.0.1", "entry point")
    assert info.status == "active" and info.error is None
    assert info.hooks == ["neuronperf_register_metrics"]
    assert info.registered == {"metrics": ["CountRecords"]}
    metric = create_metric("record_count")  # the alias, in snake_case
    metric.process_batch([1, 2, 3], [1, 2, 3])
    assert type(metric).aggregate([metric]) == 3
    assert {"name": "CountRecords", "description": "records seen", "provider": "good"} in (
        metric_table()
    )


def test_builtins_load_first_and_plugins_in_name_order(fake_site):
    fake_site.add_dist("z-dist", "1", {"b_plugin": "npf_b"}, {"npf_b": GOOD_PLUGIN})
    fake_site.add_dist("a-dist", "1", {"a_plugin": "npf_a"}, {"npf_a": GOOD_PLUGIN})

    with pytest.warns(plugins.PluginWarning, match="b_plugin"):
        names = [p.name for p in plugins.get_host().plugins]
    assert names[: len(plugins.BUILTIN_PLUGINS)] == list(plugins.BUILTIN_PLUGINS)
    from_entry_points = names[len(plugins.BUILTIN_PLUGINS) :]  # with any installed ones
    assert from_entry_points == sorted(from_entry_points)
    assert {"a_plugin", "b_plugin"} <= set(from_entry_points)
    # Both provide CountRecords: the first in order wins, the second fails naming both.
    assert plugin_named("a_plugin").status == "active"
    failed = plugin_named("b_plugin")
    assert failed.status == "failed"
    assert "'CountRecords'" in failed.error and "by a_plugin" in failed.error


def test_plugins_load_once_per_process(fake_site):
    counting = GOOD_PLUGIN.replace(
        "    def neuronperf_register_metrics(register):\n",
        "    def neuronperf_register_metrics(register):\n"
        "        import builtins\n"
        "        builtins.npf_hook_calls = getattr(builtins, 'npf_hook_calls', 0) + 1\n",
    )
    assert counting != GOOD_PLUGIN
    fake_site.add_dist("npf-once", "1", {"once": "npf_once"}, {"npf_once": counting})
    import builtins

    builtins.npf_hook_calls = 0
    try:
        host = plugins.get_host()
        assert plugins.get_host() is host
        npf.list_metrics(file=io.StringIO())
        create_metric("CountRecords")
        get_metric("record count")
        assert builtins.npf_hook_calls == 1
    finally:
        del builtins.npf_hook_calls


@pytest.mark.parametrize(
    ("source", "error_fragment"),
    [
        (
            "raise ImportError('no module named heavy_dependency')",
            "ImportError: no module named heavy_dependency",
        ),
        (RAISING_HOOK, "RuntimeError: hook exploded"),
        (
            "from neuronperf_core import hookimpl\n"
            "@hookimpl\ndef neuronperf_register_metrics(register):\n"
            "    register('NotAClass', object(), description='x')\n",
            "expected a subclass of neuronperf.BaseEvalMetric",
        ),
        (
            "from neuronperf_core import hookimpl, BaseEvalMetric\n"
            "class Acc(BaseEvalMetric):\n"
            "    def process_record(self, o, t): pass\n"
            "    @staticmethod\n    def aggregate(m): return 1\n"
            "@hookimpl\ndef neuronperf_register_metrics(register):\n"
            "    register('accuracy', Acc, description='clash')\n",
            "already registered as 'Accuracy' by neuronperf_core.metrics.builtin",
        ),
        (
            "from neuronperf_core import hookimpl\n"
            "@hookimpl\ndef neuronperf_register_metric(register):\n    pass\n",
            "implements neuronperf_register_metric, which neuronperf does not define",
        ),
        ("raise SystemExit('plugin exits')", "SystemExit: plugin exits"),
        (
            "import neuronperf as npf\n"
            "from neuronperf_core import BaseEvalMetric\n"
            "class M(BaseEvalMetric):\n"
            "    def process_record(self, o, t): pass\n"
            "    @staticmethod\n    def aggregate(m): return 1\n"
            "npf.register_metric('AtImport', M)\n",
            "while plugins were still loading",
        ),
        (
            "from neuronperf_core import hookimpl\n"
            "@hookimpl(wrapper=True)\ndef neuronperf_register_metrics(register):\n"
            "    return (yield)\n",
            "is marked as a hook wrapper",
        ),
    ],
    ids=[
        "import-error",
        "hook-raises",
        "invalid-class",
        "name-clash",
        "unknown-hook",
        "system-exit",
        "reentrant-call",
        "hook-wrapper",
    ],
)
def test_a_broken_plugin_is_reported_and_skipped(fake_site, source, error_fragment):
    fake_site.add_dist("npf-broken", "0.3", {"broken": "npf_broken"}, {"npf_broken": source})
    fake_site.add_dist("npf-good", "1.0", {"good": "npf_good"}, {"npf_good": GOOD_PLUGIN})

    with pytest.warns(plugins.PluginWarning) as caught:
        host = plugins.get_host()
    (warning,) = [str(w.message) for w in caught if "broken" in str(w.message)]
    assert "'broken'" in warning and "npf-broken 0.3" in warning and error_fragment in warning
    assert "NEURONPERF_DISABLE_PLUGINS=broken" in warning

    broken = plugin_named("broken")
    assert broken.status == "failed" and error_fragment in broken.error
    assert broken.registered == {}
    assert "HalfDone" not in host.metrics  # nothing a failed plugin registered is kept
    assert "broken" not in [host.pm.get_name(p) for p in host.pm.get_plugins()]
    # The host and the other plugins carry on.
    assert plugin_named("good").status == "active"
    assert create_metric("CountRecords") is not None
    assert create_metric("accuracy") is not None


def test_strict_mode_reraises(fake_site, monkeypatch):
    fake_site.add_dist("npf-broken", "0.3", {"broken": "npf_broken"}, {"npf_broken": RAISING_HOOK})
    monkeypatch.setenv(plugins.STRICT_ENV, "1")
    with pytest.raises(PluginError, match="hook exploded") as raised:
        plugins.get_host()
    assert isinstance(raised.value.__cause__, RuntimeError)


def test_disabled_entry_points_are_blocked_and_never_imported(fake_site, monkeypatch):
    fake_site.add_dist(
        "npf-broken",
        "0.3",
        {"broken": "npf_broken"},
        {"npf_broken": "raise SystemExit('imported')"},
    )
    fake_site.add_dist("npf-good", "1.0", {"good": "npf_good"}, {"npf_good": GOOD_PLUGIN})
    monkeypatch.setenv(plugins.DISABLE_ENV, "broken, good")

    assert plugin_named("broken").status == "blocked"
    assert plugin_named("good").status == "blocked"
    assert "CountRecords" not in plugins.get_host().metrics


BACKEND_PLUGIN = """
    from neuronperf_core import hookimpl

    class FakeBackend:
        \"\"\"Every member of neuronperf_core.backend.Backend, doing nothing.\"\"\"

        name = "fakefw"
        description = "a backend for tests"
        device_types = ("cpu",)
        extras = ("hello",)

        def hello(self):
            return "ran"

        def owns(self, target): return False
        def model_meta(self, path): return None
        def plan_compile(self, model, options): raise NotImplementedError
        def compile_one(self, model, example, spec, path, plan): raise NotImplementedError
        def plan_run(self, target, configs, options): raise NotImplementedError
        def coerce_inputs(self, inputs, batch_sizes): return inputs
        def batch_size_of(self, model_input): return None
        def check_input(self, config, model_input, what): pass
        def batches(self, dataset, batch_size, target_col, options): return []
        def read_model(self, path): raise NotImplementedError
        def read_arrays(self, path): return []
        def dataset_from_arrays(self, arrays): return list(zip(*arrays))

    BACKEND = FakeBackend()

    @hookimpl
    def neuronperf_register_backends(register):
        register(BACKEND)
"""


def test_a_backend_plugin_is_an_attribute_and_a_submodule(fake_site):
    fake_site.add_dist("npf-fakefw", "1", {"fakefw": "npf_fakefw"}, {"npf_fakefw": BACKEND_PLUGIN})
    assert "npf_fakefw" not in sys.modules  # nothing is imported before the first lookup
    assert npf.fakefw.hello() == "ran"  # the backend's extras, on npf.<name>
    assert npf.fakefw.backend is sys.modules["npf_fakefw"].BACKEND
    assert callable(npf.fakefw.benchmark) and callable(npf.fakefw.evaluate)
    assert plugin_named("fakefw").registered == {"backends": ["fakefw"]}
    import neuronperf.fakefw
    from neuronperf.fakefw import hello

    assert neuronperf.fakefw is npf.fakefw and hello() == "ran"


def test_import_of_a_backend_submodule_works_without_attribute_access_first(fake_site):
    fake_site.add_dist("npf-fakefw", "1", {"fakefw": "npf_fakefw"}, {"npf_fakefw": BACKEND_PLUGIN})
    result = fake_site.run("import neuronperf.fakefw as fw; print(fw.backend.description)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "a backend for tests"


def test_a_missing_backend_says_what_to_install(monkeypatch):
    monkeypatch.setenv(plugins.DISABLE_ENV, "torch")  # as if neuronperf-torch were absent
    monkeypatch.delitem(sys.modules, "neuronperf.torch", raising=False)
    with pytest.raises(AttributeError, match="pip install neuronperf-torch"):
        npf.torch  # noqa: B018
    with pytest.raises(ModuleNotFoundError, match="pip install neuronperf-torch"):
        import neuronperf.torch  # noqa: F401


def test_a_backend_must_satisfy_the_protocol(fake_site):
    source = BACKEND_PLUGIN.replace("register(BACKEND)", "register(object())")
    fake_site.add_dist("npf-badfw", "1", {"badfw": "npf_badfw"}, {"npf_badfw": source})
    with pytest.warns(plugins.PluginWarning, match=r"does not satisfy neuronperf_core\.backend"):
        assert plugin_named("badfw").status == "failed"


def test_unknown_backend_lookup_lists_known_names():
    with pytest.raises(UnknownNameError, match="Unknown backend 'no_such_backend'"):
        plugins.get_host().backends.get("no_such_backend")


# -- runners --------------------------------------------------------------------------


def test_builtin_runners_are_registered_by_path_and_imported_on_first_use():
    code = (
        "import sys\n"
        "from neuronperf_core.plugins import get_host\n"
        "host = get_host()\n"
        "(info,) = [p for p in host.plugins if p.name == 'neuronperf_core.builtin_runners']\n"
        "assert info.registered == {'runners': ['threads', 'processes', 'interpreters']}\n"
        "assert [e.description for e in host.runners][0].startswith('model copies')\n"
        "assert not [m for m in sys.modules if m.startswith('neuronperf_core.benchmarking')]\n"
        "from neuronperf_core.benchmarking import runners\n"
        "assert host.runners.get('threads').value is runners.THREADS\n"
        "assert host.runners.get('processes').value.start_method == 'fork'\n"
        "assert host.runners.get('interpreters').value.start_method == 'spawn'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


RUNNER_PLUGIN = """
    from neuronperf_core import hookimpl

    class LocalRunner:
        def run(self, job, stats_interval):
            return "ran"

    LOCAL = LocalRunner()

    @hookimpl
    def neuronperf_register_runners(register):
        register("local", "npf_runner_plugin:LOCAL", description="here")
        register("gone", "npf_runner_gone:RUNNER", description="not installed")
"""


def test_a_runner_registered_by_path_fails_on_use_naming_its_plugin(fake_site):
    fake_site.add_dist(
        "npf-runners", "3", {"myrunners": "npf_runner_plugin"}, {"npf_runner_plugin": RUNNER_PLUGIN}
    )
    runners = plugins.get_host().runners
    assert plugin_named("myrunners").registered == {"runners": ["local", "gone"]}
    assert runners.get("local").value.run(None, 0.1) == "ran"
    with pytest.raises(PluginError) as raised:
        runners.get("gone").value  # noqa: B018
    message = str(raised.value)
    assert "runner 'gone', registered by plugin 'myrunners'" in message
    assert "npf-runners 3" in message and "ModuleNotFoundError" in message
    assert plugin_named("myrunners").status == "active"


def test_cli_lists_plugins_with_status_hooks_and_registrations(fake_site):
    fake_site.add_dist("npf-good", "2.0.1", {"good": "npf_good"}, {"npf_good": GOOD_PLUGIN})
    fake_site.add_dist("npf-broken", "0.3", {"broken": "npf_broken"}, {"npf_broken": RAISING_HOOK})
    fake_site.add_dist("npf-off", "9", {"off": "npf_off"}, {"npf_off": GOOD_PLUGIN})
    cli = "import sys; from neuronperf_core.cli import main; sys.exit(main(sys.argv[1:]))"

    result = fake_site.run(
        cli.replace("sys.argv[1:]", "['plugins', '--json']"), {plugins.DISABLE_ENV: "off"}
    )
    assert result.returncode == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed["good"]["status"] == "active"
    assert listed["good"]["distribution"] == "npf-good" and listed["good"]["version"] == "2.0.1"
    assert listed["good"]["hooks"] == ["neuronperf_register_metrics"]
    assert listed["good"]["registered"] == {"metrics": ["CountRecords"]}
    assert listed["broken"]["status"] == "failed"
    assert "RuntimeError: hook exploded" in listed["broken"]["error"]
    assert listed["off"]["status"] == "blocked"
    assert "hook exploded" in result.stderr  # the warning

    table = fake_site.run(cli.replace("sys.argv[1:]", "['plugins']"))
    assert table.returncode == 0, table.stderr
    header, _, *rows = table.stdout.splitlines()  # natural width: one line per plugin
    assert header.split() == ["plugin", "distribution", "status", "registered"]
    (good_row,) = [r for r in rows if r.startswith("good ")]
    assert good_row.split()[:4] == ["good", "npf-good", "2.0.1", "active"]
    assert "metrics: CountRecords" in good_row
    (broken_row,) = [r for r in rows if r.startswith("broken ")]
    assert "failed: RuntimeError: hook exploded" in broken_row


def test_cli_lists_metrics_as_json_and_table(fake_site):
    fake_site.add_dist("npf-good", "2.0.1", {"good": "npf_good"}, {"npf_good": GOOD_PLUGIN})
    cli = "import sys; from neuronperf_core.cli import main; sys.exit(main({}))"
    result = fake_site.run(cli.format("['metrics', '--json']"))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows[0] == {
        "name": "Accuracy",
        "description": "(TP + TN) / (TP + TN + FP + FN)",
        "provider": "neuronperf_core.metrics.builtin",
    }
    assert {"name": "CountRecords", "description": "records seen", "provider": "good"} in rows
    assert {
        "name": "record count",
        "description": "Alias for CountRecords",
        "provider": "good",
    } in (rows)
    table = fake_site.run(cli.format("['metrics']"))
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["Name", "Description"]
    assert re.search(r"\nCountRecords +records seen\n", table.stdout)


def test_listing_plugins_and_metrics_imports_no_torch(fake_site):
    fake_site.add_dist("npf-good", "1", {"good": "npf_good"}, {"npf_good": GOOD_PLUGIN})
    code = (
        "import sys, io, neuronperf\n"
        "neuronperf.list_metrics(file=io.StringIO())\n"
        "from neuronperf_core.cli import main\n"
        "main(['plugins', '--json'])\n"
        "heavy = {'torch', 'sklearn', 'scipy'}\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "assert not heavy, heavy\n"
    )
    result = fake_site.run(code)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(plugins.REGISTRATION_HOOKS))
def test_every_hook_is_documented(name):
    spec = getattr(hookspecs, name)
    doc = inspect.getdoc(spec) or ""
    assert "register(" in doc, f"{name}: say what register() takes"
    assert "Returns" in doc, f"{name}: say what it returns"
    assert "Called" in doc, f"{name}: say when it is called"
    assert spec.neuronperf_spec is not None  # marked with the `neuronperf` hookspec marker


def test_every_hook_is_defined_as_a_spec_with_one_project_name():
    host = plugins.get_host()
    assert host.pm.project_name == plugins.ENTRY_POINT_GROUP == "neuronperf"
    specs = {n for n in dir(host.pm.hook) if n.startswith("neuronperf_")}
    assert specs == {*plugins.REGISTRATION_HOOKS, plugins.COMMANDS_HOOK}
