"""Delivery receipts (accounting.md §1.2): the record format, and the hook's write-once writer.

A receipt at ``<state dir>/receipts/<message_id>`` says "this message was
handed into an agent's context". The format below is the contract every
writer and reader shares (the server's read paths through the store, the
hook here); the record is compact JSON, no newline, keys in this order (wrapped here)::

    {"schema_version":1,"message_id":"<hex16>","delivered_at":<int seconds>,
     "via":"hook","recipient_session_id":<sid or null>}

Standard library only and free of ``re`` and ``json``: the hook imports this
after it has written its envelope, on the path that runs before a tool call.

Invariants of :func:`write_receipts`:

* **write-once** -- the first receipt of an id wins: a later hand-off of the
  same id (a redelivery after a crash, a same-id copy) changes nothing;
* **never half-written** -- the record goes to a temp file first and is
  published with ``link``, which fails if the receipt exists; so no reader,
  and no later writer, ever finds an empty or torn receipt that would hide the
  real one forever;
* **never followed** -- a symlink at ``receipts/`` or at a receipt name is
  refused (``O_NOFOLLOW``, every name resolved against the directory's fd);
* **never in the way** -- an id that is not hex16 is skipped (it is the file
  name) and every I/O failure is swallowed: receipts never affect delivery.
"""

from __future__ import annotations

import contextlib
import os

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the hook ~4 ms
if TYPE_CHECKING:
    from collections.abc import Iterable

RECEIPTS_DIR = "receipts"
"""The directory under the state dir (mode 0700; each receipt 0600)."""
SCHEMA_VERSION = 1
VIA_HOOK = "hook"
VIA_READ = "read_my_messages"
VIA_ASK_REPLY = "ask_peer_reply"
VIAS = (VIA_HOOK, VIA_READ, VIA_ASK_REPLY)
"""Every ``via`` value (accounting.md §2.1)."""
MESSAGE_ID_PATTERN = "^[0-9a-f]{16}$"
RECIPIENT_PATTERN = "^[0-9a-f-]{36}$"
"""A recipient is recorded only in this shape (a lowercase UUID's), else ``null`` (A7)."""
DIR_MODE = 0o700
FILE_MODE = 0o600

_HEX = frozenset("0123456789abcdef")
_RECIPIENT_CHARS = frozenset("0123456789abcdef-")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def is_message_id(value: object) -> bool:
    """``value`` matches :data:`MESSAGE_ID_PATTERN` (whole string, no trailing newline)."""
    return isinstance(value, str) and len(value) == 16 and _HEX.issuperset(value)


def recipient_of(session_id: str | None) -> str | None:
    """The ``recipient_session_id`` to record: ``session_id`` if it matches :data:`RECIPIENT_PATTERN`."""
    shaped = isinstance(session_id, str) and len(session_id) == 36 and _RECIPIENT_CHARS.issuperset(session_id)
    return session_id if shaped else None


def encode(message_id: str, delivered_at: int, via: str, recipient: str | None) -> bytes:
    """The receipt record's bytes; ``message_id``, ``via`` (one of :data:`VIAS`) and ``recipient`` checked.

    Both are plain ASCII in the checked shapes, so no JSON escaping is needed.
    """
    who = "null" if recipient is None else f'"{recipient}"'
    return (
        f'{{"schema_version":{SCHEMA_VERSION},"message_id":"{message_id}","delivered_at":{delivered_at},'
        f'"via":"{via}","recipient_session_id":{who}}}'
    ).encode("ascii")


def write_receipts(
    home: str, message_ids: Iterable[str], via: str, session_id: str | None, now_s: int
) -> None:
    """Write a receipt for each hex16 id that has none yet; every OSError is swallowed."""
    recipient = recipient_of(session_id)
    try:
        directory = _open_dir(os.path.join(home, RECEIPTS_DIR))
    except OSError:
        return
    try:
        for message_id in dict.fromkeys(message_ids):
            if is_message_id(message_id):
                with contextlib.suppress(OSError):
                    _publish(directory, message_id, encode(message_id, now_s, via, recipient))
    finally:
        os.close(directory)


def _open_dir(path: str) -> int:
    """An fd of ``path``, created 0700 if missing; OSError if it is a symlink or not a directory."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, DIR_MODE)
    fd = os.open(path, _DIR_FLAGS)
    try:
        if os.fstat(fd).st_mode & 0o7777 != DIR_MODE:
            os.fchmod(fd, DIR_MODE)  # the umask may have taken bits we need; nobody else may look in
    except OSError:
        os.close(fd)
        raise
    return fd


def _publish(directory: int, name: str, data: bytes) -> None:
    """Create ``name`` in ``directory`` holding ``data``, unless it exists (then nothing changes)."""
    tmp = f"{name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, _CREATE, FILE_MODE, dir_fd=directory)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # write-once: the first receipt stays
            os.link(tmp, name, src_dir_fd=directory, dst_dir_fd=directory, follow_symlinks=False)
    finally:
        os.unlink(tmp, dir_fd=directory)
