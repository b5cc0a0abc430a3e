"""A product catalogue from a shop's feed file: fills in what a trigger's products lack.

Triggers carry what the events said; many events name a product by id alone. With
``CDPFLOW_MAILER_CATALOG_FILE`` set, the mailer reads a feed once at start (JSON Lines,
``.jsonl``, one object a line; or CSV, ``.csv``, with a header row) with the columns
``product_id`` (required), ``name``, ``category``, ``price``, ``currency`` and
``image_url`` (an absolute http(s) URL, :mod:`state.image_url`). A value the trigger has
wins; the catalogue only fills the gaps. A bad row is a one-line error naming
the file, the line and the field, never the value.

>>> c = Catalog({"sku-1": Product("Trail shoe", "shoes", 89.9, "EUR")})
>>> c.fill({"product_id": "sku-1", "name": None, "price": None, "currency": None,
...         "category": None})["name"]
'Trail shoe'
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from cdpflow.errors import ConfigError
from state.image_url import http_url

__all__ = ["Catalog", "Product", "load_catalog"]

_CURRENCY = re.compile(r"[A-Z]{3}")
_MAX_TEXT = 300
_MAX_PRICE = 1e9
_MAX_URL = 2048
_FIELDS = ("name", "category", "price", "currency", "image_url")


@dataclass(frozen=True, slots=True)
class Product:
    name: str | None = None
    category: str | None = None
    price: float | None = None
    currency: str | None = None
    image_url: str | None = None


@dataclass(frozen=True, slots=True)
class Catalog:
    products: Mapping[str, Product] = field(default_factory=dict)

    def fill(self, product: dict[str, Any]) -> dict[str, Any]:
        """``product`` (``product_id``, ``name``, ``category``, ``price``, ``currency``,
        ``image_url``) with its missing values taken from the catalogue."""
        known = self.products.get(str(product.get("product_id") or ""))
        if known is None:
            return product
        out = dict(product)
        for name in _FIELDS:
            if out.get(name) is None:
                out[name] = getattr(known, name)
        return out


def load_catalog(path: Path) -> Catalog:
    """Read ``path`` (``.jsonl`` or ``.csv``); :class:`ConfigError` for a bad file or row."""
    setting = "CDPFLOW_MAILER_CATALOG_FILE"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{setting}: {path} is not UTF-8") from None
    if path.suffix == ".csv":
        rows: Iterator[tuple[int, Any]] = enumerate(csv.DictReader(io.StringIO(text)), 2)
    elif path.suffix in (".jsonl", ".ndjson"):
        rows = _json_lines(text, path, setting)
    else:
        raise ConfigError(f"{setting}: {path} must end in .jsonl or .csv")
    products: dict[str, Product] = {}
    for line, row in rows:
        where = f"{setting}: {path} line {line}"
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: expected an object")
        pid = _text(row.get("product_id"), f"{where}: product_id")
        if pid is None:
            raise ConfigError(f"{where}: product_id is required")
        products[pid] = Product(
            name=_text(row.get("name"), f"{where}: name"),
            category=_text(row.get("category"), f"{where}: category"),
            price=_price(row.get("price"), f"{where}: price"),
            currency=_currency(row.get("currency"), f"{where}: currency"),
            image_url=_image(row.get("image_url"), f"{where}: image_url"),
        )
    return Catalog(products)


def _json_lines(text: str, path: Path, setting: str) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield number, orjson.loads(line)
            except orjson.JSONDecodeError:
                raise ConfigError(f"{setting}: {path} line {number}: not JSON") from None


def _text(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > _MAX_TEXT or not value.isprintable():
        raise ConfigError(f"{where}: expected printable text of at most {_MAX_TEXT} characters")
    return value.strip() or None


def _price(value: Any, where: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        price = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        price = math.nan
    if not math.isfinite(price) or not 0 <= price <= _MAX_PRICE:
        raise ConfigError(f"{where}: expected a number from 0 to {_MAX_PRICE:g}")
    return price


def _image(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    url = http_url(value) if isinstance(value, str) and len(value) <= _MAX_URL else None
    if url is None:
        raise ConfigError(f"{where}: expected an absolute http(s) URL of at most {_MAX_URL} "
                          "characters")  # fmt: skip
    return url


def _currency(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise ConfigError(f"{where}: expected an ISO 4217 code (three capital letters)")
    return value
