"""The install commands the smoke lane runs are the ones the README and getting-started print."""

from __future__ import annotations

import pytest

from tests.smoke.installs import DOCUMENTED, REPO

# Which documented lanes each page must print word for word (getting-started holds them all).
PAGES = {
    "README.md": ("build", "pipx", "uv-wheels"),
    "docs/getting-started.md": tuple(DOCUMENTED),
    "docs/redis.md": ("build", "redis-venv"),
}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_page_prints_every_install_command_the_smoke_lane_runs_word_for_word(page: str) -> None:
    text = (REPO / page).read_text()
    missing = [line for lane in PAGES[page] for line in DOCUMENTED[lane] if line not in text]
    assert missing == []
