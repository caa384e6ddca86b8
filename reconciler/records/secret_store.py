"""Setpoint's encrypted secret store: values encrypted with AES-256-GCM under an operator key.

The key (`SETPOINT_SECRET_STORE_KEY`, from `setpoint secrets keygen`) never touches the
database. Each value is bound to its name as associated data, so swapping two rows in the
database makes both undecryptable instead of silently exchanging the secrets.
"""

from __future__ import annotations

import base64
import os
import re
import secrets as stdlib_secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from reconciler.errors import SecretStoreError
from reconciler.records import audit
from reconciler.records.audit_events import AuditEvent
from reconciler.records.columns import UTCDateTime
from reconciler.records.database import session_scope, table_of


class Installation(SQLModel, table=True):
    """Per-installation values; the salt keeps secret hashes in plans incomparable elsewhere."""

    __tablename__ = "installation"

    id: int = Field(default=1, primary_key=True)
    secret_salt: str = Field(max_length=128)
    created_at: datetime = Field(sa_type=UTCDateTime)


class StoredSecret(SQLModel, table=True):
    __tablename__ = "stored_secrets"

    name: str = Field(primary_key=True, max_length=200)
    ciphertext: str = Field(max_length=20000)  # base64(nonce || AES-256-GCM(value, aad=name))
    # The store's clock (the runtime's, as wiring passes it), never a default.
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_NONCE_BYTES = 12


def generate_key() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


def _parse_key(key: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(key.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise SecretStoreError("the secret store key is not base64") from None
    if len(raw) != 32:
        raise SecretStoreError(
            "the secret store key must be 32 bytes, base64-encoded (use `setpoint secrets keygen`)"
        )
    return raw


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise SecretStoreError(f"{name!r} is not a secret name: use letters, digits, '_', '.', '-'")
    return name


class SecretStore:
    """`clock` gives the time a write is stamped with: the runtime's (`Runtime.now`) where
    there is one, so stored secrets and their audit records agree with the engine's time."""

    def __init__(self, engine: Engine, key: str, *, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._aead = AESGCM(_parse_key(key))
        self._clock = clock

    def __repr__(self) -> str:
        return "SecretStore(***)"

    def put(self, name: str, value: str, *, actor: str | None = None) -> bool:
        """Store `value` under `name`; True when the name is new.

        With `actor`, the `secret_stored` audit record is written in the same transaction:
        if the record cannot be written, the secret is not stored either.
        """
        check_name(name)
        if not value:
            raise SecretStoreError("refusing to store an empty value")
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, value.encode("utf-8"), name.encode("utf-8"))
        text = base64.b64encode(sealed).decode("ascii")
        now = self._clock()
        with self._unit_of_work(actor) as session:
            row = session.get(StoredSecret, name)
            created = row is None
            if row is None:
                row = StoredSecret(name=name, ciphertext=text, created_at=now, updated_at=now)
            else:
                row.ciphertext, row.updated_at = text, now
            session.add(row)
            self._record(session, actor, AuditEvent.secret_stored, name, now, created=created)
        return created

    def _unit_of_work(self, actor: str | None) -> AbstractContextManager[Session]:
        if actor is None:
            return session_scope(self._engine)
        return audit.transaction(self._engine)

    @staticmethod
    def _record(
        session: Session,
        actor: str | None,
        event: AuditEvent,
        name: str,
        at: datetime,
        **data: bool,
    ) -> None:
        if actor is not None:
            audit.append(session, event=event, actor=actor, data={"name": name, **data}, at=at)

    def get(self, name: str) -> str | None:
        with session_scope(self._engine) as session:
            row = session.get(StoredSecret, name)
            text = row.ciphertext if row is not None else None
        if text is None:
            return None
        sealed = base64.b64decode(text)
        nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, name.encode("utf-8")).decode("utf-8")
        except InvalidTag:
            raise SecretStoreError(
                f"cannot decrypt {name!r}: wrong SETPOINT_SECRET_STORE_KEY, or the row was altered"
            ) from None

    def delete(self, name: str, *, actor: str | None = None) -> bool:
        """Delete `name`; with `actor`, audited in the same transaction."""
        with self._unit_of_work(actor) as session:
            row = session.get(StoredSecret, name)
            if row is None:
                return False
            session.delete(row)
            self._record(session, actor, AuditEvent.secret_deleted, name, self._clock())
            return True

    def names(self) -> list[tuple[str, str]]:
        """(name, last updated, ISO 8601) of every stored secret; values are not read."""
        with session_scope(self._engine) as session:
            rows = session.exec(select(StoredSecret).order_by(StoredSecret.name)).all()
            return [(r.name, r.updated_at.isoformat()) for r in rows]


def installation_salt(engine: Engine, now: datetime) -> str:
    """This installation's salt, created on first use (at `now`); concurrent first uses
    agree on one."""
    with Session(engine) as session:
        row = session.get(Installation, 1)
        if row is not None:
            return row.secret_salt
        values = {"id": 1, "secret_salt": stdlib_secrets.token_hex(32), "created_at": now}
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        table = table_of(Installation)
        session.execute(dialect.insert(table).values(**values).on_conflict_do_nothing())
        session.commit()
        row = session.get(Installation, 1, populate_existing=True)
        assert row is not None
        return row.secret_salt
