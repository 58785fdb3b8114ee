"""Keyed pseudonyms for customer and device identifiers.

A raw identifier (loyalty card, phone MAC) must never reach a table, a topic or
Redis. HMAC-SHA256 under a secret keeps one person's events linkable (the same
id hashes to the same pseudonym) without a way back to the id for anyone who
lacks the secret, unlike a plain hash, which a dictionary of card numbers
reverses.

Examples
--------
>>> pseudonymize = Pseudonymizer(b"secret")
>>> pseudonymize("card-4111")
'h1:57f71817970acd727fbd86d93b363769'
>>> pseudonymize("card-4111") == Pseudonymizer(b"secret")("card-4111")
True
>>> pseudonymize("card-4111") == Pseudonymizer(b"other")("card-4111")
False

"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["PSEUDONYM_PREFIX", "Pseudonymizer"]

#: Marks a pseudonym and the scheme that made it, so a later key or scheme change is visible.
PSEUDONYM_PREFIX = "h1:"


class Pseudonymizer:
    """Replace an identifier by `h1:` + the first 32 hex digits of HMAC-SHA256(secret, id).

    Parameters
    ----------
    secret
        The key; at least 16 bytes in production (the settings enforce it).

    """

    __slots__ = ("_key",)

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the pseudonym secret must not be empty")
        self._key = secret

    def __call__(self, identifier: str) -> str:
        digest = hmac.new(self._key, identifier.encode("utf-8"), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:32]

    def __repr__(self) -> str:
        # Never show the key, not even in a traceback.
        return "Pseudonymizer(secret=***)"
