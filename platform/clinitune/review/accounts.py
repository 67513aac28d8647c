"""Accounts, passwords, sign-in rate limit, server-side sessions and CSRF tokens.

* Passwords: Argon2id (``argon2-cffi``'s defaults, rehashed on sign-in when they change); an
  unknown user name costs the same hash check as a wrong password, and both get one generic error.
* Rate limit: failed sign-ins are counted per (user name, client address) and per address over a
  sliding window; beyond the limit an attempt is refused before the password is looked at.
* Sessions: the cookie carries 32 random bytes; the database keeps only their SHA-256, with an
  idle and an absolute expiry, and the session's CSRF token (synchroniser-token pattern).
* The sign-in form, used before there is a session, carries a token signed with the app key over a
  random nonce held in a short-lived cookie.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from clinitune.errors import UserError
from clinitune.review.models import ROLES, AuditEvent, LoginAttempt, SessionRow, Setting, User, utcnow

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("clinitune-review-dummy-password")
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-@")


def audit(db: Session, actor: str, action: str, **detail) -> None:
    db.add(AuditEvent(actor=actor, action=action, detail=detail))


# --- accounts ------------------------------------------------------------------------------------


def normalize_username(name: str) -> str:
    return (name or "").strip().lower()


def check_username(name: str) -> str:
    u = normalize_username(name)
    if not u or len(u) > 64 or not set(u) <= USERNAME_CHARS:
        raise UserError(f"user name '{name[:64]}' is not valid.",
                        fix="use 1-64 characters: letters, digits, '.', '_', '-', '@'.")
    return u


def check_password(password: str, min_length: int) -> None:
    if len(password or "") < min_length:
        raise UserError(f"the password is too short ({len(password or '')} characters).",
                        fix=f"use at least {min_length} characters (a passphrase of several words works well).")
    if len(password) > 1024:
        raise UserError("the password is too long.", fix="use at most 1024 characters.")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def add_user(db: Session, username: str, password: str, role: str, *, min_length: int, actor: str) -> User:
    u = check_username(username)
    if role not in ROLES:
        raise UserError(f"role '{role}' is not known.", fix=f"use one of: {', '.join(ROLES)}.")
    check_password(password, min_length)
    if db.scalar(select(User).where(User.username == u)) is not None:
        raise UserError(f"user '{u}' already exists.", fix="choose another user name, or change that user's password.")
    user = User(username=u, password_hash=hash_password(password), role=role, active=True)
    db.add(user)
    db.flush()
    audit(db, actor, "user_added", user=u, role=role)
    return user


def get_user(db: Session, username: str) -> User:
    user = db.scalar(select(User).where(User.username == normalize_username(username)))
    if user is None:
        raise UserError(f"user '{username}' does not exist.", fix="run `clinitune review users list` to see the accounts.")
    return user


def set_password(db: Session, user: User, password: str, *, min_length: int, actor: str) -> None:
    check_password(password, min_length)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    db.execute(delete(SessionRow).where(SessionRow.user_id == user.id))  # every session of the old password ends
    audit(db, actor, "password_changed", user=user.username)


def set_active(db: Session, user: User, active: bool, *, actor: str) -> None:
    user.active = active
    if not active:
        db.execute(delete(SessionRow).where(SessionRow.user_id == user.id))
    audit(db, actor, "user_activated" if active else "user_deactivated", user=user.username)


def set_role(db: Session, user: User, role: str, *, actor: str) -> None:
    if role not in ROLES:
        raise UserError(f"role '{role}' is not known.", fix=f"use one of: {', '.join(ROLES)}.")
    user.role = role
    audit(db, actor, "role_changed", user=user.username, role=role)


# --- sign-in -------------------------------------------------------------------------------------


@dataclass
class SignInResult:
    user: User | None
    throttled: bool = False


def _recent_failures(db: Session, since: dt.datetime, *, username: str | None, ip: str) -> int:
    q = select(func.count()).select_from(LoginAttempt).where(LoginAttempt.ip == ip, LoginAttempt.at >= since,
                                                             LoginAttempt.succeeded.is_(False))
    if username is not None:
        q = q.where(LoginAttempt.username == username)
    return int(db.scalar(q) or 0)


def sign_in(db: Session, username: str, password: str, ip: str, *, max_failures: int, max_failures_per_ip: int,
            window_minutes: int) -> SignInResult:
    """Check a sign-in attempt (recorded either way); throttled attempts are refused unchecked."""
    u = normalize_username(username)[:64]
    ip = (ip or "unknown")[:64]
    since = utcnow() - dt.timedelta(minutes=window_minutes)
    if (_recent_failures(db, since, username=u, ip=ip) >= max_failures
            or _recent_failures(db, since, username=None, ip=ip) >= max_failures_per_ip):
        db.add(LoginAttempt(username=u, ip=ip, succeeded=False))
        return SignInResult(None, throttled=True)
    user = db.scalar(select(User).where(User.username == u))
    ok = False
    try:
        ok = _HASHER.verify(user.password_hash if user is not None else _DUMMY_HASH, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    ok = ok and user is not None and user.active
    db.add(LoginAttempt(username=u, ip=ip, succeeded=ok))
    if not ok:
        return SignInResult(None)
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return SignInResult(user)


def verify_password(user: User, password: str) -> bool:
    try:
        return bool(_HASHER.verify(user.password_hash, password or ""))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# --- sessions ------------------------------------------------------------------------------------


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_session(db: Session, user: User, *, max_hours: float) -> tuple[str, SessionRow]:
    """A new session for ``user``: (cookie token, row). Only the token's hash is stored."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = SessionRow(id=_token_id(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32), created_at=now,
                     last_seen_at=now, expires_at=now + dt.timedelta(hours=max_hours))
    db.add(row)
    db.flush()
    return token, row


