"""API keys: each belongs to one tenant, or to every tenant (an admin key).

Only a SHA-256 digest of a key is stored. A fast hash is right here: keys are 256 random bits,
so there is nothing to brute-force, and a digest can be looked up by index on every request
(slow password hashes protect guessable secrets, which these are not).
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import class_row

PREFIX = "fik_"
AuthMode = Literal["auto", "on", "off"]


@dataclass(frozen=True)
class ApiKey:
    id: int
    tenant: str | None  # None: an admin key
    name: str
    prefix: str  # the key's first characters, to recognise it in `keys list`
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: one tenant, or every tenant (admin or auth off)."""

    tenant: str | None

    @property
    def is_admin(self) -> bool:
        return self.tenant is None


OPEN = Caller(tenant=None)  # what every request is when keys are not required


def required(mode: AuthMode, host: str) -> bool:
    """`auto`: keys are required unless the API listens on loopback only."""
    if mode != "auto":
        return mode == "on"
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may be reachable from elsewhere
        return True


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def create(conn: psycopg.Connection[Any], tenant: str | None, name: str = "") -> tuple[str, ApiKey]:
    """A new key (shown once: only its digest is kept) and its record."""
    secret = PREFIX + secrets.token_urlsafe(32)
    with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        row = cur.execute(
            """INSERT INTO api_keys (tenant, name, prefix, key_digest) VALUES (%s, %s, %s, %s)
               RETURNING id, tenant, name, prefix, created_at, revoked_at""",
            (tenant, name, secret[: len(PREFIX) + 6], digest(secret)),
        ).fetchone()
    assert row is not None
    return secret, row


def listing(conn: psycopg.Connection[Any]) -> list[ApiKey]:
    with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        return cur.execute(
            "SELECT id, tenant, name, prefix, created_at, revoked_at FROM api_keys ORDER BY id"
        ).fetchall()


def revoke(conn: psycopg.Connection[Any], key_id: int) -> bool:
    """Revoke at once (every request looks its key up); False if no such live key."""
    cur = conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (key_id,)
    )
    return cur.rowcount == 1


def caller_for(conn: psycopg.Connection[Any], secret: str) -> Caller | None:
    """The caller a key stands for; None if unknown or revoked."""
    row = conn.execute(
        "SELECT tenant FROM api_keys WHERE key_digest = %s AND revoked_at IS NULL",
        (digest(secret),),
    ).fetchone()
    return Caller(tenant=row[0]) if row is not None else None
