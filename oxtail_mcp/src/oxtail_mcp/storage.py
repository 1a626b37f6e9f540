"""Which store this process uses: the one resolver every server, hook and command goes through.

The first match wins (docs/redis.md, "Choosing the store"):

=====================================  ======================================================
setting                                store
=====================================  ======================================================
``OXTAIL_STORE`` = ``fs``              the filesystem store in the state directory
``OXTAIL_STORE`` = ``redis://…``       Redis; the team from ``OXTAIL_REDIS_TEAM`` (required),
or ``rediss://…``                      the prefix from ``OXTAIL_REDIS_PREFIX`` (default ``oxt``)
``OXTAIL_STORE`` = anything else       refused, one line
``$OXTAIL_HOME/store.json``            Redis, as the file says (``url``, ``team``, ``prefix``)
nothing                                the filesystem store (nothing changes for one machine)
=====================================  ======================================================

``store.json`` exists because hooks run with Claude Code's environment, not the server's
``env`` block: a URL set only in ``.mcp.json`` would send hooks to the filesystem while the
servers use Redis, and mail would never be delivered mid-turn. It is written by
``oxtail-mcp use-store`` and may hold the password, so it is read only when it is a regular
file of ours that nobody else can read or write (0600), and only up to :data:`MAX_CONFIG_BYTES`.
``OXTAIL_REDIS_PASSWORD_FILE`` keeps a password out of ``.mcp.json`` (which is often committed).

A Redis URL without ``oxtail-redis`` installed is refused, never served from files: that would
split the team silently. Every bad setting is one :class:`StoreError` line, the password masked.

Standard library only at import: the hook reads the choice here before every tool call when a
``store.json`` exists; stores and their libraries load in :func:`open_store`.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the hook's hot path imports this module
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TypedDict

    from oxtail_core.errors import StoreError
    from oxtail_core.protocols import Store
    from oxtail_redis.url import RedisTarget

    class StoreInfo(TypedDict, total=False):
        """What ``status`` shows of the store (never the password)."""

        kind: str
        source: str
        where: str
        team: str | None
        prefix: str | None
        aof_enabled: bool
        aof_last_write_status: str
        maxmemory_policy: str
        warnings: list[str]


STORE_ENV = "OXTAIL_STORE"
TEAM_ENV = "OXTAIL_REDIS_TEAM"
PREFIX_ENV = "OXTAIL_REDIS_PREFIX"
PASSWORD_FILE_ENV = "OXTAIL_REDIS_PASSWORD_FILE"
ALLOW_EVICTION_ENV = "OXTAIL_STORE_ALLOW_EVICTION"
CONFIG_NAME = "store.json"
CONFIG_FIELDS = ("url", "team", "prefix")
MAX_CONFIG_BYTES = 16 * 1024
MAX_PASSWORD_BYTES = 4096
INSTALL_HINT = 'install oxtail-redis (pip install "oxtail-mcp[redis]")'
REDIS_SCHEMES = ("redis://", "rediss://")
DEFAULT_PREFIX = "oxt"


class Choice:
    """The store a process should open, before anything is connected (immutable).

    ``kind`` is ``"fs"`` or ``"redis"``; ``source`` says which setting chose it (``OXTAIL_STORE``,
    ``store.json`` or ``default``). For Redis, ``target`` holds the server and the password.
    """

    __slots__ = ("home", "kind", "prefix", "source", "target", "team")
    kind: str
    source: str
    home: str
    target: RedisTarget | None
    team: str | None
    prefix: str | None

    def __init__(
        self,
        kind: str,
        source: str,
        home: str,
        *,
        target: RedisTarget | None = None,
        team: str | None = None,
        prefix: str | None = None,
    ) -> None:
        fields = {"kind": kind, "source": source, "home": home, "target": target, "team": team}
        for name, value in {**fields, "prefix": prefix}.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Choice is immutable ({name})")

    @property
    def where(self) -> str:
        """The directory, or the URL with its password masked."""
        return self.target.masked() if self.target is not None else self.home

    def describe(self) -> StoreInfo:
        """The choice as ``status --json`` shows it (never the password)."""
        shown: StoreInfo = {"kind": self.kind, "source": self.source, "where": self.where}
        if self.kind == "redis":
            shown["team"] = self.team
            shown["prefix"] = self.prefix
        return shown


def _error(message: str) -> StoreError:
    from oxtail_core.errors import StoreError

    return StoreError(message)


def names_shared_store(env: Mapping[str, str] = os.environ) -> bool:
    """True when ``env`` may choose a store other than the default files: ``OXTAIL_STORE`` is set to
    something but ``fs``, or a ``store.json`` exists. One ``lstat``, nothing parsed (fast paths)."""
    from oxtail_fs.store.names import state_dir
    from oxtail_mcp.hooks.hook import shared_store_named

    return shared_store_named(env, state_dir(env))


def choose(env: Mapping[str, str] = os.environ) -> Choice:
    """The store ``env`` asks for (the table above); StoreError for a setting that is wrong."""
    from oxtail_fs.store.names import state_dir

    home = state_dir(env)
    raw = env.get(STORE_ENV, "").strip()
    if raw == "fs":
        return Choice("fs", STORE_ENV, home)
    if raw:
        if not raw.lower().startswith(REDIS_SCHEMES):
            scheme = raw.split("://", 1)[0][:16] if "://" in raw else raw[:16]
            raise _error(f"{STORE_ENV} must be fs, redis://… or rediss://… (it begins {scheme!r})")
        team = env.get(TEAM_ENV, "").strip()
        if not team:
            raise _error(
                f"{STORE_ENV} names a Redis store but {TEAM_ENV} is not set (there is no default team)"
            )
        prefix = env.get(PREFIX_ENV, "").strip() or DEFAULT_PREFIX
        return redis_choice(raw, team, prefix, STORE_ENV, env=env, home=home)
    path = os.path.join(home, CONFIG_NAME)
    data = read_config(path)
    if data is None:
        return Choice("fs", "default", home)
    prefix = data.get("prefix") or DEFAULT_PREFIX
    return redis_choice(data["url"], data["team"], prefix, CONFIG_NAME, env=env, home=home)


def redis_choice(
    url: str, team: str, prefix: str, source: str, *, env: Mapping[str, str], home: str
) -> Choice:
    """A Redis choice from its settings, checked (package installed, URL, team, prefix, password file)."""
    try:
        from oxtail_redis.keys import PREFIX_PATTERN, TEAM_PATTERN, is_prefix, is_team
        from oxtail_redis.url import parse_url
    except ImportError:
        raise _error(f"{source} names a Redis store: {INSTALL_HINT}") from None
    if not url.lower().startswith(REDIS_SCHEMES):
        raise _error(f"the url must be redis://… or rediss://… (from {source})")
    target = parse_url(url)
    if not is_team(team):
        raise _error(f"invalid team {team[:80]!r} (from {source}): want {TEAM_PATTERN}")
    if not is_prefix(prefix):
        raise _error(f"invalid prefix {prefix[:80]!r} (from {source}): want {PREFIX_PATTERN}")
    password_file = env.get(PASSWORD_FILE_ENV, "").strip()
    if password_file:
        if target.password is not None:
            raise _error(f"{target.masked()} has a password and {PASSWORD_FILE_ENV} names another: keep one")
        target = target.with_password(read_password_file(os.path.expanduser(password_file)))
    return Choice("redis", source, home, target=target, team=team, prefix=prefix)


# The files ---------------------------------------------------------------------------------------
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def _read_private(path: str, what: str, limit: int, *, private: bool) -> bytes | None:
    """The bytes of ``path`` (None if it does not exist), refusing anything but a small regular
    file; with ``private``, also a symlink, a file of another user, or one others may read or write."""
    import stat

    flags = _READ_FLAGS if private else _READ_FLAGS & ~os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if private and os.path.islink(path):
            raise _error(
                f"{what} {path} is a symlink: refused (it must be a regular file, mode 0600)"
            ) from None
        raise _error(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _error(f"{what} {path} is not a regular file: refused")
        if private and info.st_uid != os.getuid():
            raise _error(f"{what} {path} belongs to another user: refused")
        if private and info.st_mode & 0o077:
            mode = stat.S_IMODE(info.st_mode)
            raise _error(f"{what} {path} has mode {mode:04o}: refused, it may hold a password (chmod 600 it)")
        data = os.read(fd, limit + 1)
    except OSError as exc:
        raise _error(f"cannot read {what} {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise _error(f"{what} {path} is larger than {limit} bytes: refused")
    return data


def read_config(path: str) -> dict[str, str] | None:
    """``store.json``'s fields (None when there is no file); StoreError for a hostile or malformed one."""
    data = _read_private(path, "the store file", MAX_CONFIG_BYTES, private=True)
    if data is None:
        return None
    from oxtail_mcp.hooks.hook import parse_json

    try:
        value = parse_json(data)
    except (ValueError, RecursionError):
        raise _error(f"the store file {path} is not JSON: rewrite it with oxtail-mcp use-store") from None
    if not isinstance(value, dict):
        raise _error(f"the store file {path} must hold a JSON object with url and team")
    unknown = sorted(str(k)[:40] for k in value if k not in CONFIG_FIELDS)
    if unknown:
        raise _error(
            f"the store file {path} has unknown field(s) {', '.join(unknown)} (known: url, team, prefix)"
        )
    for name in ("url", "team"):
        if not isinstance(value.get(name), str) or not value[name]:
            raise _error(f"the store file {path} has no {name} (a non-empty string)")
    if "prefix" in value and not isinstance(value["prefix"], str):
        raise _error(f"the store file {path}: prefix must be a string")
    return value


