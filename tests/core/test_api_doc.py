"""docs/api.md's example is real: run every python block in it."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_api_doc_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, "docs/api.md lost its example"
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {"__name__": "api_doc"})
