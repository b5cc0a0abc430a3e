"""Jinja2 templates: which one a trigger gets, the context it sees, and rendering.

Each template name has three files in ``mailer/templates/`` (or in a directory given by
``CDPFLOW_MAILER_TEMPLATES_DIR``, searched first, so a shop overrides one file at a
time): ``<name>.subject.j2``, ``<name>.txt.j2`` and ``<name>.html.j2`` (autoescaped).
Undefined names are errors (``StrictUndefined``), so a typo fails the template's test
instead of sending an email with a hole in it.

Context: ``first_name`` (may be ``None``), ``rule``, ``category``, ``products``
(``[{product_id}]``, the viewed products, newest last), ``items`` (cart lines:
``product_id``, ``name``, ``category``, ``price``, ``currency``, ``quantity``),
``amount``, ``currency``, ``attributes`` (the trigger's attributes, JSON-decoded),
``shop_name``; filter ``money`` (``{{ 12.5 | money("EUR") }}`` → ``12.50 EUR``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import orjson

from mailer.exceptions import TemplateError
from state.store import StoredProfile

__all__ = ["TEMPLATE_DIR", "Rendered", "Renderer", "context_for", "template_for"]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_NAME = re.compile(r"[a-z0-9_]{1,64}")


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
    return rule if _NAME.fullmatch(rule) else None


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
    trigger: Mapping[str, Any], profile: StoredProfile | None, shop_name: str
) -> dict[str, Any]:
    """What every template sees (see the module docstring)."""
    excerpt = trigger.get("profile") or {}
    items = []
    for line in trigger.get("items") or ():
        product = line.get("product") or {}
        items.append(
            {
                "product_id": product.get("product_id"),
                "name": product.get("name"),
                "category": product.get("category"),
                "price": product.get("price"),
                "currency": product.get("currency") or trigger.get("currency"),
                "quantity": line.get("quantity", 1),
            }
        )
    return {
        "first_name": (profile.first_name if profile else None) or excerpt.get("first_name"),
        "rule": trigger.get("rule"),
        "category": trigger.get("category"),
        "products": [{"product_id": pid} for pid in trigger.get("product_ids") or ()],
        "items": items,
        "amount": trigger.get("amount"),
        "currency": trigger.get("currency"),
        "attributes": _decoded(trigger.get("attributes") or {}),
        "shop_name": shop_name,
    }


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
