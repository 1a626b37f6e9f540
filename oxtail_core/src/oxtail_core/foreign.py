"""Peers we can see but never deliver to: servers of the reference (Node) oxtail.

Both implementations may run on one state directory. They do not share a
mailbox (the reference reads ``mailboxes/``, we read our inboxes), so a message
from one to the other would be acknowledged and never read. Our stores
therefore tell the reference's registry entries apart (a filesystem store by
where and how they were written, see ``oxtail_fs.store.layout``) and hand them out as
:class:`ForeignEntry`; target resolution refuses them with ``foreign-peer``,
and nothing else of ours (reaping, inbox folding, sibling collapse) ever acts
on them. They stay visible in listings and ``read_session``: the agent is real,
only its mailbox is out of reach.

Their liveness is checked by pid alone: the reference records its process
start as ``ps`` text (``proc_sig``), not as our ``process_start``. A recycled
pid can therefore pass for a dead reference server; the worst that does is a
``foreign-peer`` (or ``ambiguous-target``) refusal where ``target-not-found``
was due, never a delivery, and a pid that one of our live servers holds hides
the reference entry altogether (:func:`oxtail_core.routing.live_entries`).
"""

from __future__ import annotations

import attrs

from oxtail_core.model import RegistryEntry


@attrs.frozen
class ForeignEntry(RegistryEntry):
    """A registry entry written by the reference (Node) oxtail: shown, read from, never sent to."""


def is_foreign(entry: RegistryEntry) -> bool:
    """Whether ``entry`` belongs to another implementation (see the module docstring)."""
    return isinstance(entry, ForeignEntry)


def foreign_refusal_message(entry: RegistryEntry) -> str:
    """What a refused send says: which peer, why nothing was sent, what to do instead."""
    who = f"session {entry.session_id}" if entry.session_id else "an unclaimed session"
    return (
        f"The target ({who}, server pid {entry.server_pid}) runs the reference (Node) oxtail, which "
        "reads a different mailbox: nothing was sent, because it would never be read. Run the same "
        "oxtail in both sessions (docs/getting-started.md, 'Running next to the reference oxtail')."
    )
