"""The layers point one way, read from the import graph (ast, every import including those inside functions).

- the core (``llmctl/``) never imports the builtin plugins (``llmctl_plugins``) nor names one of their modules;
- the layers below the CLI never import ``llmctl.cli``;
- no plugin imports a ``_``-prefixed (private) module or name of another plugin: a plugin is the package
  ``plugins/<kind>/<name>/`` or the single module ``plugins/<kind>/<name>.py``;
- ``quantize --eval`` measures through the core quality module, not through ``llmctl.bench``;
- nothing installed (``llmctl``, ``llmctl_plugins``) imports the ``benchmarks/`` suite, which is outside the wheel.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "llmctl"
PLUGINS = ROOT / "plugins"
PLUGINS_PACKAGE = "llmctl_plugins"
# Layers below the CLI: packages under llmctl/ and single modules (llmctl/<name>.py).
BELOW_CLI = ("train", "data", "models", "convert", "generate", "quantize", "console", "quality", "verbs", "bench")


def module_name(path: Path) -> str:
    """The dotted import name of a source file under llmctl/ or plugins/ (plugins/ installs as llmctl_plugins)."""
    if path.is_relative_to(PLUGINS):
        parts = [PLUGINS_PACKAGE, *path.relative_to(PLUGINS).with_suffix("").parts]
    else:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path, name: str | None = None) -> Iterator[tuple[int, str]]:
    """``(line, dotted name)`` for each import in ``path``; ``from m import n`` yields ``m`` and ``m.n``.

    Relative imports are resolved against the file's own package (that of ``name`` when given).
    """
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{module}.{alias.name}"


def strings(path: Path) -> Iterator[tuple[int, str]]:
    """Every string constant in ``path`` except docstrings (prose may mention a module; code may not load one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def sources(folder: Path) -> list[Path]:
    """The Python files under ``folder``."""
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def is_under(module: str, package: str) -> bool:
    """Whether ``module`` is ``package`` or inside it."""
    return module == package or module.startswith(package + ".")


def plugin_of(module: str) -> tuple[str, ...]:
    """The plugin a dotted name under llmctl_plugins belongs to: ``(kind, name)``, or shorter above a plugin."""
    return tuple(module.split(".")[1:3])


def private_part(module: str) -> bool:
    """Whether a dotted name under llmctl_plugins reaches a ``_``-prefixed plugin, module or name."""
    return any(part.startswith("_") for part in module.split(".")[2:])


def where(path: Path, line: int) -> str:
    """``file:line`` relative to the project root."""
    return f"{path.relative_to(ROOT)}:{line}"


def test_the_core_never_imports_or_names_a_builtin_plugin():
    """No module under llmctl/ imports llmctl_plugins or loads one of its modules by name."""
    found = [f"{where(path, line)} imports {name}" for path in sources(CORE) for line, name in imports(path)
             if is_under(name, PLUGINS_PACKAGE)]
    found += [f"{where(path, line)} names {text!r}" for path in sources(CORE) for line, text in strings(path)
              if PLUGINS_PACKAGE in text]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("layer", BELOW_CLI)
def test_layers_below_the_cli_never_import_it(layer):
    """llmctl/<layer> (a package or a single module) never imports llmctl.cli."""
    files = sources(CORE / layer) if (CORE / layer).is_dir() else [CORE / f"{layer}.py"]
    assert all(path.is_file() for path in files) and files, f"llmctl/{layer} is gone: update BELOW_CLI"
    found = [f"{where(path, line)} imports {name}" for path in files for line, name in imports(path)
             if is_under(name, "llmctl.cli")]
    assert not found, "\n".join(found)


def test_no_plugin_imports_another_plugins_private_module():
    """A plugin may import its own ``_`` modules; another plugin's are not API (the rule of check_layers.py)."""
    found = []
    for path in sources(PLUGINS):
        mine = plugin_of(module_name(path))
        for line, name in imports(path):
            if is_under(name, PLUGINS_PACKAGE) and plugin_of(name) != mine and private_part(name):
                found.append(f"{where(path, line)} imports {name}")
    assert not found, "\n".join(sorted(set(found)))


def test_quantize_measures_quality_through_the_core_not_bench():
    """``quantize --eval`` uses llmctl.quality, the module ``benchmark`` uses too; llmctl.bench is a verb's service."""
    found = [f"{where(path, line)} imports {name}" for path in sources(CORE / "quantize")
             for line, name in imports(path) if is_under(name, "llmctl.bench")]
    assert not found, "\n".join(found)
    assert any(is_under(name, "llmctl.quality") for _, name in imports(CORE / "quantize" / "evaluate.py"))


def test_nothing_installed_imports_the_benchmark_suite():
    """benchmarks/ is outside the wheel: neither llmctl nor llmctl_plugins may import it."""
    found = [f"{where(path, line)} imports {name}" for folder in (CORE, PLUGINS) for path in sources(folder)
             for line, name in imports(path) if is_under(name, "benchmarks")]
    assert not found, "\n".join(found)


def test_the_checks_see_relative_and_nested_imports(tmp_path):
    """The import reader resolves relative imports and finds imports inside functions (or the tests above lie)."""
    plugin = PLUGINS / "methods" / "lora" / "__init__.py"
    assert module_name(plugin) == "llmctl_plugins.methods.lora"
    assert plugin_of("llmctl_plugins.methods.lora._method") == ("methods", "lora")
    assert private_part("llmctl_plugins.families._configs") and not private_part("llmctl_plugins.methods.lora")
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from .._align import x\n    from . import _own\n    import llmctl.cli\n")
    names = [name for _, name in imports(probe, "llmctl_plugins.methods.lora.probe")]
    assert "llmctl_plugins.methods._align" in names and "llmctl_plugins.methods.lora._own" in names
    assert "llmctl.cli" in names


def test_console_and_help_import_no_torch():
    """The bottom console layer and ``llmctl --help`` stay light: neither imports torch."""
    code = ("import sys, contextlib, io\nimport llmctl.console\nassert 'torch' not in sys.modules, 'console'\n"
            "from llmctl.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['--help'])\n"
            "assert 'torch' not in sys.modules, 'help'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
