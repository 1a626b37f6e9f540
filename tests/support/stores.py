"""The store backends this suite runs the race machines on (MemoryStore, FsStore).

A new backend adds one factory here and one ``factory_param`` line in :func:`store_params`;
the seven machines in tests/core/test_races_*.py then run on it unchanged.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from oxtail_core.protocols import InboxId
from oxtail_core.testing import Backend, StoreFactory, factory_param, memory_factory
from oxtail_core.testing.stores import Made


def fs_factory() -> StoreFactory | str:
    """A factory of fresh FsStores in temp dirs, or the reason there is none."""
    try:
        from oxtail_fs.store.fs_store import FsStore
    except Exception as exc:  # noqa: BLE001 - any import problem means "not available yet"
        return f"oxtail_fs.store.fs_store not importable: {exc!r}"

    def make() -> Made:
        home = Path(tempfile.mkdtemp(prefix="oxtail-race-"))
        return FsStore(home), lambda: shutil.rmtree(home, ignore_errors=True)

    try:
        store, cleanup = make()
        with contextlib.suppress(Exception):
            store.depth(InboxId.for_session("probe"))
        cleanup()
    except Exception as exc:  # noqa: BLE001
        return f"FsStore cannot be constructed: {exc!r}"
    return Backend(make, id_modules=("oxtail_fs.store.inbox",))


def store_params() -> list[Any]:
    """pytest params: MemoryStore always; FsStore when it works here (else a skipped param)."""
    return [
        factory_param("memory", memory_factory),
        factory_param("fs", fs_factory()),
    ]
