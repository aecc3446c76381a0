"""`python -m benchmarks`: run the benchmark suite and rewrite docs/benchmarks.md."""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

from benchmarks import ROOT
from benchmarks.report import Section, to_markdown

# Each entry: "module:function" returning a Section. Sections run in this order, all in one process run.
SUITE = (
    "benchmarks.startup:run",
    "benchmarks.decode:run",
    "benchmarks.finetune:run",
    "benchmarks.finetune:run_precision",
    "benchmarks.align:run",
    "benchmarks.grpo:run",
    "benchmarks.quantization:run",
)


def run_suite(only: list[str] | None = None) -> list[Section]:
    """Run every suite entry (or those whose module name contains one of ``only``); failures become notes."""
    sections = []
    for entry in SUITE:
        module_name, function_name = entry.split(":")
        if only and not any(word in module_name for word in only):
            continue
        started = time.perf_counter()
        print(f"bench: {entry} …", flush=True)
        try:
            section = getattr(importlib.import_module(module_name), function_name)()
        except Exception as error:  # one failing section must not lose the others' numbers
            section = Section(entry, "", error=f"{type(error).__name__}: {error}")
        section.seconds = time.perf_counter() - started
        sections.append(section)
        print(f"bench: {entry} done in {section.seconds:.0f} s", flush=True)
    return sections


def main() -> None:
    """Run the suite and write the Markdown report atomically."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--only", nargs="*", help="run only suite entries whose module contains these words")
    args = parser.parse_args()
    sections = run_suite(args.only)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_suffix(".md.tmp")
    temporary.write_text(to_markdown(sections))
    temporary.replace(output)
    print(f"bench: wrote {output}")


if __name__ == "__main__":
    main()
