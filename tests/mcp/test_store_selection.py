"""Which store a process opens (``oxtail_mcp.storage``): the resolution table, every bad setting as one
clear line without the password, the missing-package refusal, and ``use-store`` writing its file.

Nothing here needs a Redis server (tests/redis/test_redis_mcp.py opens real ones): a choice is made
before anything connects, and an unreachable port is the refusal under test.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from oxtail_core.errors import StoreError
from oxtail_mcp import storage
from oxtail_mcp.hooks.installer import CODEX_FORWARDED_ENV
from oxtail_redis.url import RedisTarget, parse_url
from tests.support.e2e import SERVER_COMMAND

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr%40t"  # percent-encoded "s3cr@t": neither form may ever be shown
BLOCK_REDIS = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('oxtail_redis', 'redis'):\n"
    "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
    "sys.meta_path.insert(0, Block())\n"
)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_file(home: Path, content: str | bytes, mode: int = 0o600) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "store.json"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    path.chmod(mode)
    return path


def env_of(home: Path, **extra: str) -> dict[str, str]:
    return {"OXTAIL_HOME": str(home), "HOME": str(home.parent), **extra}


# The table ---------------------------------------------------------------------------------------------
def test_nothing_set_is_the_filesystem_store_in_the_state_directory(tmp_path: Path) -> None:
    choice = storage.choose(env_of(tmp_path / "state"))
    assert (choice.kind, choice.source, choice.where) == ("fs", "default", str(tmp_path / "state"))
    assert choice.describe() == {"kind": "fs", "source": "default", "where": str(tmp_path / "state")}


def test_oxtail_store_names_redis_with_the_team_and_prefix_from_the_environment(tmp_path: Path) -> None:
    env = env_of(
        tmp_path,
        OXTAIL_STORE=f"redis://oxtail-a:{SECRET}@redis.internal:6380/2",
        OXTAIL_REDIS_TEAM="team-a",
        OXTAIL_REDIS_PREFIX="ox2",
    )
    choice = storage.choose(env)
    assert (choice.kind, choice.source, choice.team, choice.prefix) == (
        "redis",
        "OXTAIL_STORE",
        "team-a",
        "ox2",
    )
    assert choice.target == parse_url(f"redis://oxtail-a:{SECRET}@redis.internal:6380/2")
    assert choice.target is not None and choice.target.password == "s3cr@t"
    shown = json.dumps(choice.describe())
    assert "redis://oxtail-a:***@redis.internal:6380/2" in shown and "s3cr" not in shown


def test_the_store_file_names_redis_and_its_prefix_defaults_to_oxt(tmp_path: Path) -> None:
    write_file(tmp_path, json.dumps({"url": "rediss://redis.example/0", "team": "t1"}))
    choice = storage.choose(env_of(tmp_path, OXTAIL_REDIS_PREFIX="ignored"))
    assert (choice.kind, choice.source, choice.team, choice.prefix) == ("redis", "store.json", "t1", "oxt")
    assert choice.target == RedisTarget("redis.example", tls=True)


def test_oxtail_store_wins_over_the_store_file_and_fs_turns_it_off(tmp_path: Path) -> None:
    write_file(tmp_path, json.dumps({"url": "redis://file-host/0", "team": "t1", "prefix": "p1"}))
    from_env = storage.choose(env_of(tmp_path, OXTAIL_STORE="redis://env-host/0", OXTAIL_REDIS_TEAM="t2"))
    assert from_env.target is not None and from_env.target.host == "env-host" and from_env.team == "t2"
    assert storage.choose(env_of(tmp_path, OXTAIL_STORE=" fs ")).kind == "fs"


def test_the_password_file_supplies_the_password_and_is_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text("hunter2\n")
    env = env_of(
        tmp_path,
        OXTAIL_STORE="redis://oxtail-a@h/0",
        OXTAIL_REDIS_TEAM="t",
        OXTAIL_REDIS_PASSWORD_FILE=str(secret),
    )
    choice = storage.choose(env)
    assert choice.target is not None and choice.target.password == "hunter2"
    assert choice.target.username == "oxtail-a"
    assert "hunter2" not in repr(choice.target) and "hunter2" not in json.dumps(choice.describe())


# Every bad setting: one line, no secret ----------------------------------------------------------------
BAD_ENV = [
    ({"OXTAIL_STORE": f"http://u:{SECRET}@h"}, "must be fs, redis://"),
    ({"OXTAIL_STORE": "postgres"}, "must be fs, redis://"),
    ({"OXTAIL_STORE": f"redis://u:{SECRET}@h:99999", "OXTAIL_REDIS_TEAM": "t"}, "bad Redis URL"),
    ({"OXTAIL_STORE": f"redis://u:{SECRET}@h/0?namespace=t", "OXTAIL_REDIS_TEAM": "t"}, "unknown query"),
    ({"OXTAIL_STORE": "redis://h/0"}, "OXTAIL_REDIS_TEAM is not set"),
    ({"OXTAIL_STORE": "redis://h/0", "OXTAIL_REDIS_TEAM": "Team{x}"}, "invalid team"),
    (
        {"OXTAIL_STORE": "redis://h/0", "OXTAIL_REDIS_TEAM": "t", "OXTAIL_REDIS_PREFIX": "a:b"},
        "invalid prefix",
    ),
]


@pytest.mark.parametrize(("extra", "said"), BAD_ENV)
def test_a_bad_environment_setting_is_one_line_that_never_shows_the_password(
    tmp_path: Path, extra: dict[str, str], said: str
) -> None:
    with pytest.raises(StoreError) as caught:
        storage.choose(env_of(tmp_path, **extra))
    message = str(caught.value)
    assert said in message and "\n" not in message
    assert "s3cr" not in message


BAD_FILES: list[tuple[str | bytes, int, str]] = [
    (json.dumps({"url": "redis://h/0"}), 0o600, "has no team"),
    (json.dumps({"team": "t"}), 0o600, "has no url"),
    (json.dumps({"url": "redis://h/0", "team": ""}), 0o600, "has no team"),
    (json.dumps({"url": "redis://h/0", "team": "t", "namespace": "t"}), 0o600, "unknown field(s) namespace"),
    (json.dumps({"url": "redis://h/0", "team": "t", "prefix": 7}), 0o600, "prefix must be a string"),
    (json.dumps({"url": "fs", "team": "t"}), 0o600, "the url must be redis://"),
    (json.dumps({"url": f"redis://u:{SECRET}@h/x", "team": "t"}), 0o600, "bad Redis URL"),
    (json.dumps(["redis://h/0", "t"]), 0o600, "must hold a JSON object"),
    ("{not json", 0o600, "is not JSON"),
    (b"\xff\xfe", 0o600, "is not JSON"),
    ("[" * 100_000, 0o600, "larger than 16384 bytes"),
    (json.dumps({"url": f"redis://u:{SECRET}@h/0", "team": "t"}), 0o644, "has mode 0644"),
    (json.dumps({"url": "redis://h/0", "team": "t"}), 0o620, "has mode 0620"),
]


@pytest.mark.parametrize(("content", "mode", "said"), BAD_FILES)
def test_a_bad_or_hostile_store_file_is_one_line_that_never_shows_the_password(
    tmp_path: Path, content: str | bytes, mode: int, said: str
) -> None:
    write_file(tmp_path, content, mode)
    with pytest.raises(StoreError) as caught:
        storage.choose(env_of(tmp_path))
    message = str(caught.value)
    assert said in message and "\n" not in message, message
    assert "s3cr" not in message


def test_a_store_file_that_is_a_symlink_or_a_directory_is_refused_unread(tmp_path: Path) -> None:
    real = write_file(tmp_path / "elsewhere", json.dumps({"url": "redis://h/0", "team": "t"}))
    home = tmp_path / "state"
    home.mkdir()
    (home / "store.json").symlink_to(real)
    with pytest.raises(StoreError, match="is a symlink: refused"):
        storage.choose(env_of(home))
    (home / "store.json").unlink()
    (home / "store.json").mkdir()
    with pytest.raises(StoreError, match="is not a regular file"):
        storage.choose(env_of(home))


def test_a_store_file_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    os.mkfifo(tmp_path / "store.json", 0o600)
    with pytest.raises(StoreError, match="is not a regular file"):
        storage.choose(env_of(tmp_path))


@pytest.mark.parametrize(
    ("url", "password", "said"),
    [
        ("redis://u:pw@h/0", "filepass", "keep one"),
        ("redis://h/0", None, "does not exist"),
        ("redis://h/0", "", "is empty"),
    ],
)
def test_a_password_file_that_cannot_be_used_is_one_line(
    tmp_path: Path, url: str, password: str | None, said: str
) -> None:
    secret = tmp_path / "pw"
    if password is not None:
        secret.write_text(password)
    env = env_of(tmp_path, OXTAIL_STORE=url, OXTAIL_REDIS_TEAM="t", OXTAIL_REDIS_PASSWORD_FILE=str(secret))
    with pytest.raises(StoreError) as caught:
        storage.choose(env)
    assert said in str(caught.value) and "filepass" not in str(caught.value)


# Opening --------------------------------------------------------------------------------------------------
def test_an_unreachable_redis_is_a_store_error_naming_the_masked_url(tmp_path: Path) -> None:
    port = closed_port()
    env = env_of(tmp_path, OXTAIL_STORE=f"redis://u:{SECRET}@127.0.0.1:{port}/0", OXTAIL_REDIS_TEAM="t")
    with pytest.raises(StoreError) as caught:
        storage.open_store(env)
    assert f"redis://u:***@127.0.0.1:{port}/0" in str(caught.value) and "s3cr" not in str(caught.value)


def test_a_redis_url_without_oxtail_redis_installed_is_refused_never_served_from_files(
    tmp_path: Path,
) -> None:
    """A fallback to files would split the team silently: the server refuses to start instead."""
    env = dict(os.environ, **env_of(tmp_path, OXTAIL_STORE="redis://127.0.0.1:1/0", OXTAIL_REDIS_TEAM="t"))
    probe = BLOCK_REDIS + (
        "from oxtail_core.errors import StoreError\n"
        "from oxtail_mcp.storage import open_store\n"
        "try:\n"
        "    open_store()\n"
        "except StoreError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert (
        done.stdout.strip()
        == 'OXTAIL_STORE names a Redis store: install oxtail-redis (pip install "oxtail-mcp[redis]")'
    )
    serve = BLOCK_REDIS + "from oxtail_mcp.__main__ import main\nsys.exit(main(['serve']))\n"
    started = subprocess.run(
        [sys.executable, "-c", serve], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert started.returncode == 1
    assert started.stderr.strip().splitlines() == [f"oxtail-mcp: cannot start: {done.stdout.strip()}"]
    assert not (tmp_path / "registry").exists()  # nothing was served from files


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"OXTAIL_STORE": "redis://127.0.0.1:{port}/0", "OXTAIL_REDIS_TEAM": "t"}, "cannot connect to"),
        ({"OXTAIL_STORE": "redis://127.0.0.1:{port}/0"}, "OXTAIL_REDIS_TEAM is not set"),
        ({"OXTAIL_STORE": "nosuch"}, "must be fs, redis://"),
    ],
)
def test_a_server_that_cannot_open_its_store_says_one_line_and_exits_1(
    tmp_path: Path, extra: dict[str, str], said: str
) -> None:
    port = closed_port()
    env = dict(os.environ, **env_of(tmp_path, **{k: v.format(port=port) for k, v in extra.items()}))
    done = subprocess.run(
        [SERVER_COMMAND, "serve"],
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("oxtail-mcp: cannot start: ") and said in lines[0], lines
    assert "Traceback" not in done.stderr


def test_a_hook_whose_redis_is_unreachable_exits_0_silently_and_quickly(tmp_path: Path) -> None:
    write_file(tmp_path, json.dumps({"url": f"redis://127.0.0.1:{closed_port()}/0", "team": "t"}))
    payload = json.dumps(
        {"session_id": "12345678-1234-4234-8234-123456789abc", "hook_event_name": "PreToolUse"}
    )
    done = subprocess.run(
        [SERVER_COMMAND, "hook", "pretooluse"],
        check=False,
        input=payload,
        env=dict(os.environ, **env_of(tmp_path)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not (tmp_path / "activity").exists()  # a shared store's marker never lands in files


# URLs round trip ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "target",
    [
        RedisTarget("h"),
        RedisTarget("redis.example", port=6380, db=3, tls=True, username="team a", password="p@ss:/%?#"),
        RedisTarget("::1", port=7000, password="only-a-password"),
        RedisTarget("h", tls=True, ca_certs="/etc/ssl/private ca.pem"),
    ],
)
def test_a_target_written_as_a_url_reads_back_as_the_same_target(target: RedisTarget) -> None:
    assert parse_url(target.url()) == target
    assert target.password is None or target.password not in target.masked()


def test_a_target_is_immutable_and_its_repr_hides_the_password() -> None:
    target = parse_url("redis://u:topsecret@h/1")
    with pytest.raises(AttributeError):
        target.host = "elsewhere"  # type: ignore[misc]
    assert "topsecret" not in repr(target) and "password=***" in repr(target)


# use-store -------------------------------------------------------------------------------------------------
def use_store(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXTAIL_")}
    env.update(env_of(home))
    return subprocess.run(
        [SERVER_COMMAND, "use-store", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_use_store_writes_a_0600_file_the_resolver_reads_and_fs_removes_it(tmp_path: Path) -> None:
    home = tmp_path / "state"
    done = use_store(
        home, f"redis://u:{SECRET}@redis.internal/0", "--team", "t1", "--prefix", "ox2", "--no-check"
    )
    assert done.returncode == 0, done.stderr
    assert "s3cr" not in done.stdout + done.stderr
    path = home / "store.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "url": f"redis://u:{SECRET}@redis.internal/0",
        "team": "t1",
        "prefix": "ox2",
    }
    choice = storage.choose(env_of(home))
    assert (choice.source, choice.team, choice.prefix) == ("store.json", "t1", "ox2")
    removed = use_store(home, "fs")
    assert removed.returncode == 0 and "removed" in removed.stdout and not path.exists()
    assert use_store(home, "fs").returncode == 0  # already the files: nothing to do, no error


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["http://h", "--team", "t"], "the url must be redis://"),
        ([f"redis://u:{SECRET}@h:0/0", "--team", "t"], "bad Redis URL"),
        (["redis://h/0"], "--team is required"),
        (["redis://h/0", "--team", "Bad Team"], "invalid team"),
        (["redis://h/0", "--team", "t", "--prefix", "x:y"], "invalid prefix"),
    ],
)
def test_use_store_refuses_a_bad_setting_and_writes_nothing(
    tmp_path: Path, args: list[str], said: str
) -> None:
    done = use_store(tmp_path / "state", *args)
    assert done.returncode == 2 and said in done.stderr and "s3cr" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "state" / "store.json").exists()


def test_use_store_refuses_an_unreachable_redis_and_writes_nothing(tmp_path: Path) -> None:
    done = use_store(tmp_path / "state", f"redis://127.0.0.1:{closed_port()}/0", "--team", "t")
    assert done.returncode == 1 and "nothing written" in done.stderr
    assert not (tmp_path / "state" / "store.json").exists()


def test_use_store_has_help() -> None:
    done = subprocess.run([SERVER_COMMAND, "use-store", "--help"], capture_output=True, text=True, check=True)
    assert "--team" in done.stdout and "--no-check" in done.stdout and "fs" in done.stdout


# Codex forwards what the store reads ---------------------------------------------------------------------
def test_codex_forwards_every_store_setting_and_every_oxtail_name_oxtail_redis_reads() -> None:
    read = set()
    for source in [
        *(ROOT / "oxtail_redis" / "src").rglob("*.py"),
        ROOT / "oxtail_mcp/src/oxtail_mcp/storage.py",
    ]:
        read |= set(re.findall(r"\bOXTAIL_[A-Z][A-Z0-9_]*\b", source.read_text()))
    wanted = {"OXTAIL_STORE", "OXTAIL_REDIS_TEAM", "OXTAIL_REDIS_PREFIX", "OXTAIL_REDIS_PASSWORD_FILE"}
    assert wanted | {"OXTAIL_STORE_ALLOW_EVICTION", "OXTAIL_HOST_ID"} <= set(CODEX_FORWARDED_ENV)
    assert read <= set(CODEX_FORWARDED_ENV), read - set(CODEX_FORWARDED_ENV)
