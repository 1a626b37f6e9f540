"""The package's public names: listed once, each loaded lazily, and importing the package costs nothing."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import oxtail_core

INIT = Path(oxtail_core.__file__)


def _type_checking_imports() -> dict[str, str]:
    tree = ast.parse(INIT.read_text())
    blocks = [n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING"]
    (block,) = blocks
    return {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("oxtail_core.")
        for alias in node.names
    }


def test_what_type_checkers_see_is_exactly_what_the_package_loads() -> None:
    assert _type_checking_imports() == oxtail_core._EXPORTS
    assert oxtail_core.__all__ == sorted(oxtail_core._EXPORTS)


def test_every_exported_name_loads_from_the_module_it_is_listed_under() -> None:
    for name, module in oxtail_core._EXPORTS.items():
        assert getattr(oxtail_core, name).__module__ == module


def test_importing_the_package_imports_nothing_else() -> None:
    code = "import sys; old = set(sys.modules); import oxtail_core; print(sorted(set(sys.modules) - old))"
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['oxtail_core']"
