"""oxtail-core stays I/O-free: it imports nothing beyond the standard library, attrs and cattrs."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "oxtail_core" / "src" / "oxtail_core"
ALLOWED = {"attrs", "cattrs", "oxtail_core", "__future__"}
FORBIDDEN_STDLIB = {"subprocess", "socket", "os", "shutil", "tempfile", "pathlib", "fcntl", "signal"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_only_stdlib_attrs_cattrs() -> None:
    files = sorted(CORE.glob("*.py"))
    assert len(files) > 10
    for path in files:
        for name in _imports(path):
            allowed = name in ALLOWED or name in sys.stdlib_module_names
            assert allowed, f"{path.name} imports {name}"
            assert name not in FORBIDDEN_STDLIB, f"{path.name} does I/O through {name}"
