"""``oxtail-mcp hook sessionstart``: leave a *drop file* saying which session just started, and where.

Claude Code gives its session id to hooks but not always to MCP children, and
Codex 0.171.0 gives it to neither its MCP servers' environment nor anything
else but hooks. So the SessionStart hook writes what the server cannot learn:
the session id, its cwd, and which process is the client (pid and kernel start
time). The server adopts the drop whose client process is one of its own
ancestors (:mod:`oxtail_mcp.identity.hookdrop`, strategy ``hook-drop``).

The drop is one compact JSON object, readable by the reference 0.32.1 server too
(same ``schema_version``, ``ppid``, ``written_at`` and ``payload.session_id`` /
``payload.cwd``):

| key | value |
|---|---|
| ``schema_version`` | 1 |
| ``ppid`` | the client process (see :func:`client_process`) |
| ``ppid_sig`` | ``""``: never the ``ps lstart`` text (see below) |
| ``written_at`` | epoch seconds |
| ``payload`` | the stdin fields of :data:`KEPT_FIELDS`, nothing else |
| ``client_start`` | the client's start time from ``/proc`` (epoch seconds, float): the signature we compare |
| ``client`` | ``claude-code`` or ``codex``: a Codex drop is never adopted by a Claude Code server |

The ``lstart`` text depends on the locale, the time zone and pads days 1-9 with
a second space; the reference's writer and reader disagreed on it (selfheal
§3.3). A start time read from ``/proc`` is a number: nothing to canonicalize.

File: ``<state>/session-starts/<hash32(session id)>`` (0600, directory 0700),
written as a dot-temp then renamed, so a reader never sees half a drop and
skips temps by their leading dot. A symlinked drop directory is refused; the
name is a hash, never built from the id. stdout and stderr stay empty on every
path: SessionStart stdout would be injected into the model's context.
"""

from __future__ import annotations

import contextlib
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

DROP_DIR = "session-starts"
DROP_SCHEMA = 1
MAX_PAYLOAD_BYTES = 64 << 10
"""SessionStart payloads are a few hundred bytes; anything larger is not one and is ignored."""
MAX_FIELD_CHARS = 4096
"""A kept payload string longer than this (a path, a source) is dropped from the drop."""
KEPT_FIELDS = ("session_id", "cwd", "transcript_path", "source", "hook_event_name")
COMMAND_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"})
"""A parent running ``<one of these> -c …`` is the host's command runner, not the host (S30)."""
CLIENT_OF_EVENT = {"sessionstart": "claude-code", "codex-sessionstart": "codex"}


def client_process(ppid: int) -> tuple[int, float | None]:
    """The host process that ran this hook, and its start time (None if it cannot be read).

    The hook's parent, unless that parent is a ``sh -c`` command runner the
    host interposed (the reference then never confirmed, S30): then the
    runner's parent.
    """
    from oxtail_fs.host import proctree

    pid = ppid
    argv = proctree.cmdline_of(pid) or ()
    if len(argv) >= 2 and os.path.basename(argv[0]) in COMMAND_SHELLS and argv[1] == "-c":
        grand = proctree.ppid_of(pid)
        if grand is not None and grand > 1:
            pid = grand
    return pid, proctree.process_start(pid)


def drop_of(
    payload: Mapping[str, Any], client: str, client_pid: int, client_start: float | None, now_s: int
) -> dict[str, Any] | None:
    """The drop for ``payload``, or None when it names no session."""
    sid = payload.get("session_id")
    if not isinstance(sid, str) or not sid or len(sid) > MAX_FIELD_CHARS:
        return None
    kept = {
        key: value
        for key in KEPT_FIELDS
        if isinstance(value := payload.get(key), str) and len(value) <= MAX_FIELD_CHARS
    }
    return {
        "schema_version": DROP_SCHEMA,
        "ppid": client_pid,
        "ppid_sig": "",
        "written_at": now_s,
        "payload": kept,
        "client_start": client_start,
        "client": client,
    }


def drop_dir(home: str) -> str:
    return os.path.join(home, DROP_DIR)


def write_drop(home: str, name: str, drop: Mapping[str, Any]) -> None:
    """Write ``drop`` as ``<home>/session-starts/<name>`` (dot-temp + rename); OSError on any failure.

    The state dir and the drop directory are created 0700 (a looser drop
    directory, e.g. the reference's, is tightened) and the latter must not be
    a symlink; the temp is created exclusively without following links, 0600.
    """
    import json
    import stat

    directory = drop_dir(home)
    os.makedirs(home, 0o700, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode):
        raise OSError(f"{directory} is not a plain directory")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(directory, stat.S_IMODE(st.st_mode) & 0o700)
    data = json.dumps(drop, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    tmp = os.path.join(directory, f".{name}.tmp.{os.getpid()}.{os.urandom(4).hex()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def run(event: str, payload: Mapping[str, Any], home: str, name_of: Any, now_s: int) -> None:
    """Write the drop for one SessionStart run (``name_of`` maps a session id to its file name)."""
    client = CLIENT_OF_EVENT[event]
    pid, start = client_process(os.getppid())
    drop = drop_of(payload, client, pid, start, now_s)
    if drop is None:
        return
    with contextlib.suppress(OSError):  # unwritable: no auto-join this time, nothing on stdout (S24)
        write_drop(home, name_of(drop["payload"]["session_id"]), drop)
