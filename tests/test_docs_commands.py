"""Every ``llmctl`` command shown in README.md and docs/ runs as shown.

The commands come from the fenced code blocks: in shell blocks (```bash, ```sh, ```console or no language) a line
that starts with ``llmctl `` or ``echo … | llmctl``, or a console prompt ``$ llmctl …``; a trailing ``\\`` continues
a command on the next line and a trailing ``# comment`` is dropped. Each command is run exactly as written with
``bash -c``, from one session-wide folder that holds ``recipes`` (a link to the project's) and ``runs/`` (the
default runs folder: ``LLMCTL_RUNS_DIR`` is unset), with empty stdin, the project's ``llmctl`` first on PATH and a
store of its own. Pages run in reading order (README.md, then the pages in the order docs/index.md links them) and
commands in document order, because later ones use what earlier ones wrote (``--name smol-dora`` then
``--adapter runs/smol-dora``). A command that appears again later (README repeats the guides) runs once, at its
first appearance; its later appearances are checked against that run.

A command must exit 0, unless a console block shows what it prints: then that first output line must appear
(whitespace aside; the docs' store path stands for this store), the exit status must be the one a following
``$ echo $?`` shows (non-zero when the output is an ``error:`` line), and no traceback may appear.

Only the commands in ``CANNOT_RUN_HERE`` are skipped, with the reason; an entry no page shows any more fails
``test_cannot_run_here_lists_only_documented_commands``. Commands that load a model are marked ``slow`` and
``docs``: ``make test`` runs the light ones, ``make test-docs`` the rest (about 14 minutes on a 2-core CPU).

The store is not the shared ``tests/.cache/llmctl-home`` itself (the docs remove a model from the store, write
named artefacts that a second session would find already there, and record finished recipe steps there) but a
fresh one per session whose bundled models are hard links to the shared home's, so the one-time conversion of the
bundled models is still shared.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent

# Commands this machine cannot run: "gpu" (needs CUDA) or "network" (needs a model hub). Keep it short and true.
CANNOT_RUN_HERE = {
    "llmctl download HuggingFaceTB/SmolLM2-360M-Instruct --dry-run": "network",
    'llmctl download mistral-7b --revision main --include "*.json"': "network",
}

SHELL_BLOCKS = {"", "bash", "sh", "shell", "console"}
FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
PIPED = re.compile(r"^echo\s.*\|\s*llmctl\s")
# the store path a page's real output shows; it stands for this session's store
DOC_HOMES = ("/root/.cache/llmctl", "~/.cache/llmctl")
BUNDLED = ("smollm2-135m", "gemma3-270m")
# verbs that answer without loading a model (everything else is marked slow and docs)
LIGHT = re.compile(r"^llmctl (plugins|models|info|env|runs|rm|download|recipe (list|show|cp))\b|--dry-run|--list\b")


@dataclass(frozen=True)
class DocCommand:
    """One command as a page shows it."""

    page: str  # path relative to the project
    line: int
    text: str  # what runs (comment and console prompt removed)
    output: str | None = None  # first output line a console block shows
    status: int | None = None  # exit status a following `$ echo $?` shows

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` inside quotes or inside a word stays)."""
    quote, index = None, 0
    while index < len(line):
        char = line[index]
        if char == "\\" and quote != "'":
            index += 2  # an escaped character
            continue
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
        index += 1
    return line.rstrip()


def is_command(text: str) -> bool:
    return text.startswith("llmctl ") or bool(PIPED.match(text))


def page_order() -> list[Path]:
    """README.md, the pages in the order docs/index.md links them, then any other page."""
    linked = [DOCS / target for target in re.findall(r"\]\(([^)#]+\.md)\)", (DOCS / "index.md").read_text())]
    pages = [ROOT / "README.md", DOCS / "index.md"]
    for page in [*linked, *sorted(DOCS.rglob("*.md"))]:
        if page.is_file() and page not in pages and "build" not in page.relative_to(DOCS).parts:
            pages.append(page)
    return pages


def commands_in(page: Path) -> list[DocCommand]:
    """The commands in one page's shell code blocks, in document order."""
    found: list[DocCommand] = []
    lines = page.read_text().splitlines()
    relative = page.relative_to(ROOT).as_posix()
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        index += 1
        if not fence:
            continue
        block: list[tuple[int, str]] = []
        while index < len(lines) and not lines[index].strip().startswith(fence.group(1)):
            block.append((index + 1, lines[index]))
            index += 1
        index += 1
        if fence.group(2).lower() in SHELL_BLOCKS:
            found += _block_commands(relative, block, fence.group(2).lower() == "console")
    return found


