"""Third-party plugins: the example package, a broken one, clashes, and the environment switches."""

from __future__ import annotations

import json
import os
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


def plugin_env(site: Path, **extra: str) -> dict[str, str]:
    """An environment whose ``PYTHONPATH`` puts ``site`` before whatever the test run already has."""
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(paths), **extra}


def warning_lines(stderr: str) -> list[str]:
    """The ``warning:`` lines of a run's stderr."""
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


@pytest.fixture(scope="module")
def example_site(tmp_path_factory) -> Path:
    """The example plugin from docs/examples, really built and installed into its own folder."""
    target = tmp_path_factory.mktemp("example-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(ROOT / "docs/examples/llmctl-hello")], check=True, capture_output=True)
    return target


def test_example_plugin_appears_and_its_command_runs(example_site):
    env = plugin_env(example_site)
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
    env = plugin_env(example_site, LLMCTL_LOAD_PLUGINS="")
    plugins = json.loads(run_llmctl("plugins", "--json", env=env).stdout)
    assert all(p["builtin"] for p in plugins) and len(plugins) >= 14
    env["LLMCTL_LOAD_PLUGINS"] = "hello"
    assert any(p["name"] == "hello" for p in json.loads(run_llmctl("plugins", "--json", env=env).stdout))
    disabled = plugin_env(example_site, LLMCTL_DISABLE_PLUGINS="hello,family-openelm")
    names = {p["name"] for p in json.loads(run_llmctl("plugins", "--json", env=disabled).stdout)}
    assert "hello" not in names and "family-openelm" not in names and "family-gemma" in names


def test_plugin_that_raises_at_import_is_named_once_and_commands_still_work(tmp_path):
    fake_distribution(tmp_path, "llmctl-broken", "raise RuntimeError('boom at import')\n")
    env = plugin_env(tmp_path)
    for argv in (["plugins"], ["models"], ["info", "smollm2-135m", "--json"], ["--help"]):
        result = run_llmctl(*argv, env=env)
        assert result.returncode == 0, (argv, result.stderr)
        warnings = warning_lines(result.stderr)
        assert len(warnings) == 1 and "llmctl_broken" in warnings[0] and "boom at import" in warnings[0]


def test_plugin_that_raises_in_a_hook_is_skipped(tmp_path):
    source = """
        from llmctl.hookspecs import hookimpl

        @hookimpl
        def register_families(register):
            raise ValueError("bad hook")
    """
    fake_distribution(tmp_path, "llmctl-badhook", source)
    result = run_llmctl("models", "--json", env=plugin_env(tmp_path))
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


METHOD_PLUGIN = """
    from llmctl.descriptors import Method
    from llmctl.hookspecs import hookimpl

    @hookimpl
    def register_methods(register):
        {body}
"""


def method_plugin(body: str, more: str = "") -> str:
    """A plugin module whose ``register_methods`` runs ``body`` (statements joined by ``; ``), then ``more``."""
    return textwrap.dedent(METHOD_PLUGIN).replace("{body}", body) + textwrap.dedent(more)


def plugins_json(env: dict[str, str]) -> dict[str, dict]:
    """``llmctl plugins --json`` by plugin name."""
    result = run_llmctl("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)}


def test_a_hook_that_raises_after_registering_leaves_no_trace(tmp_path):
    # 'halfway' registers a method another plugin also offers, one of its own and a command, then its hook raises;
    # 'cmdfail' adds a command and then raises in the same hook
    fake_distribution(tmp_path, "llmctl-goodmethod", method_plugin(
        "register(Method(name='shared', description='the good one')); "
        "register(Method(name='good-only', description='only here'))"))
    fake_distribution(tmp_path, "llmctl-halfway", method_plugin(
        "register(Method(name='shared', description='impostor')); "
        "register(Method(name='ghost', description='half registered')); "
        "raise RuntimeError('halfway there')", """
            @hookimpl
            def register_commands(app):
                @app.command("halfway-cmd")
                def halfway_cmd():
                    print("should never run")
        """))
    fake_distribution(tmp_path, "llmctl-cmdfail", """
        from llmctl.hookspecs import hookimpl

        @hookimpl
        def register_commands(app):
            @app.command("cmdfail-cmd")
            def cmdfail_cmd():
                print("should never run")
            raise KeyError("after the command")
    """)
    env = plugin_env(tmp_path)
    plugins = plugins_json(env)
    assert plugins["llmctl_goodmethod"]["registers"] == {"method": ["shared", "good-only"]}
    assert plugins["llmctl_goodmethod"]["error"] is None
    for name, reason in (("llmctl_halfway", "halfway there"), ("llmctl_cmdfail", "after the command")):
        assert plugins[name]["registers"] == {} and reason in plugins[name]["error"]

    table = run_llmctl("plugins", env=env)
    assert table.returncode == 0 and "Traceback" not in table.stderr
    rows = [line for line in table.stdout.splitlines() if "llmctl_halfway" in line]
    assert len(rows) == 1 and "failed" in rows[0] and "halfway there" in rows[0]
    assert sum("llmctl_cmdfail" in line for line in table.stdout.splitlines()) == 1
    warnings = warning_lines(table.stderr)
    assert len(warnings) == 2, warnings
    assert sum("llmctl_halfway" in w and "halfway there" in w for w in warnings) == 1

    help_text = run_llmctl("--help", env=env)
    assert help_text.returncode == 0
    assert "halfway-cmd" not in help_text.stdout and "cmdfail-cmd" not in help_text.stdout
    for command in ("halfway-cmd", "cmdfail-cmd"):
        result = run_llmctl(command, env=env)
        assert result.returncode == 2 and "should never run" not in result.stdout
        assert "No such command" in result.stderr
    ghost = run_llmctl("finetune", "smollm2-135m", "--method", "ghost", "--dry-run", env=env)
    assert ghost.returncode == 2 and ghost.stderr.splitlines()[-1].startswith("error: unknown method 'ghost'")


def test_a_failed_plugin_does_not_displace_another_plugins_method(monkeypatch, tmp_path, capsys):
    # the same, in this process: the registry hands out the working plugin's descriptor
    fake_distribution(tmp_path, "llmctl-goodmethod2", method_plugin(
        "register(Method(name='shared2', description='the good one'))"))
    fake_distribution(tmp_path, "llmctl-aaa-halfway", method_plugin(  # sorts first: it would have won "first wins"
        "register(Method(name='shared2', description='impostor')); raise RuntimeError('late failure')"))
    monkeypatch.syspath_prepend(str(tmp_path))
    host = PluginHost()
    host.load_entry_points()
    method = host.registry.get("method", "shared2")
    assert method.description == "the good one" and method.plugin == "llmctl_goodmethod2"
    assert host.infos["llmctl_aaa_halfway"].registers == {}
    assert "late failure" in host.infos["llmctl_aaa_halfway"].error
    err = capsys.readouterr().err
    assert len(warning_lines(err)) == 1 and "both register" not in err


def test_two_third_party_plugins_registering_one_name_is_an_error_naming_both(tmp_path):
    commands = """
        @hookimpl
        def register_commands(app):
            @app.command("twin-cmd")
            def twin_cmd():
                print("{who}")
    """
    for who in ("llmctl-clash-a", "llmctl-clash-b"):
        fake_distribution(tmp_path, who, method_plugin(
            f"register(Method(name='twin', description='{who}')); "
            f"register(Method(name='{who}-only', description='{who}'))", commands.replace("{who}", who)))
    env = plugin_env(tmp_path)
    help_text = run_llmctl("--help", env=env)
    assert help_text.returncode == 0 and "Traceback" not in help_text.stderr
    warnings = warning_lines(help_text.stderr)
    assert len(warnings) == 2  # one line per clashing name: the method and the command
    method_clash = next(w for w in warnings if "method 'twin'" in w)
    for name in ("llmctl_clash_a", "llmctl_clash_b"):
        assert name in method_clash and f"LLMCTL_DISABLE_PLUGINS={name}" in method_clash

    plugins = plugins_json(env)  # both are listed, once each, as failed with the clash as the reason
    for name in ("llmctl_clash_a", "llmctl_clash_b"):
        assert plugins[name]["registers"] == {} and "both register" in plugins[name]["error"]
    assert run_llmctl("models", env=env).returncode == 0  # unrelated commands keep working

    twin = run_llmctl("finetune", "smollm2-135m", "--method", "twin", "--dry-run", env=env)
    assert twin.returncode == 2 and "Traceback" not in twin.stderr
    error = twin.stderr.splitlines()[-1]
    assert error.startswith("error: plugins ") and "llmctl_clash_a" in error and "llmctl_clash_b" in error
    assert "LLMCTL_DISABLE_PLUGINS=" in error
    command = run_llmctl("twin-cmd", env=env)
    assert command.returncode == 2 and command.stderr.splitlines()[-1].startswith("error: plugins ")
    assert "llmctl-clash" not in command.stdout

    chosen = plugin_env(tmp_path, LLMCTL_DISABLE_PLUGINS="llmctl_clash_b")
    plugins = plugins_json(chosen)
    assert plugins["llmctl_clash_a"]["registers"] == {"method": ["twin", "llmctl-clash-a-only"],
                                                      "command": ["twin-cmd"]}
    assert "llmctl_clash_b" not in plugins
    result = run_llmctl("twin-cmd", env=chosen)
    assert result.returncode == 0 and result.stdout.strip() == "llmctl-clash-a" and not warning_lines(result.stderr)


def test_a_third_party_command_never_replaces_a_core_verb(tmp_path):
    fake_distribution(tmp_path, "llmctl-takeover", """
        from llmctl.hookspecs import hookimpl

        @hookimpl
        def register_commands(app):
            @app.command("models")
            def models():
                print("taken over")
    """)
    result = run_llmctl("models", env=plugin_env(tmp_path))
    assert result.returncode == 0 and "taken over" not in result.stdout and "smollm2-135m" in result.stdout
    warnings = warning_lines(result.stderr)
    assert len(warnings) == 1 and "llmctl_takeover" in warnings[0] and "precedence" in warnings[0]


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("LLMCTL_DISABLE_PLUGINS", "family-lama", "did you mean 'family-llama'?"),
    ("LLMCTL_LOAD_PLUGINS", "family-gemma,zzz-nothing", "(see `llmctl plugins`)"),
])
def test_unknown_names_in_the_switches_are_warned_about(variable, value, expected):
    result = run_llmctl("plugins", "--json", env={variable: value})
    assert result.returncode == 0
    warnings = warning_lines(result.stderr)
    assert len(warnings) == 1, warnings
    assert variable in warnings[0] and "matches no installed plugin" in warnings[0] and expected in warnings[0]
    assert "family-gemma'" not in warnings[0]  # a real plugin's name is not warned about
