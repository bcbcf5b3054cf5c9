"""API keys and webhook secrets. Keys are random 256-bit tokens, so a plain SHA-256 is a safe
lookup hash; only the hash is stored."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "tw_"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_hex(24)
