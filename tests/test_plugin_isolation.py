"""Third-party plugins: the example package, a broken one, clashes, and the environment switches."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmctl.descriptors import Family
from llmctl.hookspecs import hookimpl
from llmctl.plugins import PluginHost
from tests.cli_helpers import run_llmctl

ROOT = Path(__file__).resolve().parents[1]


def fake_distribution(site: Path, name: str, module_source: str, entry_name: str | None = None) -> None:
    """Install a one-module distribution declaring an ``llmctl`` entry point into ``site`` (a sys.path folder)."""
    module = name.replace("-", "_")
    (site / f"{module}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{module}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[llmctl]\n{entry_name or module} = {module}\n")


@pytest.fixture(scope="module")
def example_site(tmp_path_factory) -> Path:
    """The example plugin from docs/examples, really built and installed into its own folder."""
    target = tmp_path_factory.mktemp("example-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(ROOT / "docs/examples/llmctl-hello")], check=True, capture_output=True)
    return target


def test_example_plugin_appears_and_its_command_runs(example_site):
    env = {"PYTHONPATH": str(example_site)}
    plugins = json.loads(run_llmctl("plugins", "--json", env=env).stdout)
    hello = [p for p in plugins if p["name"] == "hello"]
    assert hello and hello[0]["distribution"] == "llmctl-hello"
    assert hello[0]["registers"] == {"family": ["tinystories"], "command": ["hello"]}
    assert "hello" in run_llmctl("--help", env=env).stdout
    result = run_llmctl("hello", "Ada", env=env)
    assert result.returncode == 0 and "Hello, Ada!" in result.stdout
    assert "tinystories-33m" in run_llmctl("models", env=env).stdout
    assert run_llmctl("info", "stories", "--json", env=env).returncode == 0


def test_restricting_plugins_keeps_builtins_only(example_site):
    env = {"PYTHONPATH": str(example_site), "LLMCTL_LOAD_PLUGINS": ""}
    plugins = json.loads(run_llmctl("plugins", "--json", env=env).stdout)
    assert all(p["builtin"] for p in plugins) and len(plugins) >= 14
    env["LLMCTL_LOAD_PLUGINS"] = "hello"
    assert any(p["name"] == "hello" for p in json.loads(run_llmctl("plugins", "--json", env=env).stdout))
    disabled = {"PYTHONPATH": str(example_site), "LLMCTL_DISABLE_PLUGINS": "hello,family-openelm"}
    names = {p["name"] for p in json.loads(run_llmctl("plugins", "--json", env=disabled).stdout)}
    assert "hello" not in names and "family-openelm" not in names and "family-gemma" in names


def test_plugin_that_raises_at_import_is_named_once_and_commands_still_work(tmp_path):
    fake_distribution(tmp_path, "llmctl-broken", "raise RuntimeError('boom at import')\n")
    env = {"PYTHONPATH": str(tmp_path)}
    for argv in (["plugins"], ["models"], ["info", "smollm2-135m", "--json"], ["--help"]):
        result = run_llmctl(*argv, env=env)
        assert result.returncode == 0, (argv, result.stderr)
        warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1 and "llmctl_broken" in warnings[0] and "boom at import" in warnings[0]


def test_plugin_that_raises_in_a_hook_is_skipped(tmp_path):
    source = """
        from llmctl.hookspecs import hookimpl

        @hookimpl
        def register_families(register):
            raise ValueError("bad hook")
    """
    fake_distribution(tmp_path, "llmctl-badhook", source)
    result = run_llmctl("models", "--json", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0
    assert "llmctl_badhook" in result.stderr and "bad hook" in result.stderr
    assert len(json.loads(result.stdout)) >= 10


class ClashingPlugin:
    @hookimpl
    def register_families(self, register):
        register(Family(name="llama", description="impostor", model_types=("llama",), models=(),
                        lora_target_modules=(), tiny_config={}))


def test_a_clash_never_silently_replaces_a_builtin(capsys):
    host = PluginHost()
    host.load_entry_points()
    host.register_object(ClashingPlugin(), "impostor")
    family = host.registry.family("llama")
    assert family.description != "impostor" and family.plugin == "family-llama"
    assert "impostor" in capsys.readouterr().err


def test_registry_rejects_unknown_names_with_suggestions():
    host = PluginHost()
    host.load_entry_points()
    with pytest.raises(Exception, match="did you mean 'mistral-7b'"):
        host.registry.resolve_model("mistral-7bb")
    with pytest.raises(Exception, match="did you mean 'cuda'"):
        host.registry.get("backend", "cdua")