def read_password_file(path: str) -> str:
    """The password in ``path`` (one line; a trailing newline dropped)."""
    data = _read_private(path, f"{PASSWORD_FILE_ENV}", MAX_PASSWORD_BYTES, private=False)
    if data is None:
        raise _error(f"{PASSWORD_FILE_ENV} names {path}, which does not exist")
    try:
        password = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise _error(f"{PASSWORD_FILE_ENV} {path} is not UTF-8 text") from None
    if not password:
        raise _error(f"{PASSWORD_FILE_ENV} {path} is empty")
    return password


def write_config(home: str, url: str, team: str, prefix: str | None) -> str:
    """Write ``store.json`` atomically, mode 0600 (temp file, fsync, rename); returns its path."""
    from oxtail_core.wire import dumps

    os.makedirs(home, 0o700, exist_ok=True)
    path = os.path.join(home, CONFIG_NAME)
    fields = {"url": url, "team": team, **({"prefix": prefix} if prefix else {})}
    tmp = f"{path}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.write(fd, dumps(fields).encode("utf-8"))
            os.fchmod(fd, 0o600)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return path


def remove_config(home: str) -> bool:
    """Remove ``store.json``; False when there was none."""
    try:
        os.unlink(os.path.join(home, CONFIG_NAME))
    except FileNotFoundError:
        return False
    return True


