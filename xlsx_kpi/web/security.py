"""Passwords (scrypt), unit tokens (random, stored as hashes), CSRF tokens, and a login throttle."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

__all__ = ["Throttle", "hash_password", "hash_token", "new_token", "unit_csrf", "verify_password"]

# scrypt with n=2**14, r=8, p=1 (16 MB, ~50 ms): the parameters OWASP lists as a minimum for scrypt.
_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(digest) // 2
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def new_token() -> str:
    """A unit's link token: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    """Tokens are stored as SHA-256 only: 192 random bits need no slow hash, and a copied database gives no link."""
    return hashlib.sha256(token.encode()).hexdigest()


def unit_csrf(secret: str, token_hash: str) -> str:
    """The CSRF value of a unit's forms: bound to its link, so one unit's page cannot post for another."""
    return hmac.new(secret.encode(), f"unit:{token_hash}".encode(), hashlib.sha256).hexdigest()


class Throttle:
    """At most `limit` failed logins per client address in `window` seconds."""

    def __init__(self, limit: int = 5, window: float = 600.0) -> None:
        self.limit, self.window = limit, window
        self._fails: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, client: str) -> bool:
        with self._lock:
            recent = [t for t in self._fails.get(client, []) if time.monotonic() - t < self.window]
            self._fails[client] = recent
            return len(recent) >= self.limit

    def fail(self, client: str) -> None:
        with self._lock:
            self._fails.setdefault(client, []).append(time.monotonic())

    def clear(self, client: str) -> None:
        with self._lock:
            self._fails.pop(client, None)
