"""A Store wrapper that makes chosen methods fail (or run a hook first), for fail-loud and crash tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oxtail_core.errors import StoreError
from oxtail_core.protocols import Store


class FaultyStore:
    """Delegates to ``inner``; ``fail(method, times)`` makes the next calls raise StoreError, and
    ``before(method, fn)`` runs ``fn`` once before the next call (to interleave a second operation)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.failures: dict[str, int] = {}
        self.hooks: dict[str, Callable[[], Any]] = {}
        self.calls: list[str] = []

    def fail(self, method: str, times: int = 1) -> None:
        self.failures[method] = times

    def before(self, method: str, fn: Callable[[], Any]) -> None:
        self.hooks[method] = fn

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            hook = self.hooks.pop(name, None)
            if hook is not None:
                hook()
            if self.failures.get(name, 0) > 0:
                self.failures[name] -= 1
                raise StoreError(f"injected {name} failure: ENOSPC")
            return target(*args, **kwargs)

        return call
