"""Which product image URLs cdpflow keeps: absolute ``http(s)`` ones only.

An image URL ends up as the ``src`` of an ``<img>`` in an email, so one rule decides
everywhere it is met (the collector's mappers refuse the others, naming the field; the
profile state and the mailer drop any that came another way): the URL must be
``http://`` or ``https://`` with a host, without whitespace or control characters
(which browsers strip, e.g. ``java\\tscript:``), and without a user name or password in
it. A protocol-relative ``//host/path`` (what many shop themes print) is taken as
``https:``. Nothing else is rewritten: the length is bounded like every other string
(``state.validation.EventLimits.max_field_bytes``).

>>> http_url("https://cdn.shop.example/p/bag-7.jpg")
'https://cdn.shop.example/p/bag-7.jpg'
>>> http_url("//cdn.shop.example/p/bag-7.jpg")
'https://cdn.shop.example/p/bag-7.jpg'
>>> [http_url(u) for u in ("javascript:alert(1)", "data:image/png;base64,AAAA",
...                        "/p/bag.jpg", "https://user:pw@shop.example/x.jpg")]
[None, None, None, None]
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = ["SCHEMES", "http_url", "safe_image_url"]

SCHEMES: Final = ("http", "https")
_PLAIN = re.compile(r"[^\x00-\x20\x7f]+")  # no control character, no space


def http_url(text: str) -> str | None:
    """``text`` as a usable image URL (a ``//`` one made ``https:``), or ``None``."""
    if not _PLAIN.fullmatch(text):
        return None
    if text.startswith("//"):
        text = "https:" + text
    scheme, _, rest = text.partition(":")
    if scheme.lower() not in SCHEMES or not rest.startswith("//"):
        return None
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if not host or "@" in parts.netloc:
        return None
    return text


def safe_image_url(value: Any) -> str | None:
    """:func:`http_url` of any value: ``None`` for a non-string, an empty one or an unusable
    URL (where nothing can be refused any more: the profile state, the mailer)."""
    return http_url(value) if isinstance(value, str) and value else None
