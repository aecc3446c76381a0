"""A fault and bad-input campaign over the CLI, run as a user would (``python -m tests.fault_campaign``).

Each case runs the real ``llmctl`` in a fresh store on tiny random models and checks what a user sees: bad input
exits non-zero with one line on stderr, no traceback and no raw exception class name; valid input exits 0; an
interrupted or concurrent writer leaves no half-written or lost artefact. It prints one line per case and a summary,
and exits 1 if any case failed. It is not part of ``make test`` (it takes minutes); the classes it found each have a
fast test of their own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.cli_helpers import LLMCTL
from tests.convert_fixtures import tiny_model_dir

RAW_EXCEPTION = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b|Traceback|error: error:")
GOOD = {"instruction": "Say hi.", "output": "Hi!"}


@dataclass
class Case:
    """One command and what it must do: ``ok`` (exit 0) or ``refuse`` (non-zero, one clean line)."""

    name: str
    args: list[str]
    expect: str = "refuse"
    env: dict[str, str] | None = None
    check: Callable[[subprocess.CompletedProcess], str | None] | None = None


class Campaign:
    """The cases and the folder they write in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.runs = root / "runs"
        self.model = tiny_model_dir(root / "tiny-llama", "llama")
        self.env = {**os.environ, "LLMCTL_HOME": str(self.home), "LLMCTL_RUNS_DIR": str(self.runs),
                    "COLUMNS": "200"}

    def file(self, name: str, content: str | bytes) -> str:
        """Write a file for a case and return its path."""
        path = self.root / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(path)

    def model_copy(self, name: str, edit: Callable[[Path], None]) -> str:
        """A copy of the tiny model with ``edit`` applied (a damaged file, a changed config)."""
        import shutil

        target = self.root / "models" / name
        shutil.copytree(self.model, target)
        edit(target)
        return str(target)

    def run(self, args: list[str], env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        """``llmctl ARGS`` in the campaign's store."""
        return subprocess.run([LLMCTL, *args], capture_output=True, text=True, env={**self.env, **(env or {})},
                              timeout=timeout, cwd=self.root, stdin=subprocess.DEVNULL)


def judge(case: Case, done: subprocess.CompletedProcess) -> str | None:
    """Why ``done`` is wrong for ``case``, or None when it is right."""
    lines = [line for line in done.stderr.strip().splitlines() if line.startswith("error:")]
    if done.returncode < 0:
        return f"killed by signal {-done.returncode}"
    if case.expect == "ok" and done.returncode != 0:
        return f"exit {done.returncode}: {done.stderr.strip()[-300:]}"
    if case.expect == "refuse":
        if done.returncode == 0:
            return "exit 0 on bad input"
        if len(lines) != 1:
            return f"{len(lines)} error lines: {done.stderr.strip()[-300:]}"
    if RAW_EXCEPTION.search(done.stderr):
        return f"raw exception in message: {done.stderr.strip()[-300:]}"
    return case.check(done) if case.check else None


def data_cases(c: Campaign) -> list[Case]:
    """Bad (and two valid but unusual) data files for ``finetune``."""
    finetune = ["finetune", str(c.model), "--method", "lora", "max_steps=1", "val_split=0", "save_every=0"]
    good = json.dumps(GOOD)
    files = {
        "empty": "", "blank-lines": "\n\n\n", "not-json": "hello\n", "garbage": os.urandom(512),
        "deep-nesting": "[" * 100000 + "]" * 100000 + "\n", "list-row": "[1, 2]\n",
        "wrong-types": json.dumps({"instruction": 5, "output": ["x"]}) + "\n",
        "missing-output": json.dumps({"instruction": "x"}) + "\n", "bad-line-3": f"{good}\n{good}\n{{oops\n",
        "null-row": "null\n", "utf16": good.encode("utf-16"), "huge-number": '{"instruction": 1e999}\n',
    }
    cases = [Case(f"data {name}", [*finetune, "--data", c.file(f"{name}.jsonl", text)])
             for name, text in files.items()]
    cases += [
        Case("data /dev/null", [*finetune, "--data", "/dev/null"]),
        Case("data directory", [*finetune, "--data", str(c.root)]),
        Case("data missing", [*finetune, "--data", str(c.root / "nope.jsonl")]),
        Case("data UTF-8 BOM (valid)", [*finetune, "--data", c.file("bom.jsonl", "\ufeff" + good + "\n"),
                                         "--name", "bom-run"], expect="ok"),
        Case("data CRLF (valid)", [*finetune, "--data", c.file("crlf.jsonl", good + "\r\n" + good + "\r\n"),
                                    "--name", "crlf-run"], expect="ok"),
    ]
    return cases


def settings_cases(c: Campaign) -> list[Case]:
    """Out-of-range, mistyped and unknown settings, caught by ``--dry-run``."""
    data = c.file("good.jsonl", json.dumps(GOOD) + "\n")
    dry = ["finetune", str(c.model), "--data", data, "--dry-run"]
    bad = ["max_steps=-1", "max_steps=0", "max_steps=99999999999999999999999", "grad_accum=0", "batch_size=0",
           "max_length=0", "val_split=1.5", "val_split=-0.1", "save_every=-1", "max_grad_norm=-1",
           "learning_rate=-1", "learning_rate=nan", "learning_rate=inf", "warmup_ratio=2", "weight_decay=-1",
           "eval_every=-1", "seed=-3", "schedule=bogus", "precision=fp8", "dtype=int8", "packing=maybe",
           "lora_r=0", "lora_dropout=1.5", "no_such_setting=1", "=3", "max_steps", "val_data=/nope.jsonl"]
    cases = [Case(f"setting {item}", [*dry, item]) for item in bad]
    cases += [Case(f"dpo {item}", [*dry, "--method", "dpo", item]) for item in ("loss_type=bogus", "beta=0")]
    cases += [Case(f"nproc {n}", [*dry, "--nproc", n]) for n in ("-1", "0", "1000", "x")]
    cases += [Case("method unknown", [*dry, "--method", "lorra"]), Case("good dry run", dry, expect="ok")]
    return cases


def chat_cases(c: Campaign) -> list[Case]:
    """Bad chat arguments."""
    chat = ["chat", str(c.model), "--prompt", "hi", "--max-new-tokens", "4"]
    bad = [["--temperature", "nan"], ["--temperature", "-1"], ["--top-p", "2"], ["--top-p", "0"],
           ["--context", "0"], ["--max-new-tokens", "1e20"], ["--max-new-tokens", "-5"], ["--engine", "nope"],
           ["--adapter", str(c.root / "nope")], ["--seed", "x"]]
    cases = [Case(f"chat {' '.join(args)}", [*chat, *args]) for args in bad]
    cases += [Case("chat unknown model", ["chat", "smollm3-135m", "--prompt", "hi"]),
              Case("chat good", chat, expect="ok")]
    return cases


def file_cases(c: Campaign) -> list[Case]:
    """Damaged model files and configs, through info, chat and convert."""
    gguf = c.run(["convert", str(c.model), "--to", "gguf", "--name", "campaign-gguf"])
    assert gguf.returncode == 0, gguf.stderr
    whole = next((c.home / "models" / "campaign-gguf").glob("*.gguf")).read_bytes()
    broken_ggufs = {"truncated": whole[: len(whole) // 3], "header-only": whole[:24], "zero-byte": b"",
                    "garbage": b"GGUF" + os.urandom(4096)}

    def damage(filename: str, content: bytes | None = None, edit_config: dict | None = None):
        def edit(folder: Path) -> None:
            if edit_config is not None:
                config = json.loads((folder / "config.json").read_text())
                config.update(edit_config)
                (folder / "config.json").write_text(json.dumps(config))
            if content is not None:
                (folder / filename).write_bytes(content)
        return edit

    weights = (c.model / "model.safetensors").read_bytes()
    folders = {
        "safetensors truncated": damage("model.safetensors", weights[: len(weights) // 2]),
        "safetensors garbage": damage("model.safetensors", os.urandom(2048)),
        "safetensors zero-byte": damage("model.safetensors", b""),
        "config invalid json": damage("config.json", b"{not json"),
        "config auto_map": damage("config.json", edit_config={"auto_map": {"AutoModelForCausalLM": "m.M"},
                                                               "model_type": "custom-thing"}),
        "config unknown model_type": damage("config.json", edit_config={"model_type": "not-a-model"}),
        "config empty": damage("config.json", b""),
    }
    cases = []
    for name, content in broken_ggufs.items():
        path = c.file(f"{name}.gguf", content)
        cases += [Case(f"gguf {name}: {verb}", args) for verb, args in (
            ("info", ["info", path]), ("chat", ["chat", path, "--prompt", "hi", "--max-new-tokens", "2"]))]
    for index, (name, edit) in enumerate(folders.items()):
        folder = c.model_copy(f"broken-{index}", edit)
        cases += [Case(f"{name}: {verb}", args) for verb, args in (
            ("info", ["info", folder]), ("chat", ["chat", folder, "--prompt", "hi", "--max-new-tokens", "2"]),
            ("convert", ["convert", folder, "--to", "gguf", "--name", f"broken-{index}-gguf"]))]
    return cases


def name_and_store_cases(c: Campaign) -> list[Case]:
    """Names that escape the store, a runs folder that is a file, odd store paths, recipes."""
    data = c.file("good.jsonl", json.dumps(GOOD) + "\n")
    runs_file = c.file("runs-file", "not a folder")
    cycle = c.file("cycle.yaml", "name: cyc\nsettings:\n  a: ${b}\n  b: ${a}\nsteps:\n  - info: ${a}\n")
    bad_flag = c.file("flag.yaml", f"name: flag\nsteps:\n  - info:\n      model: {c.model}\n      bogus: 1\n")
    cases = []
    for name in ("../escape", "/abs/escape", ".hidden", "a/b", "", "x" * 300):
        cases += [Case(f"finetune --name {name!r}", ["finetune", str(c.model), "--data", data, "--dry-run",
                                                    "--name", name]),
                  Case(f"convert --name {name!r}", ["convert", str(c.model), "--to", "gguf", "--name", name]),
                  Case(f"quantize --name {name!r}", ["quantize", str(c.model), "--method", "gguf:q8_0",
                                                     "--name", name])]
    cases += [
        Case("runs dir is a file: runs", ["runs"], env={"LLMCTL_RUNS_DIR": runs_file}),
        Case("runs dir is a file: finetune", ["finetune", str(c.model), "--data", data, "max_steps=1"],
             env={"LLMCTL_RUNS_DIR": runs_file}),
        Case("store is a file", ["convert", str(c.model), "--to", "gguf"], env={"LLMCTL_HOME": runs_file}),
        Case("recipe cycle", ["recipe", "run", cycle, "--dry-run"]),
        Case("recipe unknown flag", ["recipe", "run", bad_flag, "--dry-run"]),
        Case("recipe missing", ["recipe", "run", str(c.root / "nope.yaml")]),
        Case("info of a folder (valid)", ["info", str(c.model)], expect="ok"),
    ]
    return cases


def interrupt_cases(c: Campaign) -> list[str]:
    """SIGKILL and SIGINT during convert and finetune, and two writers of one name; returns the failures."""
    failures = []
    data = c.file("many.jsonl", "".join(json.dumps(GOOD) + "\n" for _ in range(64)))
    for sig in (signal.SIGKILL, signal.SIGINT):
        for delay in (0.5, 2.0, 4.0):
            name = f"killed-{sig.name}-{delay}"
            process = subprocess.Popen([LLMCTL, "convert", str(c.model), "--to", "gguf", "--name", name],
                                       env=c.env, cwd=c.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(delay)
            process.send_signal(sig)
            process.communicate(timeout=120)
            folder = c.home / "models" / name
            if folder.exists() and not (folder / "llmctl.json").exists():
                failures.append(f"{name}: half-written artefact {folder}")
    run = "killed-run"
    process = subprocess.Popen([LLMCTL, "finetune", str(c.model), "--data", data, "max_steps=100000", "--name", run,
                                "save_every=5"], env=c.env, cwd=c.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics, deadline = c.runs / run / "metrics.jsonl", time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:  # kill it mid-training, a few steps in
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 8:
            break
        time.sleep(0.2)
    process.kill()
    process.communicate()
    listed = c.run(["runs"])
    if "interrupted" not in listed.stdout or f"--resume {run}" not in listed.stdout:
        failures.append(f"SIGKILLed run not shown as interrupted with its resume command: {listed.stdout[-300:]}")
    writers = [subprocess.Popen([LLMCTL, "convert", str(c.model), "--to", "gguf", "--dtype", dtype, "--name",
                                 "conc"], env=c.env, cwd=c.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for dtype in ("q8_0", "f16")]
    outcomes = [(w.wait(timeout=300), w.communicate()[1]) for w in writers]
    if sorted(code == 0 for code, _ in outcomes) != [False, True]:
        failures.append(f"two writers of one name: exit codes {[code for code, _ in outcomes]}")
    return failures


def main() -> None:
    """Run every case and print a summary; exit 1 if any failed."""
    with tempfile.TemporaryDirectory(prefix="llmctl-campaign-") as scratch:
        campaign = Campaign(Path(scratch))
        cases = [*settings_cases(campaign), *data_cases(campaign), *chat_cases(campaign),
                 *file_cases(campaign), *name_and_store_cases(campaign)]
        failures = []
        for case in cases:
            done = campaign.run(case.args, env=case.env)
            why = judge(case, done)
            print(f"{'FAIL' if why else 'ok  '} {case.name}" + (f": {why}" if why else ""), flush=True)
            if why:
                failures.append(f"{case.name}: {why}")
        interrupted = interrupt_cases(campaign)
        for failure in interrupted:
            print(f"FAIL {failure}", flush=True)
        failures += interrupted
        print(f"{len(cases) + 9 - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
