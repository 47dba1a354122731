"""Plugins: entry points, broken plugins reported and skipped, strict mode, disabling."""

from conftest import make_plugin_dist, run_dig

BROKEN_AT_IMPORT = "raise RuntimeError('boom at import')\n"
BROKEN_IN_HOOK = """
from dig.plugins import hookimpl

@hookimpl
def dig_register(registry):
    registry.add_model("half", object(), track="3d", summary="registered before the failure")
    raise ValueError("boom in hook")
"""


def test_plugin_raising_at_import_is_reported_and_skipped(tmp_path):
    path = make_plugin_dist(tmp_path / "site", "broken-dist", "broken", "broken_plugin", BROKEN_AT_IMPORT)
    out = run_dig("list", "--kind", "model", extra_path=path)
    assert out.returncode == 0, out.stderr
    assert "schnet" in out.stdout
    assert "'broken'" in out.stderr and "broken-dist" in out.stderr and "boom at import" in out.stderr


def test_plugin_raising_in_hook_leaves_nothing_behind(tmp_path):
    path = make_plugin_dist(tmp_path / "site", "hook-dist", "hooky", "hooky_plugin", BROKEN_IN_HOOK)
    out = run_dig("list", "--kind", "model", extra_path=path)
    assert out.returncode == 0
    assert "half" not in out.stdout and "boom in hook" in out.stderr


def test_strict_mode_turns_a_broken_plugin_into_an_error(tmp_path):
    path = make_plugin_dist(tmp_path / "site", "broken-dist", "broken", "broken_plugin", BROKEN_AT_IMPORT)
    flag = run_dig("--strict", "list", extra_path=path)
    env = run_dig("list", extra_path=path, env={"DIG_STRICT_PLUGINS": "1"})
    for out in (flag, env):
        assert out.returncode == 2
        assert "broken" in out.stderr and "Traceback" not in out.stderr


def test_disabling_a_plugin_by_name_or_autoload(tmp_path):
    path = make_plugin_dist(tmp_path / "site", "broken-dist", "broken", "broken_plugin", BROKEN_AT_IMPORT)
    by_name = run_dig("--disable-plugins", "broken", "list", extra_path=path)
    by_env = run_dig("list", extra_path=path, env={"DIG_DISABLE_PLUGIN_AUTOLOAD": "1"})
    for out in (by_name, by_env):
        assert out.returncode == 0 and "boom" not in out.stderr and "schnet" in out.stdout


def test_bench_still_runs_beside_a_broken_plugin(tmp_path):
    path = make_plugin_dist(tmp_path / "site", "broken-dist", "broken", "broken_plugin", BROKEN_AT_IMPORT)
    out = run_dig("bench", "--track", "3d", "--datasets", "qm9", "--models", "mean", "--seeds", "0", "--budget", "smoke",
                  "--out", str(tmp_path / "res"), "--quiet", extra_path=path)
    assert out.returncode == 0, out.stderr
    assert "boom at import" in out.stderr
    assert (tmp_path / "res" / "3d.csv").exists()


def test_builtin_track_registers_through_the_entry_point_group():
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="dig")}
    assert names.get("threed") == "dig.tracks.threed.plugin"
    from dig.plugins import load_plugins

    loaded = load_plugins()
    assert ("threed", "dig-bench") in loaded.loaded
    assert loaded.registry.get("model", "schnet", track="3d").plugin == "threed"


def test_plugin_discovery_leaves_heavy_libraries_to_the_jobs_that_use_them():
    """Every worker process discovers the plugins before its one job: PyG, captum and scipy.stats cost it
    about 3 s together, so only the explainers and metrics that use them import them."""
    import subprocess
    import sys

    heavy = ("torch_geometric", "captum", "scipy.stats", "matplotlib", "monai", "rdkit")
    code = ("import sys; from dig.plugins import load_plugins; registry = load_plugins().registry; "
            f"assert registry.names('explainer', 'xgraph'); print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