# Opening -------------------------------------------------------------------------------------------
def open_store(env: Mapping[str, str] = os.environ) -> Store:
    """THE way the adapter gets its store: the one :func:`choose` names, opened and checked."""
    return open_with_info(env)[0]


def open_with_info(env: Mapping[str, str] = os.environ) -> tuple[Store, StoreInfo]:
    """The store and what ``status`` shows of it (``describe`` plus, for Redis, what INFO said)."""
    return open_chosen(choose(env), env)


def open_chosen(
    choice: Choice, env: Mapping[str, str], *, lock_timeout_s: float | None = None
) -> tuple[Store, StoreInfo]:
    """Open ``choice``: an FsStore, or a RedisStore whose server passed the start-up checks.

    ``lock_timeout_s`` bounds the FsStore's inbox lock waits (the hook's delivery uses it).
    """
    info = choice.describe()
    if choice.kind == "fs":
        from pathlib import Path

        from oxtail_fs.store.fs_store import FsStore

        home = Path(choice.home)
        fs = FsStore(home) if lock_timeout_s is None else FsStore(home, lock_timeout_s=lock_timeout_s)
        return fs, info
    assert choice.target is not None and choice.team is not None and choice.prefix is not None
    try:
        from oxtail_redis import checks
        from oxtail_redis.store import RedisStore
    except ImportError:
        raise _error(f"{choice.source} names a Redis store: {INSTALL_HINT}") from None
    durability = checks.probe(choice.target)
    checks.require(durability, choice.where, env)
    store = RedisStore(choice.target.url(), choice.team, prefix=choice.prefix)
    info["aof_enabled"] = durability.aof_enabled
    info["aof_last_write_status"] = durability.aof_last_write_status
    info["maxmemory_policy"] = durability.maxmemory_policy
    info["warnings"] = list(durability.warnings)
    return store, info
