"""Password hashing with argon2id (argon2-cffi), and the random tokens the API hands out."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
# A hash of a random password: verifying against it costs what a real user's check costs,
# so an unknown username answers no faster than a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))

TOKEN_PREFIX = "bk_"  # noqa: S105 (a prefix, not a secret)


def hash_password(password: str) -> str:
    """Argon2id hash of ``password`` for ``users.password_hash``."""
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing hash (devices) still spends the time."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A fresh random bearer token (32 bytes of entropy), shown to its owner once."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The sha256 hex stored in ``api_tokens.token_hash``; the raw token is never stored.

    Example:
        >>> len(token_hash("bk_x"))
        64
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
