"""Secrets kept in the database (webhook signing secrets, later storage credentials) are sealed with
the server key: AES-256-GCM, bound to what the value is (``purpose``) so a sealed value cannot be
moved to another column or row and still open."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from twister.config import Settings

SEALED_PREFIX = "v1:"
_NONCE_BYTES = 12


class SecretKeyError(RuntimeError):
    """The server key is missing, malformed, or not the one a value was sealed with."""


def new_secret_key() -> str:
    """A new server key, as TWISTER_SECRET_KEY takes it (base64 of 32 random bytes)."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def key_file(settings: Settings) -> Path:
    """Where the server key is kept when TWISTER_SECRET_KEY is not set."""
    return settings.data_dir / "secret-key"


def _load_or_create(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as file:
            file.write(new_secret_key() + "\n")
    return path.read_text().strip()


def _aead(key: str, setting: str) -> AESGCM:
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise SecretKeyError(f"{setting} must be base64 of 32 bytes; `twister secret-key` prints a new one")
    return AESGCM(raw)


class SecretBox:
    """Seals with the current server key; opens with it or, during a key rotation, a previous one."""

    def __init__(self, key: str, previous: list[str] | None = None) -> None:
        self._aead = _aead(key, "TWISTER_SECRET_KEY")
        self._openers = [self._aead, *(_aead(old, "TWISTER_PREVIOUS_SECRET_KEYS") for old in previous or [])]

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        """The key of ``TWISTER_SECRET_KEY``, else the one kept in ``DATA_DIR/secret-key`` (made on first
        use: right for one host; several hosts must share TWISTER_SECRET_KEY)."""
        previous = [key.strip() for key in settings.previous_secret_keys.split(",") if key.strip()]
        return cls(settings.secret_key or _load_or_create(key_file(settings)), previous)

    def seal(self, plaintext: str, purpose: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), purpose.encode())
        return SEALED_PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, purpose: str) -> str:
        if not is_sealed(sealed):
            raise SecretKeyError(f"{purpose} is not a sealed value")
        raw = base64.b64decode(sealed[len(SEALED_PREFIX) :])
        for aead in self._openers:
            try:
                return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], purpose.encode()).decode()
            except InvalidTag:
                continue
        raise SecretKeyError(
            f"{purpose} was sealed with another server key: every process must share TWISTER_SECRET_KEY "
            "(a replaced key goes in TWISTER_PREVIOUS_SECRET_KEYS until `twister secret-key --reseal` ran)"
        )


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED_PREFIX)
