"""The smoke lane's shared pieces: the wheels (built once per run) and the pipx/uv tools venv."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.smoke.installs import DIST, DISTRIBUTIONS, Sandbox


@pytest.fixture(scope="session")
def caches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Download caches shared by every sandbox of this run (pip's and uv's; never an install)."""
    return tmp_path_factory.mktemp("caches")


@pytest.fixture(scope="session")
def tools(tmp_path_factory: pytest.TempPathFactory, caches: Path) -> Path:
    """A folder holding only ``pipx`` and ``uv``, from PyPI, in a venv of their own."""
    root = tmp_path_factory.mktemp("tools")
    links = root / "bin"
    links.mkdir()
    box = Sandbox.make(root / "sandbox", links, caches)
    venv = root / "venv"
    box.run("python3", "-m", "venv", venv)
    box.run(venv / "bin" / "python", "-m", "pip", "install", "-q", "pipx", "uv")
    for name in ("pipx", "uv"):
        (links / name).symlink_to(venv / "bin" / name)
    return links


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory, caches: Path) -> dict[str, Path]:
    """The four wheels, built once per run by the documented command into ``dist/``: folder -> wheel."""
    box = Sandbox.make(tmp_path_factory.mktemp("build"), tmp_path_factory.mktemp("no-tools"), caches)
    box.documented("build")
    built = {}
    for folder in DISTRIBUTIONS:
        (wheel,) = DIST.glob(f"{folder}-*.whl")
        built[folder] = wheel
    return built


@pytest.fixture
def box(tmp_path: Path, tools: Path, caches: Path, wheels: dict[str, Path]) -> Sandbox:
    """A fresh sandbox for one install, once the wheels are in ``dist/``."""
    return Sandbox.make(tmp_path, tools, caches)
