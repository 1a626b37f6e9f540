"""oxtail-core stays I/O-free: it imports nothing beyond the standard library and attrs.

One subpackage is exempt, explicitly: ``oxtail_core.testing`` (the Store contract and race
machinery for test suites) may also import pytest and Hypothesis, and nothing else of the core
may import it, so those never become run-time dependencies.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "oxtail_core" / "src" / "oxtail_core"
TESTING = CORE / "testing"
ALLOWED = {"attrs", "oxtail_core", "__future__", "_sha256", "_sha2"}  # the builtin digests (naming.py)
TESTING_ALSO = {"pytest", "hypothesis"}
FORBIDDEN_STDLIB = {"subprocess", "socket", "os", "shutil", "tempfile", "pathlib", "fcntl", "signal"}


def _imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _modules(path)}


def _modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_imports_only_stdlib_and_attrs() -> None:
    files = sorted(p for p in CORE.rglob("*.py") if TESTING not in p.parents)
    assert len(files) > 10
    for path in files:
        for name in _imports(path):
            allowed = name in ALLOWED or name in sys.stdlib_module_names
            assert allowed, f"{path.name} imports {name}"
            assert name not in FORBIDDEN_STDLIB, f"{path.name} does I/O through {name}"


def test_the_testing_subpackage_adds_only_pytest_and_hypothesis() -> None:
    files = sorted(TESTING.glob("*.py"))
    assert files
    for path in files:
        for name in _imports(path):
            allowed = name in ALLOWED | TESTING_ALSO or name in sys.stdlib_module_names
            assert allowed, f"testing/{path.name} imports {name}"
            assert name not in FORBIDDEN_STDLIB, f"testing/{path.name} does I/O through {name}"


def test_no_core_module_imports_the_testing_subpackage() -> None:
    for path in sorted(p for p in CORE.rglob("*.py") if TESTING not in p.parents):
        used = {
            m for m in _modules(path) if m == "oxtail_core.testing" or m.startswith("oxtail_core.testing.")
        }
        assert not used, f"{path.name} imports {used}"


def test_importing_every_core_module_loads_neither_pytest_nor_hypothesis() -> None:
    modules = sorted(p.stem for p in CORE.glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module('oxtail_core.' + m)\n"
        "print(sorted(n for n in ('pytest', 'hypothesis') if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
