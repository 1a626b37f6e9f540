"""Suite-wide settings: assertion rewriting for the shipped harness, test lanes, Hypothesis profiles.

``oxtail_core.testing`` (the Store contract and the race machinery) is installed code, not a
test module, so pytest rewrites its asserts only if told before it is imported: here.

Lanes are markers given by file (:data:`LANES`), so a new file in a lane needs no decorator:
``races`` (the Hypothesis race and crash-point machines, about a minute), ``e2e`` (real ``oxtail-mcp`` servers
driven by real MCP clients). ``slow`` and ``tmux`` are set per test. The fast lane
(``scripts/test.sh --fast``) is everything outside them; see docs/testing.md.

Hypothesis: ``ci`` (selected when the CI variable is set, as on our CI) is derandomized
with fixed example counts and no deadline, so a run is reproducible and its
time is bounded; ``dev`` (the default) explores with fresh randomness and
keeps its example database. Per-test ``settings(max_examples=...)`` still win.
"""

from __future__ import annotations

import os
from fnmatch import fnmatch

import pytest
from hypothesis import HealthCheck, settings

pytest.register_assert_rewrite("oxtail_core.testing")

LANES: dict[str, tuple[str, ...]] = {
    # marker: files (relative to the repository root) whose every test carries it
    "races": ("tests/core/test_races_*.py", "tests/fs/test_fs_crash_points.py"),
    "e2e": (
        "tests/mcp/test_e2e_*.py",
        "tests/mcp/test_tool_schemas.py",
        "tests/mcp/test_demos.py",
        "tests/mcp/test_setup*.py",  # the real console script against a temp HOME, ~50 runs
    ),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        where = item.path.relative_to(config.rootpath).as_posix()
        for marker, patterns in LANES.items():
            if any(fnmatch(where, pattern) for pattern in patterns):
                item.add_marker(marker)


settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=60)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
