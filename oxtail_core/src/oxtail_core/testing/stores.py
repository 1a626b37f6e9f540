"""Store factories: how a backend hands fresh stores to the contract tests and the race machines.

A factory is a no-argument callable returning ``(store, cleanup)``: a new, empty store that
shares nothing with any store made before, and the function that disposes of it (remove its
directory, drop its namespace). The contract calls it once per test, a race machine once per
Hypothesis example, so it must be cheap and must never fail half-way silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs
import pytest

from oxtail_core.memory import MemoryStore
from oxtail_core.protocols import Store

Made = tuple[Store, Callable[[], None]]


class StoreFactory(Protocol):
    """Makes a fresh, empty store and the function that disposes of it."""

    def __call__(self) -> Made: ...


@attrs.frozen
class Backend:
    """A store factory that also names the modules minting the ids its store writes.

    The race machines replace ``new_id`` in those modules (besides the core's) with a
    counter, so a failing schedule replays with the same ids (ids order listings).
    A plain function is a factory too; it just gets the core's modules only.
    """

    make: Callable[[], Made]
    id_modules: tuple[str, ...] = ()

    def __call__(self) -> Made:
        return self.make()


def id_modules(factory: StoreFactory) -> tuple[str, ...]:
    """The store-specific id modules of ``factory`` (none for a plain function)."""
    return factory.id_modules if isinstance(factory, Backend) else ()


def memory_factory() -> Made:
    """A fresh :class:`~oxtail_core.memory.MemoryStore` (nothing to clean up)."""
    return MemoryStore(), lambda: None


def factory_param(name: str, factory: StoreFactory | str) -> Any:
    """A ``pytest.param`` for one backend; a string is the reason it is unavailable (a skip)."""
    if isinstance(factory, str):
        return pytest.param(None, id=name, marks=pytest.mark.skip(reason=factory))
    return pytest.param(factory, id=name)
