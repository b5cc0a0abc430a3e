"""Request bodies: read within a byte limit, gunzip within the same limit, parse JSON.

A gzip body is inflated incrementally and refused as soon as it passes the limit, so a
small "zip bomb" cannot allocate more than the limit.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from starlette.requests import Request

from collector.exceptions import MalformedRequest, PayloadTooLarge, UnsupportedEncoding

__all__ = ["parse_json", "read_body"]


async def read_body(request: Request, limit: int) -> bytes:
    """The body with ``Content-Encoding`` removed; :class:`PayloadTooLarge` past ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip"):
        return gunzip(raw, limit)
    raise UnsupportedEncoding("Content-Encoding: only gzip and identity are accepted")


def gunzip(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"decompressed body exceeds {limit} bytes")
        if not inflater.eof:
            raise MalformedRequest("Content-Encoding: gzip stream is truncated")
    except zlib.error:
        raise MalformedRequest("Content-Encoding: body is not valid gzip") from None
    return out


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON (at byte {exc.pos})") from None
