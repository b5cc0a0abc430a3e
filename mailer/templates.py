"""Jinja2 templates: which one a trigger gets, the context it sees, and rendering.

Each template name has three files in ``mailer/templates/`` (or in a directory given by
``CDPFLOW_MAILER_TEMPLATES_DIR``, searched first, so a shop overrides one file at a
time): ``<name>.subject.j2``, ``<name>.txt.j2`` and ``<name>.html.j2`` (autoescaped).
Undefined names are errors (``StrictUndefined``), so a typo fails the template's test
instead of sending an email with a hole in it.

Context: ``first_name`` (may be ``None``), ``rule``, ``category`` and ``category_url``,
``products`` (the viewed products, newest last: ``product_id``, ``name``, ``label``,
``url``, ``image_url``), ``items`` (cart lines: ``product_id``, ``name``, ``label`` (the
name, else the id), ``category``, ``price``, ``currency``, ``quantity``, ``line_total``,
``url``, ``image_url``: an absolute http(s) URL or ``None``, :mod:`state.image_url`, so
a template cannot put a ``javascript:`` or ``data:`` one in an ``<img>``),
``amount``, ``currency`` (the trigger's, else the one all lines share), ``attributes``
(the trigger's attributes, JSON-decoded), ``traits`` (the declared traits the trigger rule
names in ``traits = [...]``, by name: ``{{ traits.favourite_category }}``), ``shop_name``,
``shop_url``, ``cart_url``,
``unsubscribe_url`` (what a product lacks is filled from the shop's catalogue when one is
configured, :mod:`mailer.catalog`; each link ``None`` when not configured; shop links carry UTM
parameters naming the rule, :mod:`mailer.links`); filter ``money``
(``{{ 12.5 | money("EUR") }}`` → ``12.50 EUR``).

The shipped HTML is email-safe: tables and inline styles, no external CSS or scripts,
no tracking pixels; the only images are the products' own (``image_url``, at most 64
pixels wide, ``alt`` the product's label), and a product without one shows none. The text
part says the same things (an image has no words to add).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import orjson

from mailer.catalog import Catalog
from mailer.exceptions import TemplateError
from mailer.links import LinkConfig
from state.image_url import safe_image_url
from state.store import StoredProfile

__all__ = ["TEMPLATE_DIR", "TEMPLATE_NAME", "Rendered", "Renderer", "context_for", "template_for"]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,64}")


def template_for(trigger: Mapping[str, Any]) -> str | None:
    """The template a trigger asks for: its rule's name (the rules file names triggers:
    ``category_interest``, ``abandoned_cart``, ``win_back``, ...). A generic
    ``lifecycle_change`` rule asks for ``win_back`` when the stage became ``lapsed``.
    ``None`` for a name that cannot be a template file name. Whether the template exists
    is :meth:`Renderer.has`'s business.

    >>> template_for({"rule": "category_interest"})
    'category_interest'
    >>> template_for({"rule": "lifecycle_change", "attributes": {"to": '"lapsed"'}})
    'win_back'
    >>> template_for({"rule": "lifecycle_change", "attributes": {"to": "active"}}) is None
    True
    >>> template_for({"rule": "../secrets"}) is None
    True
    """
    rule = str(trigger.get("rule") or "")
    if rule == "lifecycle_change":
        to = _decoded(trigger.get("attributes") or {}).get("to")
        return "win_back" if to == "lapsed" else None
    return rule if TEMPLATE_NAME.fullmatch(rule) else None


def _decoded(attributes: Mapping[str, str]) -> dict[str, Any]:
    """Trigger attribute values are JSON-encoded; a value that is not stays text."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        try:
            out[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            out[key] = value
    return out


def context_for(
    trigger: Mapping[str, Any],
    profile: StoredProfile | None,
    shop_name: str,
    links: LinkConfig | None = None,
    unsubscribe_url: str | None = None,
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    """What every template sees (see the module docstring). What a product lacks comes
    from the ``catalog`` when it knows the id; what neither has stays ``None``;
    ``label`` is the name, else the product id."""
    links = links or LinkConfig()
    catalog = catalog or Catalog()
    rule = str(trigger.get("rule") or "")
    excerpt = trigger.get("profile") or {}
    items = []
    for line in trigger.get("items") or ():
        product = catalog.fill(line.get("product") or {})
        pid, price = product.get("product_id"), product.get("price")
        quantity = line.get("quantity") or 1
        items.append(
            {
                "product_id": pid,
                "name": product.get("name"),
                "label": product.get("name") or pid,
                "category": product.get("category"),
                "price": price,
                "currency": product.get("currency") or trigger.get("currency"),
                "quantity": quantity,
                "line_total": None if price is None else price * quantity,
                "url": links.product(pid, rule),
                "image_url": safe_image_url(product.get("image_url")),
            }
        )
    named = {str(i["currency"]) for i in items if i["currency"]}
    currency = trigger.get("currency") or _common(named)
    for item in items:
        item["currency"] = item["currency"] or currency
    # A viewed product as the trigger's lines describe it (the dataflow names and prices the
    # products a category trigger carries, as their views did).
    described = {str(i["product_id"]): i for i in items if i["product_id"] is not None}
    first_name = (profile.first_name if profile else None) or excerpt.get("first_name")
    category = trigger.get("category")
    return {
        "first_name": first_name.strip() if isinstance(first_name, str) else None,
        "rule": rule,
        "category": category,
        "category_url": links.category(category, rule) if category else None,
        "products": [
            _viewed(catalog, pid, currency, links, rule, described.get(pid))
            for pid in trigger.get("product_ids") or ()
        ],
        "items": items,
        "amount": trigger.get("amount"),
        "currency": currency,
        "attributes": (attributes := _decoded(trigger.get("attributes") or {})),
        "traits": {k[6:]: v for k, v in attributes.items() if k.startswith("trait.")},
        "shop_name": shop_name,
        "shop_url": links.shop(rule),
        "cart_url": links.cart(rule),
        "unsubscribe_url": unsubscribe_url,
    }


def _viewed(
    catalog: Catalog,
    pid: str,
    currency: str | None,
    links: LinkConfig,
    rule: str,
    line: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    fields = ("name", "category", "price", "currency", "image_url")
    known = {"product_id": pid, **{f: (line or {}).get(f) for f in fields}}
    known = catalog.fill(known)
    label, url = known["name"] or pid, links.product(pid, rule)
    return {**known, "label": label, "url": url, "currency": known["currency"] or currency,
            "image_url": safe_image_url(known["image_url"])}  # fmt: skip


def _common(currencies: set[str]) -> str | None:
    """The one currency the lines that name one share, else ``None`` (a total in mixed
    currencies is shown without one rather than with a wrong one)."""
    return next(iter(currencies)) if len(currencies) == 1 else None


def _money(value: Any, currency: str | None = None) -> str:
    if value is None:
        return ""
    text = f"{float(value):.2f}"
    return f"{text} {currency}" if currency else text


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer:
    """Renders a template name with a context into subject, text and HTML."""

    def __init__(self, override_dir: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(TEMPLATE_DIR)]
        if override_dir is not None:
            loaders.insert(0, jinja2.FileSystemLoader(override_dir))
        self._env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                                default_for_string=False),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )  # fmt: skip
        self._env.filters["money"] = _money

    def has(self, name: str) -> bool:
        """Whether the text template of ``name`` exists (shipped or overridden)."""
        try:
            self._env.get_template(f"{name}.txt.j2")
        except jinja2.TemplateNotFound:
            return False
        return True

    def render(self, name: str, context: Mapping[str, Any]) -> Rendered:
        """Raises :class:`TemplateError` naming the template file, never the data."""
        parts = []
        for suffix in ("subject.j2", "txt.j2", "html.j2"):
            file = f"{name}.{suffix}"
            try:
                parts.append(self._env.get_template(file).render(context))
            except jinja2.TemplateNotFound:
                raise TemplateError(f"template {file} not found") from None
            except (jinja2.TemplateError, TypeError, ValueError) as exc:
                raise TemplateError(f"template {file} failed: {type(exc).__name__}") from exc
        subject = " ".join(parts[0].split())  # one line, whatever the template's layout
        return Rendered(subject, parts[1], parts[2])
