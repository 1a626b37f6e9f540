"""Where the hook's fast path finds things in the state directory: standard library only.

The PreToolUse hook runs before every tool call and reads the agent's activity
marker, inbox, in-flight batches and journals without importing the store
(its records, locks and ``pathlib``). It finds them by the rules below, which
:class:`~oxtail_fs.store.layout.Layout` builds its paths from too, so the two can
never drift apart.

| what | where, under the state directory |
|---|---|
| the state directory | ``OXTAIL_HOME`` (trimmed, ``~`` expanded), else ``$HOME/.oxtail`` |
| an agent's inbox | ``inboxes/s-<hash32(session id)>.jsonl`` |
| its unsettled batches | ``inflight/s-<hash32(session id)>/<batch id>.json`` |
| journals concerning it | ``journal/*`` naming its stem |
| its busy/idle marker | ``activity/<hash32(session id)>`` |
| our registry, the reference's | ``registry/<pid>.json``, ``sessions/<pid>.json`` |
| a project's file reservations | ``reservations/<hash32(project root)>.json`` |

The git guard's stdlib check (``oxtail_mcp.commands.guardstate``) reads the registry and the
reservations by these names and within the same size bounds as the store.

Session ids are given in their canonical form (:func:`oxtail_core.naming.canonical_session_id`).
"""

from __future__ import annotations

import os

from oxtail_core.naming import hash32

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the hook ~4 ms
if TYPE_CHECKING:
    from collections.abc import Mapping

INBOXES = "inboxes"
INFLIGHT = "inflight"
JOURNAL = "journal"
ACTIVITY = "activity"
REGISTRY = "registry"
SESSIONS = "sessions"  # the reference's registry: read, never written
RESERVATIONS = "reservations"
INBOX_SUFFIX = ".jsonl"
REGISTRY_MAX_BYTES = 1 << 20
"""A registry file larger than this is no entry (a forged one cannot cost a reader more)."""
RESERVATIONS_MAX_BYTES = 16 << 20
"""A project's reservation file larger than this is refused."""


def state_dir(env: Mapping[str, str]) -> str:
    """``OXTAIL_HOME`` (trimmed, non-empty, ``~`` expanded) wins over ``$HOME/.oxtail``."""
    override = env.get("OXTAIL_HOME", "").strip()
    if override:
        return os.path.expanduser(override)
    home = env.get("HOME", "").strip() or os.path.expanduser("~")
    return os.path.join(home, ".oxtail")


def session_stem(session_id: str) -> str:
    """The file stem of an agent's inbox and in-flight folder: ``s-<hash32>``."""
    return "s-" + hash32(session_id)


def process_stem(key: str) -> str:
    """The stem of an unclaimed server's inbox, ``key`` being ``<pid>-<started_at>``: ``p-<hash32>``."""
    return "p-" + hash32(key)


def activity_name(session_id: str) -> str:
    """The marker file's name under ``activity/``."""
    return hash32(session_id)


def reservations_name(project: str) -> str:
    """The file name of a project's reservations under ``reservations/``."""
    return hash32(project) + ".json"
