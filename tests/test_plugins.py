"""Plugin discovery, loading and failure isolation, through real entry points."""

from __future__ import annotations

import inspect
import io
import json
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
    assert names[-2:] == ["a_plugin", "b_plugin"]
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


FRAMEWORK_PLUGIN = """
    from neuronperf_core import hookimpl

    @hookimpl
    def neuronperf_register_frameworks(register):
        register("fakefw", "npf_fakefw_api")  # description is optional
"""


def test_a_framework_plugin_is_an_attribute_and_a_submodule(fake_site):
    fake_site.add_dist(
        "npf-fakefw",
        "1",
        {"fakefw": "npf_fakefw"},
        {"npf_fakefw": FRAMEWORK_PLUGIN, "npf_fakefw_api": "def benchmark():\n    return 'ran'\n"},
    )
    assert "npf_fakefw_api" not in sys.modules  # registering imports nothing
    assert npf.fakefw.benchmark() == "ran"
    assert plugin_named("fakefw").registered == {"frameworks": ["fakefw"]}
    import neuronperf.fakefw
    from neuronperf.fakefw import benchmark

    assert neuronperf.fakefw is sys.modules["npf_fakefw_api"] and benchmark() == "ran"


def test_import_of_a_framework_submodule_works_without_attribute_access_first(fake_site):
    fake_site.add_dist(
        "npf-fakefw",
        "1",
        {"fakefw": "npf_fakefw"},
        {"npf_fakefw": FRAMEWORK_PLUGIN, "npf_fakefw_api": "NAME = 'fake'\n"},
    )
    result = fake_site.run("import neuronperf.fakefw as fw; print(fw.NAME)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fake"


def test_a_missing_framework_says_what_to_install(monkeypatch):
    monkeypatch.delitem(sys.modules, "neuronperf.torch", raising=False)
    with pytest.raises(AttributeError, match="pip install neuronperf-torch"):
        npf.torch  # noqa: B018
    with pytest.raises(ModuleNotFoundError, match="pip install neuronperf-torch"):
        import neuronperf.torch  # noqa: F401


def test_a_framework_must_be_registered_as_a_module_path(fake_site):
    source = FRAMEWORK_PLUGIN.replace('"npf_fakefw_api"', "object()")
    fake_site.add_dist("npf-badfw", "1", {"badfw": "npf_badfw"}, {"npf_badfw": source})
    with pytest.warns(plugins.PluginWarning, match="register the import path"):
        assert plugin_named("badfw").status == "failed"


def test_unknown_framework_lookup_lists_known_names():
    with pytest.raises(UnknownNameError, match="Unknown framework 'torch'"):
        plugins.get_host().frameworks.get("torch")


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
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["NAME", "DISTRIBUTION", "VERSION", "STATUS", "HOOKS", "REGISTERED"]
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
    assert "CountRecords             records seen" in table.stdout


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
    assert specs == set(plugins.REGISTRATION_HOOKS)
