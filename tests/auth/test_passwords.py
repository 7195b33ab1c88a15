"""Password hashing: argon2id, verification, policy, damaged hashes, per-installation keys."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from plantlink.auth.keys import load_or_create_key
from plantlink.auth.passwords import Passwords, generate_password
from plantlink.errors import InvalidRequest
from tests.auth.conftest import FAST


def test_hash_is_argon2id_salted_and_verifies() -> None:
    pw = Passwords(FAST)
    h1, h2 = pw.hash("correct horse battery"), pw.hash("correct horse battery")
    assert h1.startswith("$argon2id$") and h1 != h2  # random salt
    assert "correct horse" not in h1
    assert pw.verify(h1, "correct horse battery") and pw.verify(h2, "correct horse battery")
    assert not pw.verify(h1, "correct horse batterY")
    assert not pw.verify("not a hash", "correct horse battery")
    assert not pw.verify(h1, "x" * 5000)
    # an independent argon2 implementation instance agrees
    assert PasswordHasher().verify(h1, "correct horse battery")


def test_policy_and_generation() -> None:
    pw = Passwords(FAST)
    for bad in ("short", " leading-space-pw", "tab\tinside-password", "x" * 1025):
        with pytest.raises(InvalidRequest):
            pw.hash(bad)
    generated = {generate_password() for _ in range(50)}
    assert len(generated) == 50 and all(len(g) == 20 for g in generated)


def test_needs_rehash_when_cost_changes() -> None:
    weak = Passwords(FAST).hash("a long enough pw")
    strong = Passwords(type(FAST)(argon2_time_cost=2, argon2_memory_kib=2048, argon2_parallelism=1))
    assert strong.needs_rehash(weak) and not Passwords(FAST).needs_rehash(weak)


def test_installation_key_is_random_0600_and_stable(tmp_path: Path) -> None:
    k1 = load_or_create_key(tmp_path, "k.key")
    assert len(k1) == 32 and load_or_create_key(tmp_path, "k.key") == k1
    path = tmp_path / "secrets" / "k.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key(tmp_path / "other", "k.key") != k1
    path.chmod(0o644)
    assert load_or_create_key(tmp_path, "k.key") == k1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
