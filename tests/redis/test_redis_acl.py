"""Who may reach a team's keys (docs/redis.md, "Running Redis for oxtail"), checked on a real server.

* **One ACL user per team.** A user created with :func:`acl_rules` for its team runs the whole
  Store contract (and the reservation contract) on that team's keys, and is refused everything
  else: another team's keys, also when a script names them, and the server-wide commands
  (FLUSHDB, KEYS, CONFIG, SCRIPT FLUSH). Two teams share one Redis and never see each other. The
  rules are the ones the documentation prints.
* **TLS with a private CA.** ``rediss://…?ssl_ca_certs=`` reaches a TLS-only port whose
  certificate a private CA signed; without that CA the connection is refused, never downgraded.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from oxtail_core.errors import StoreBusy, StoreError
from oxtail_core.testing import StoreContract, StoreFactory
from oxtail_core.testing.contract import ME, entry, mint, take_all
from oxtail_core.testing.reservations import ReservationContract
from oxtail_core.testing.stores import Made
from oxtail_redis.store import RedisStore
from oxtail_redis.url import parse_url
from tests.redis.server import RedisServer, free_port, start_server

DOCS = Path(__file__).resolve().parents[2] / "docs" / "redis.md"


def acl_rules(team: str, password: str, prefix: str = "oxt") -> list[str]:
    """The ACL SETUSER rules of one team's user: its own keys, the command categories the store
    uses, nothing dangerous except INFO (for the durability check), no script flush or kill."""
    return [
        "on",
        f">{password}",
        "resetkeys",
        f"~{prefix}:{{{team}}}:*",
        "resetchannels",
        "-@all",
        "+@read",
        "+@write",
        "+@stream",
        "+@scripting",
        "+@connection",
        "+@transaction",
        "+time",
        "-@dangerous",
        "+info",
        "-script|flush",
        "-script|kill",
    ]


class Team:
    """A team namespace with its own ACL user on the test server (deleted, keys and all, after)."""

    def __init__(self, admin: redis.Redis, url: str) -> None:
        self.admin = admin
        self.name = "t" + uuid.uuid4().hex[:12]
        self.user = f"oxtail-{self.name}"
        password = uuid.uuid4().hex
        admin.execute_command("ACL", "SETUSER", self.user, *acl_rules(self.name, password))
        target = parse_url(url)
        self.url = f"redis://{self.user}:{password}@{target.host}:{target.port}/{target.db}"

    def store(self, team: str | None = None) -> RedisStore:
        """A store logged in as this team's user, on ``team``'s namespace (default: its own)."""
        return RedisStore(self.url, team or self.name, prefix="oxt", timeout_s=1.0)

    def drop(self) -> None:
        store = self.store()
        try:
            store.drop_namespace()  # SCAN + UNLINK as the team's own user: no FLUSHDB needed
        finally:
            store.close()
        self.admin.execute_command("ACL", "DELUSER", self.user)


@pytest.fixture
def admin(redis_url: str) -> Iterator[redis.Redis]:
    target = parse_url(redis_url)
    client = redis.Redis(host=target.host, port=target.port, db=target.db, socket_timeout=2)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def teams(admin: redis.Redis, redis_url: str) -> Iterator[list[Team]]:
    made = [Team(admin, redis_url), Team(admin, redis_url)]
    try:
        yield made
    finally:
        for team in made:
            team.drop()


class TestTheStoreContractAsATeamsAclUser(StoreContract, ReservationContract):
    @pytest.fixture
    def store_factory(self, admin: redis.Redis, redis_url: str) -> StoreFactory:
        def make() -> Made:
            team = Team(admin, redis_url)
            store = team.store()

            def cleanup() -> None:
                store.close()
                team.drop()

            return store, cleanup

        return make


def test_a_teams_user_is_refused_another_teams_keys_even_inside_a_script(teams: list[Team]) -> None:
    a, b = teams
    mine, theirs = a.store(), a.store(b.name)
    try:
        assert mine.append(ME, [mint(1)])
        b_store = b.store()
        assert b_store.append(ME, [mint(2)])
        b_store.close()
        with pytest.raises(StoreError, match="permission") as read:
            theirs.depth(ME)
        with pytest.raises(StoreError, match="permission") as script:
            theirs.append(ME, [mint(3)])  # EVALSHA naming B's keys: refused, nothing ran
        assert not isinstance(read.value, StoreBusy) and not isinstance(script.value, StoreBusy)
        with pytest.raises(redis.exceptions.NoPermissionError):
            mine._conn.client.get(f"oxt:{{{b.name}}}:in:anything")
        assert b.store().depth(ME) == 1 and mine.depth(ME) == 1
    finally:
        mine.close()
        theirs.close()


@pytest.mark.parametrize(
    "command", [("FLUSHDB",), ("KEYS", "*"), ("CONFIG", "GET", "*"), ("SCRIPT", "FLUSH")]
)
def test_a_teams_user_cannot_run_server_wide_commands(teams: list[Team], command: tuple[str, ...]) -> None:
    store = teams[0].store()
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            store._conn.client.execute_command(*command)
        assert store._conn.client.info("persistence")["aof_enabled"] in (0, 1)  # INFO stays allowed
    finally:
        store.close()


def test_two_teams_on_one_redis_each_with_its_own_user_never_see_each_other(teams: list[Team]) -> None:
    a, b = (team.store() for team in teams)
    try:
        a.append(ME, [mint(1)])
        a.registry_put(entry(4242))
        assert b.depth(ME) == 0 and b.registry_entries() == [] and take_all(b) is None
        b.append(ME, [mint(2)])
        batch = take_all(a)
        assert batch is not None and [e.id for e in batch.envelopes] == [mint(1).id]
        assert [e.server_pid for e in a.registry_entries()] == [4242]
    finally:
        a.close()
        b.close()


def test_the_acl_line_in_the_documentation_is_the_one_tested() -> None:
    line = " ".join(acl_rules("teama", "…"))
    assert f"ACL SETUSER oxtail-teama {line}" in DOCS.read_text(encoding="utf-8")


CA_STEPS = (
    "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=oxtail-test-CA -keyout {ca_key} -out {ca}",
    "req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout {key} -out {csr}",
    "x509 -req -in {csr} -CA {ca} -CAkey {ca_key} -CAcreateserial -days 2 -extfile {ext} -out {cert}",
)
"""openssl commands: a private CA, then a certificate for 127.0.0.1 that it signs."""


def private_ca(directory: Path) -> dict[str, Path]:
    """The files of :data:`CA_STEPS` (``ca``: the CA certificate; ``cert``/``key``: the server's)."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (the TLS test makes its own private CA with it)")
    files = {name: directory / f"{name}.pem" for name in ("ca_key", "ca", "key", "csr", "cert", "ext")}
    files["ext"].write_text("subjectAltName=IP:127.0.0.1\n")
    for step in CA_STEPS:
        args = [arg.format(**files) for arg in step.split()]
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)
    return files


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[RedisServer, int, Path]]:
    """A server with a TLS port (its plain port serves only the start-up probe) and the CA file."""
    certs = private_ca(tmp_path)
    tls_port = free_port()
    server = start_server(
        tmp_path,
        *("--tls-port", str(tls_port), "--tls-auth-clients", "no"),
        *("--tls-cert-file", str(certs["cert"]), "--tls-key-file", str(certs["key"])),
        *("--tls-ca-cert-file", str(certs["ca"])),
    )
    try:
        yield server, tls_port, certs["ca"]
    finally:
        server.stop()