def _block_commands(page: str, block: list[tuple[int, str]], console: bool) -> list[DocCommand]:
    console = console or any(text.startswith("$ ") for _, text in block)
    found: list[DocCommand] = []
    position = 0
    while position < len(block):
        number, text = block[position]
        position += 1
        if console and not text.startswith("$ "):
            continue
        text = text[2:] if console else text
        while text.endswith("\\") and position < len(block):  # a continued command
            text = text[:-1].rstrip() + " " + block[position][1].strip()
            position += 1
        text = strip_comment(text.strip())
        if not is_command(text):
            continue
        output, status = None, None
        if console:
            shown = []
            while position + len(shown) < len(block) and not block[position + len(shown)][1].startswith("$ "):
                shown.append(block[position + len(shown)][1])
            output = next((line for line in shown if line.strip()), None)
            after = position + len(shown)
            if after + 1 < len(block) and block[after][1].strip() == "$ echo $?":
                status = int(block[after + 1][1].strip())
        found.append(DocCommand(page, number, text, output, status))
    return found


def all_commands() -> list[DocCommand]:
    return [command for page in page_order() for command in commands_in(page)]


COMMANDS = all_commands()


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _param(command: DocCommand):
    marks = []
    reason = CANNOT_RUN_HERE.get(command.text)
    if reason == "gpu":  # runs where there is a GPU
        marks.append(pytest.mark.skipif(not _has_cuda(), reason="gpu"))
    elif reason:
        marks.append(pytest.mark.skip(reason=reason))
    if not LIGHT.search(command.text):
        marks += [pytest.mark.slow, pytest.mark.docs]
    return pytest.param(command, id=command.id, marks=marks)


def _link_tree(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` with hard links where the disk allows (a real copy elsewhere)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


@pytest.fixture(scope="session")
def docs_session(tmp_path_factory):
    """The folder the commands run in, their environment, and the results of the commands run so far."""
    work = tmp_path_factory.mktemp("docs")
    (work / "recipes").symlink_to(ROOT / "recipes", target_is_directory=True)
    shared = Path(os.environ["LLMCTL_HOME"])
    home = work / "llmctl-home"
    base_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}
    base_env.pop("LLMCTL_RUNS_DIR", None)
    for model in BUNDLED:
        if not (shared / "models" / model / "llmctl.json").is_file():  # convert once, for every test session
            subprocess.run([str(BIN / "llmctl"), "download", model], env=base_env, check=True,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
        _link_tree(shared / "models" / model, home / "models" / model)
    env = {**base_env, "LLMCTL_HOME": str(home)}
    return {"cwd": work, "env": env, "home": home, "results": {}}


def run_command(session, command: DocCommand) -> subprocess.CompletedProcess:
    """Run the command once per session (a later appearance gets the first run's result)."""
    results = session["results"]
    if command.text not in results:
        results[command.text] = subprocess.run(
            ["bash", "-c", command.text], cwd=session["cwd"], env=session["env"], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    return results[command.text]


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("command", [_param(c) for c in COMMANDS])
def test_doc_command_runs_as_shown(command: DocCommand, docs_session):
    assert (BIN / "llmctl").exists(), f"no llmctl next to {sys.executable}"
    result = run_command(docs_session, command)
    shown = f"$ {command.text}\n(exit {result.returncode})\n{result.stdout[-6000:]}"
    assert "Traceback (most recent call last)" not in result.stdout, shown
    if command.output is None:
        assert result.returncode == 0, shown
        return
    expected = command.output
    for doc_home in DOC_HOMES:
        expected = expected.replace(doc_home, str(docs_session["home"]))
    assert _flat(expected) in _flat(result.stdout), f"the page shows {command.output!r}\n{shown}"
    if command.status is not None:
        assert result.returncode == command.status, shown
    elif command.output.startswith("error:"):
        assert result.returncode != 0, shown
    else:
        assert result.returncode == 0, shown


def test_commands_are_found():
    """The extraction sees every page's commands (a broken parser must not pass by finding none)."""
    pages = {command.page for command in COMMANDS}
    assert {"README.md", "docs/guide/finetune.md", "docs/guide/quantize.md", "docs/methods/ppo.md"} <= pages
    assert len(COMMANDS) > 40
    consoles = [c for c in COMMANDS if c.output is not None]
    assert any(c.status == 4 for c in consoles) and any(c.output.startswith("error:") for c in consoles)


def test_cannot_run_here_lists_only_documented_commands():
    documented = {command.text for command in COMMANDS}
    stale = sorted(set(CANNOT_RUN_HERE) - documented)
    assert not stale, f"CANNOT_RUN_HERE lists commands no page shows any more: {stale}"
    assert set(CANNOT_RUN_HERE.values()) <= {"gpu", "network"}


def test_strip_comment_respects_quotes():
    assert strip_comment('llmctl chat m --prompt "a # b"  # note') == 'llmctl chat m --prompt "a # b"'
    assert strip_comment("llmctl download m --include '*.json#x' # c") == "llmctl download m --include '*.json#x'"
    assert strip_comment("llmctl info a#b") == "llmctl info a#b"
