"""Durable obligations: my_open_work, complete_work and block_work (accounting.md §3).

Being built (issue 9). The send side (``action_required``) lives in
:mod:`oxtail_core.messaging`.
"""

from __future__ import annotations

from oxtail_core.context import Context
from oxtail_core.effects import Flow
from oxtail_core.model import ObligationState, RegistryEntry, WakeMode
from oxtail_core.results import Closed, OpenWork, Refused, RequesterUnreachable


def open_work(ctx: Context, me: RegistryEntry) -> OpenWork | Refused:
    """The caller's open obligations, oldest first, budgeted like a read; read-only."""
    raise NotImplementedError("issue 9")


def close(
    ctx: Context,
    me: RegistryEntry,
    message_id: str,
    body: str,
    *,
    state: ObligationState,
    wake: WakeMode | None,
) -> Flow[Closed | RequesterUnreachable | Refused]:
    """complete_work (``state="done"``) and block_work (``"blocked"``, body already prefixed)."""
    raise NotImplementedError("issue 9")
    yield  # pragma: no cover