def find_session(db: Session, token: str | None, *, idle_minutes: int) -> SessionRow | None:
    """The live session behind a cookie token (None when missing, expired, idle too long or its user inactive)."""
    if not token or len(token) > 200:
        return None
    row = db.get(SessionRow, _token_id(token))
    if row is None:
        return None
    now = utcnow()
    if now >= row.expires_at or now - row.last_seen_at >= dt.timedelta(minutes=idle_minutes) or not row.user.active:
        db.delete(row)
        return None
    if now - row.last_seen_at >= dt.timedelta(seconds=30):
        row.last_seen_at = now
    return row


def end_session(db: Session, token: str | None) -> None:
    if token:
        db.execute(delete(SessionRow).where(SessionRow.id == _token_id(token)))


def csrf_ok(row: SessionRow | None, submitted: str | None) -> bool:
    return row is not None and bool(submitted) and hmac.compare_digest(row.csrf_token, str(submitted))


def purge_expired(db: Session, *, keep_attempts_days: int = 90) -> None:
    now = utcnow()
    db.execute(delete(SessionRow).where(SessionRow.expires_at < now))
    db.execute(delete(LoginAttempt).where(LoginAttempt.at < now - dt.timedelta(days=keep_attempts_days)))


# --- the sign-in form's token --------------------------------------------------------------------


def app_secret(db: Session, env_var: str) -> bytes:
    """The key signing sign-in form tokens: from ``env_var``, else generated once and kept in the database."""
    value = os.environ.get(env_var or "")
    if value:
        return value.encode("utf-8")
    row = db.get(Setting, "form_key")
    if row is None:
        row = Setting(key="form_key", value=secrets.token_hex(32))
        db.add(row)
        db.flush()
    return row.value.encode("utf-8")


def login_token(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, f"sign-in:{nonce}".encode("utf-8"), hashlib.sha256).hexdigest()


def login_token_ok(secret: bytes, nonce: str | None, submitted: str | None) -> bool:
    return bool(nonce) and bool(submitted) and hmac.compare_digest(login_token(secret, str(nonce)), str(submitted))
