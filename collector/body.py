"""Request bodies: read within a byte limit and a deadline, gunzip within the same limit,
parse JSON.

A gzip body is inflated incrementally and refused as soon as it passes the limit, so a
small "zip bomb" cannot allocate more than the limit; it must be one gzip member and
nothing after it. The deadline covers the whole body, not the gap between two chunks: a
client that sends a byte a second is cut off as surely as one that sends nothing.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import orjson
from starlette.requests import Request

from collector.exceptions import BodyTimeout, MalformedRequest, PayloadTooLarge, UnsupportedEncoding

__all__ = ["gunzip", "parse_json", "read_body"]


async def read_body(request: Request, limit: int, timeout_s: float | None = None) -> bytes:
    """The body with ``Content-Encoding`` removed; :class:`PayloadTooLarge` past ``limit``,
    :class:`BodyTimeout` when it has not all arrived ``timeout_s`` seconds after the start."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body exceeds {limit} bytes")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise UnsupportedEncoding("Content-Encoding: only gzip and identity are accepted")
    try:
        async with asyncio.timeout(timeout_s):
            raw = await _read(request, limit)
    except TimeoutError:
        raise BodyTimeout(f"the body did not arrive within {timeout_s:g} s") from None
    if encoding in ("", "identity"):
        return raw
    return gunzip(raw, limit)


async def _read(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


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
    if inflater.unused_data:
        raise MalformedRequest("Content-Encoding: bytes after the end of the gzip stream")
    return out


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON (at byte {exc.pos})") from None
