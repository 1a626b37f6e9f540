"""The four wheels carry what an install needs, pin each other, and hold nothing of the workspace."""

from __future__ import annotations

import configparser
import subprocess
import tomllib
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

from tests.smoke.installs import REPO

pytestmark = pytest.mark.smoke

WORKSPACE_ONLY = {
    "tests",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
}


def _project(folder: str) -> dict:
    with (REPO / folder / "pyproject.toml").open("rb") as f:
        project: dict = tomllib.load(f)["project"]
    return project


def _metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(z.read(name).decode())


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def test_each_wheel_is_named_and_versioned_as_its_pyproject_says(wheels: dict[str, Path]) -> None:
    for folder, wheel in wheels.items():
        project, meta = _project(folder), _metadata(wheel)
        assert (meta["Name"], meta["Version"]) == (project["name"], project["version"])
        assert meta["Requires-Python"] == ">=3.11"
        assert wheel.name == f"{folder}-{project['version']}-py3-none-any.whl"


def test_the_four_wheels_share_one_version_and_pin_each_other_to_it(wheels: dict[str, Path]) -> None:
    (version,) = {_metadata(wheel)["Version"] for wheel in wheels.values()}
    siblings = {
        folder: sorted(r for r in _metadata(wheel).get_all("Requires-Dist", []) if r.startswith("oxtail-"))
        for folder, wheel in wheels.items()
    }
    assert siblings == {
        "oxtail_core": [],
        "oxtail_fs": [f"oxtail-core=={version}"],
        # the redis extra (oxtail-mcp[redis]) pins the Redis store at the same version
        "oxtail_mcp": [
            f"oxtail-core=={version}",
            f"oxtail-fs=={version}",
            f"oxtail-redis=={version}; extra == 'redis'",
        ],
        "oxtail_redis": [f"oxtail-core=={version}"],
    }


def test_only_the_oxtail_mcp_wheel_installs_a_console_script_and_it_is_oxtail_mcp(
    wheels: dict[str, Path],
) -> None:
    scripts = {}
    for folder, wheel in wheels.items():
        with zipfile.ZipFile(wheel) as z:
            found = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
            parser = configparser.ConfigParser()
            for name in found:
                parser.read_string(z.read(name).decode())
        scripts[folder] = dict(parser["console_scripts"]) if parser.has_section("console_scripts") else {}
    assert scripts == {
        "oxtail_core": {},
        "oxtail_fs": {},
        "oxtail_mcp": {"oxtail-mcp": "oxtail_mcp.__main__:main"},
        "oxtail_redis": {},
    }


def test_every_wheel_ships_py_typed_its_own_readme_and_the_mit_license(wheels: dict[str, Path]) -> None:
    for folder, wheel in wheels.items():
        meta, names = _metadata(wheel), _names(wheel)
        assert f"{folder}/py.typed" in names
        assert meta["Description-Content-Type"] == "text/markdown"
        assert meta.get_payload() == (REPO / folder / "README.md").read_text()
        assert (meta["License-Expression"], meta.get_all("License-File")) == ("MIT", ["LICENSE"])
        (license_name,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        with zipfile.ZipFile(wheel) as z:
            shipped = z.read(license_name).decode()
        assert shipped == (REPO / folder / "LICENSE").read_text() == (REPO / "LICENSE").read_text()
        assert shipped.startswith("MIT License\n")


def test_every_wheel_holds_its_package_and_its_metadata_only_with_every_tracked_source_file(
    wheels: dict[str, Path],
) -> None:
    for folder, wheel in wheels.items():
        names = _names(wheel)
        dist_info = f"{folder}-{_metadata(wheel)['Version']}.dist-info"
        assert {name.split("/")[0] for name in names} == {folder, dist_info}
        junk = [n for n in names if WORKSPACE_ONLY & set(n.split("/")) or n.endswith((".pyc", ".pyo"))]
        assert junk == []
        tracked = subprocess.run(
            ["git", "ls-files", f"{folder}/src/{folder}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert tracked, f"git knows no file of {folder}/src"
        missing = sorted({t.removeprefix(f"{folder}/src/") for t in tracked} - set(names))
        assert missing == []
