"""``oxtail-mcp use-store <url> --team <t>`` / ``oxtail-mcp use-store fs``: choose this machine's store.

Writes (or removes) ``$OXTAIL_HOME/store.json``, the file servers, hooks and ``status`` all read
when ``OXTAIL_STORE`` is unset (docs/redis.md, "Choosing the store"). Nothing is written unless
every part is valid: the URL, the team, the prefix and, unless ``--no-check``, a Redis that
answers and does not evict. The file is written atomically with mode 0600 (it may hold the
password). Running servers keep their store until they restart.

| outcome | exit |
|---|---|
| written, or removed (``fs``) | 0 |
| a Redis that cannot be reached, evicts, or a package that is missing | 1 |
| a bad URL, team or prefix | 2 |
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_UNUSABLE = 1
EXIT_BAD_INPUT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="redis://[user:password@]host[:port][/db] or rediss://…, or fs")
    parser.add_argument(
        "--team", default=None, help="the team namespace (required for Redis): ^[a-z0-9][a-z0-9_-]{0,62}$"
    )
    parser.add_argument("--prefix", default=None, help="the key prefix (default oxt)")
    parser.add_argument("--no-check", action="store_true", help="do not connect to Redis before writing")


def run(args: argparse.Namespace) -> int:
    from oxtail_core.errors import StoreError
    from oxtail_fs.store.names import state_dir
    from oxtail_mcp import storage

    env = os.environ
    home = state_dir(env)
    if env.get(storage.STORE_ENV, "").strip():
        print(
            f"oxtail-mcp use-store: note: {storage.STORE_ENV} is set here and wins over the file",
            file=sys.stderr,
        )
    if args.url.strip() == "fs":
        removed = storage.remove_config(home)
        path = os.path.join(home, storage.CONFIG_NAME)
        print(
            f"removed {path}: the filesystem store" if removed else f"no {path}: already the filesystem store"
        )
        return 0
    if not args.team:
        print(
            "oxtail-mcp use-store: --team is required with a Redis URL (there is no default team)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    prefix = args.prefix or storage.DEFAULT_PREFIX
    try:
        choice = storage.redis_choice(args.url, args.team, prefix, "the command line", env=env, home=home)
    except StoreError as exc:
        _say(str(exc))
        return EXIT_UNUSABLE if storage.INSTALL_HINT in str(exc) else EXIT_BAD_INPUT
    if not args.no_check:
        try:
            store, info = storage.open_chosen(choice, env)
        except StoreError as exc:
            _say(f"{exc}; nothing written")
            return EXIT_UNUSABLE
        store.close()  # type: ignore[attr-defined]  # a RedisStore
        for warning in info.get("warnings", []):
            _say(f"warning: {warning}")
    path = storage.write_config(home, args.url, args.team, args.prefix)
    print(f"wrote {path} (0600): {choice.where} team {choice.team}; restart running agents to switch")
    return 0


def _say(line: str) -> None:
    print(f"oxtail-mcp use-store: {line}", file=sys.stderr)
