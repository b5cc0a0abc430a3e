"""The rendered abandoned-cart HTML in headless Debian chromium: it lays out offline (no
external resource) and shows the card, the lines and the call to action.

The screenshot is decoded here (PNG, by hand: no imaging library in the venv) and checked
for the layout's colours. ``CDPFLOW_UPDATE_SCREENSHOTS=1`` also writes it to
``docs/email-abandoned-cart.png``, the README's picture.
"""

from __future__ import annotations

import os
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

from mailer.links import LinkConfig
from mailer.preview import sample_trigger
from mailer.templates import Renderer, context_for
from tests.chromium import chromium

DOCS = Path(__file__).resolve().parents[2] / "docs" / "email-abandoned-cart.png"
WIDTH, HEIGHT = 700, 620
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert (depth, interlace) == (8, 0), header
    assert color in (2, 6), header
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev, pixels, i = bytearray(stride), [], 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 0xFF
        pixels += [tuple(line[x : x + 3]) for x in range(0, stride, bpp)]
        prev = line
    return width, height, pixels  # type: ignore[return-value]


def test_abandoned_cart_html_renders_in_chromium(tmp_path) -> None:
    links = LinkConfig(shop_url="https://shop.example/",
                       product_url="https://shop.example/p/{product_id}",
                       cart_url="https://shop.example/cart")  # fmt: skip
    trigger = sample_trigger("abandoned_cart", 1_795_000_000_000)
    unsubscribe = "https://collect.shop.example/v1/unsubscribe?t=1.sample.token"
    html = (
        Renderer()
        .render("abandoned_cart", context_for(trigger, None, "Test Shop", links, unsubscribe))
        .html
    )
    page, shot = tmp_path / "email.html", tmp_path / "email.png"
    page.write_text(html, encoding="utf-8")
    proc = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shot.exists(), proc.stderr[-2000:]
    data = shot.read_bytes()
    assert len(data) > 10_000  # a blank page of this size compresses to a few hundred bytes
    width, height, pixels = decode_png(data)
    assert (width, height) == (WIDTH, HEIGHT)
    colours = Counter(pixels)
    assert len(colours) > 50  # text is anti-aliased: many shades
    page_grey, card_white, button_blue = (0xF4, 0xF4, 0xF5), (0xFF, 0xFF, 0xFF), (0x1A, 0x56, 0xDB)
    assert colours[page_grey] > 0.02 * len(pixels)  # the page around the card
    assert colours[card_white] > 0.25 * len(pixels)  # the card
    assert colours[button_blue] > 2_000  # the call to action, a solid button
    # Dark text inside the card: the lines, prices and total were laid out.
    assert sum(n for (r, g, b), n in colours.items() if r + g + b < 200) > 1_000
    if os.environ.get("CDPFLOW_UPDATE_SCREENSHOTS") == "1":
        DOCS.parent.mkdir(exist_ok=True)
        DOCS.write_bytes(data)
