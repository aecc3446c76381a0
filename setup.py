"""Package discovery for setuptools; everything else about the build is in pyproject.toml.

``llmctl/`` installs as ``llmctl`` and ``plugins/`` as ``llmctl_plugins`` (``package-dir`` in pyproject.toml).
pyproject's ``[tool.setuptools.packages.find]`` names a package after its folder and cannot install ``plugins/``
under another name, so both folders are searched here: a new package under either needs no edit, and nothing
outside them (tests/, benchmarks/, docs/, recipes/) is ever installed.
"""

from setuptools import find_packages, setup

CORE = "llmctl"
PLUGINS = "llmctl_plugins"  # the import name of the plugins/ folder
PLUGINS_DIR = "plugins"


def discovered_packages() -> list[str]:
    """Every package under llmctl/ and plugins/ (a folder with an ``__init__.py``), by its installed name."""
    core = find_packages(include=[CORE, f"{CORE}.*"])
    plugins = find_packages(include=[PLUGINS_DIR, f"{PLUGINS_DIR}.*"])
    return core + [PLUGINS + name.removeprefix(PLUGINS_DIR) for name in plugins]


setup(packages=discovered_packages())
