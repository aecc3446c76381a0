"""Benchmark results as data, and the Markdown page `make bench` writes."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from importlib import metadata


@dataclass
class Row:
    """One measured subject next to its baseline from the same run."""

    subject: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    higher_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float:
        """How many times better the subject is than the baseline (> 1 means better)."""
        if not self.baseline_value or not self.value:
            return float("nan")
        return self.value / self.baseline_value if self.higher_is_better else self.baseline_value / self.value


@dataclass
class Section:
    """A group of rows measured together, with the method used."""

    title: str
    method: str
    rows: list[Row] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (else the architecture)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def machine_summary() -> list[str]:
    """Lines describing the machine and library versions."""
    import os

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = ", ".join(f"{p} {_version(p)}" for p in ("llmctl", "torch", "transformers", "peft", "trl",
                                                          "llama_cpp_python", "gguf"))
    return [
        f"- Machine: {_cpu_name()}, {os.cpu_count()} cores, {memory:.1f} GiB RAM, {platform.platform()}",
        f"- Python {platform.python_version()}; {versions}",
        f"- Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `make bench`",
    ]


def _format(value: float) -> str:
    if value != value:  # NaN
        return "–"
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"


def to_markdown(sections: list[Section]) -> str:
    """The whole benchmarks page."""
    lines = ["# Benchmarks", "", "Every number below comes from one run of `make bench` on the machine described; "
             "each ratio compares against the baseline a user would otherwise use, measured in the same run.", ""]
    lines += machine_summary()
    for section in sections:
        lines += ["", f"## {section.title}", "", section.method, ""]
        if section.error:
            lines += [f"**Not measured:** {section.error}", ""]
            continue
        lines += ["| subject | value | baseline | baseline value | ratio (× better) | note |",
                  "|---|---|---|---|---|---|"]
        for row in section.rows:
            lines.append(f"| {row.subject} | {_format(row.value)} {row.unit} | {row.baseline} | "
                         f"{_format(row.baseline_value)} {row.unit} | {_format(row.ratio)} | {row.note} |")
        lines += ["", f"_Section took {section.seconds:.0f} s._"]
    return "\n".join(lines) + "\n"
