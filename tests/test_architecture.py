"""docs/architecture.md matches the code: its layer table holds for every import, and every path it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
# The upward imports the page lists, each inside a function on purpose.
ALLOWED_UPWARD = {("config", "plugins"), ("config", "registry"), ("verbs", "plugins"), ("recipes", "cli")}


def documented_layers() -> dict[str, int]:
    """``{top-level core module: layer}`` read from the page's layer table."""
    layers = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^layer (\d)  (.+?)(?:\s{2,}.*)?$", line)
        if match:
            for name in match.group(2).split():
                layers[name] = int(match.group(1))
    return layers


def top_level(path: Path) -> str:
    """The core module or package a file belongs to (``llmctl/train/loop.py`` → ``train``)."""
    return path.relative_to(ROOT / "llmctl").parts[0].removesuffix(".py")


def core_imports(path: Path) -> set[str]:
    """Top-level core modules ``path`` imports (any depth, functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        found.update(n.split(".")[1] for n in names if n.startswith("llmctl.") and n.count(".") >= 1)
    return found


def test_every_core_module_has_a_documented_layer():
    layers = documented_layers()
    assert len(set(layers.values())) == 6
    entries = {p.name.removesuffix(".py") for p in (ROOT / "llmctl").iterdir()
               if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    missing = sorted(entries - set(layers) - {"__init__", "__main__"})
    assert not missing, f"core modules with no layer in docs/architecture.md: {missing}"
    assert not sorted(set(layers) - entries), "the page names core modules that do not exist"


def test_imports_point_down_the_documented_layers():
    layers = documented_layers()
    wrong = []
    for path in sorted((ROOT / "llmctl").rglob("*.py")):
        me = top_level(path)
        if me not in layers:
            continue
        for other in core_imports(path) - {me}:
            if other in layers and layers[other] > layers[me] and (me, other) not in ALLOWED_UPWARD:
                wrong.append(f"{path.relative_to(ROOT)} (layer {layers[me]}) imports {other} (layer {layers[other]})")
    assert not wrong, "\n".join(wrong)


def test_every_path_the_page_names_exists():
    text = DOC.read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:llmctl|plugins|benchmarks|docs|tests)/[^`\s]*)`", text))
    assert len(paths) > 15
    missing = [p for p in sorted(paths) if "<" not in p and not (ROOT / p.rstrip("/")).exists()]
    assert not missing, missing
