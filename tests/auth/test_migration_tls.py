"""The identity tables' migration on SQLite and PostgreSQL; TLS helpers; the SSO claims mapper."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from plantlink.auth import AuthError, self_signed, ssl_context, tls_args
from plantlink.auth.oidc import GroupRoleMapper
from plantlink.store import Store, default_url, migrate
from plantlink.store.tables import metadata

AUTH_TABLES = {"auth_users", "auth_roles", "auth_tokens", "auth_sessions", "audit_log", "audit_head"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_creates_the_declared_tables_and_downgrades(backend: str, tmp_path: Path,
                                                              request: pytest.FixtureRequest) -> None:
    url = default_url(tmp_path) if backend == "sqlite" else request.getfixturevalue("pg_url")
    s = Store.open(url)
    assert set(sa.inspect(s.engine).get_table_names()) >= AUTH_TABLES
    with s.engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), metadata) == []
        assert c.execute(sa.text("SELECT id, last_id, last_hash FROM audit_head")).all() == [(1, 0, "0" * 64)]
    from alembic import command

    cfg = migrate._config()
    with s.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert not AUTH_TABLES & set(sa.inspect(s.engine).get_table_names())
    migrate.upgrade(s.engine)
    assert set(sa.inspect(s.engine).get_table_names()) >= AUTH_TABLES
    s.close()


def test_self_signed_certificate_serves_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ctx = ssl_context(cert, key)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert self_signed(tmp_path) == (cert, key) and cert.read_bytes() == self_signed(tmp_path)[0].read_bytes()
    assert tls_args(tmp_path) == {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    other_cert, other_key = self_signed(tmp_path / "other")
    with pytest.raises(AuthError, match="cannot use TLS certificate"):
        ssl_context(cert, other_key)
    with pytest.raises(AuthError, match="not found"):
        ssl_context(tmp_path / "none.pem", key)
    with pytest.raises(AuthError, match="both"):
        tls_args(tmp_path, cert=cert)
    # a client trusting this certificate completes a handshake with a server using the context
    import socket
    import threading

    client_ctx = ssl.create_default_context(cafile=str(cert))
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]

        def accept() -> None:
            conn, _ = srv.accept()
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")

        t = threading.Thread(target=accept)
        t.start()
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.recv(2) == b"ok"
        t.join()
    assert other_cert.is_file()


def test_group_role_mapper() -> None:
    m = GroupRoleMapper({"win-ops": ("windsor", "operator"), "win-eng": ("windsor", "engineer"),
                         "all-view": ("*", "viewer")})
    ident = m.map({"preferred_username": "alice", "groups": ["win-ops", "win-eng", "all-view", "other"]})
    assert ident is not None and ident.name == "alice" and ident.roles == {"windsor": "engineer", "*": "viewer"}
    assert m.map({"preferred_username": "bob", "groups": ["other"]}) is None
    assert m.map({"groups": ["win-ops"]}) is None