def test_a_rediss_url_with_a_private_ca_runs_the_store_over_tls(
    tls_server: tuple[RedisServer, int, Path],
) -> None:
    _, port, ca = tls_server
    store = RedisStore(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}", "teama", prefix="oxt")
    try:
        token = store.change_token([ME])
        assert store.append(ME, [mint(1)])
        assert store.wait_for_change([ME], token, 2.0)  # the blocking pool speaks TLS too
        batch = take_all(store)
        assert batch is not None and [e.id for e in batch.envelopes] == [mint(1).id]
        store.settle(batch)
        assert store._conn.client.connection_pool.connection_kwargs["ssl_cert_reqs"] == "required"
    finally:
        store.drop_namespace()
        store.close()


def test_without_the_private_ca_a_tls_connection_is_refused_not_downgraded(
    tls_server: tuple[RedisServer, int, Path],
) -> None:
    _, port, _ = tls_server
    store = RedisStore(f"rediss://127.0.0.1:{port}/0", "teama", prefix="oxt", timeout_s=0.5)
    try:
        with pytest.raises(StoreError, match="CERTIFICATE_VERIFY_FAILED"):
            store.depth(ME)
        with pytest.raises(StoreError, match="CERTIFICATE_VERIFY_FAILED"):
            store.append(ME, [mint(1)])
    finally:
        store.close()
