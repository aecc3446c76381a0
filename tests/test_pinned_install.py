"""``make install`` installs exactly the pinned dependency set in ``constraints.txt``, no more and no fewer.

A fresh clone must reproduce the set the suite last passed with; an upgrade is a deliberate ``make lock`` commit.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "constraints.txt"
# Installed by the venv itself, not by the project; and the project, installed editable from the clone.
NOT_PINNED = {"pip", "llmctl"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _public(version: str) -> str:
    """The version without a local label (``2.13.0+cpu`` is the CPU build of ``2.13.0``)."""
    return version.split("+", 1)[0]


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: {line!r} is not pinned with =="
            pins[_canonical(name)] = version.strip()
    return pins


def _installed() -> dict[str, str]:
    return {_canonical(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def test_every_pinned_package_is_installed_at_its_pinned_version() -> None:
    pins, installed = _pins(), _installed()
    assert "torch" in pins and "transformers" in pins and "llama-cpp-python" in pins
    wrong = {name: (version, installed.get(name)) for name, version in pins.items()
             if _public(installed.get(name, "")) != version}
    assert not wrong, f"installed versions differ from constraints.txt (pinned, installed): {wrong}"


def test_nothing_is_installed_that_the_pinned_set_does_not_name() -> None:
    pins = _pins()
    extra = sorted(name for name in _installed() if name not in pins and name not in NOT_PINNED)
    assert not extra, f"installed but not pinned in constraints.txt (run `make lock`): {extra}"
