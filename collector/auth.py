"""Write keys and their scopes: which configured key a request names, and its kind.

A *public* key ships in a browser snippet or a mobile app, so anyone can read it: it may
send a customer's own events, never merge identities (alias) nor date events after their
receipt. A *server* key stays on the customer's servers and may do everything.

Keys are compared in constant time with every configured key, and are known by their kind
and position only (``public:0``), never by their value: that name is what rate limits,
in-flight shares and logs use.

>>> from cdpflow.secrets import Secret
>>> ring = KeyRing(public=(Secret("pk"),), server=(Secret("sk"),))
>>> ring.find(b"sk")
WriteKey(client='server:0', public=False)
>>> ring.find(b"nope")
Traceback (most recent call last):
...
collector.exceptions.Unauthorized: unknown write key
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from cdpflow.secrets import Secret
from collector.exceptions import Unauthorized

__all__ = ["KeyRing", "WriteKey"]


@dataclass(frozen=True, slots=True)
class WriteKey:
    """An authenticated key: its name (``public:N`` or ``server:N``) and its kind."""

    client: str
    public: bool


class KeyRing:
    """The configured write keys of both kinds."""

    def __init__(self, public: Sequence[Secret], server: Sequence[Secret]) -> None:
        self._keys = [(k, WriteKey(f"public:{i}", True)) for i, k in enumerate(public)]
        self._keys += [(k, WriteKey(f"server:{i}", False)) for i, k in enumerate(server)]

    def find(self, candidate: bytes) -> WriteKey:
        """The key equal to ``candidate`` or :class:`Unauthorized`; every key is compared,
        so the time taken does not tell which one came close."""
        found = None
        for secret, key in self._keys:
            if secret.matches(candidate):
                found = key
        if found is None:
            raise Unauthorized("unknown write key")
        return found

    def from_header(self, header: str | None) -> WriteKey | None:
        """The key named by HTTP Basic auth (the user name); None without the header."""
        if header is None:
            return None  # the key may be in the body (sendBeacon cannot set headers)
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise Unauthorized("Authorization: expected Basic with the write key as user name")
        try:
            user = base64.b64decode(encoded.strip(), validate=True).partition(b":")[0]
        except (binascii.Error, ValueError):
            raise Unauthorized("Authorization: not base64") from None
        return self.find(user)

    def from_body(self, value: object) -> WriteKey:
        """The key named by a body's ``writeKey``."""
        if not isinstance(value, str) or not value:
            raise Unauthorized("write key required: HTTP Basic user name or writeKey in the body")
        return self.find(value.encode())
