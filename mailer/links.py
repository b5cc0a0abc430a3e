"""The links an email carries: to the shop (with UTM parameters naming the rule) and to
one-click unsubscribe.

Shop links come from URL patterns: ``{product_id}`` and ``{category}`` are filled with
the percent-encoded value. Without a product (category) pattern, products (categories)
are not linked; the cart link falls back to the shop's URL; with no shop URL at all an
email has no shop links (the templates then say it in words).

>>> cfg = LinkConfig(shop_url="https://shop.example/",
...                  product_url="https://shop.example/p/{product_id}")
>>> cfg.product("bag 7", "abandoned_cart")
'https://shop.example/p/bag%207?utm_source=cdpflow&utm_medium=email&utm_campaign=abandoned_cart'
>>> cfg.cart("abandoned_cart")
'https://shop.example/?utm_source=cdpflow&utm_medium=email&utm_campaign=abandoned_cart'
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from cdpflow.errors import ConfigError
from cdpflow.secrets import Secret
from mailer.unsubscribe import SECRET_VARIABLE, sign_token

__all__ = [
    "DAY_S",
    "PLACEHOLDER",
    "UNSUBSCRIBE_URL_REQUIRED",
    "LinkConfig",
    "Unsubscribe",
    "check_pattern",
]

DAY_S = 86_400
#: ``List-Unsubscribe: `` and the value stay within one 998-character header line.
_MAX_HEADER = 970


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """One email's unsubscribe link and its ``List-Unsubscribe`` header value."""

    url: str
    header: str


#: The one line ``cdpflow mailer`` stops with when it has no unsubscribe link to give.
UNSUBSCRIBE_URL_REQUIRED = (
    "CDPFLOW_MAILER_UNSUBSCRIBE_URL is required: every marketing email must carry "
    "one-click List-Unsubscribe (RFC 8058); set it to the collector's "
    f"https://.../v1/unsubscribe, with {SECRET_VARIABLE} as on the collector"
)
#: What ``cdpflow mailer preview`` shows without ``CDPFLOW_MAILER_UNSUBSCRIBE_URL``: a link
#: that says what is missing, in the reserved ``.invalid`` domain (RFC 2606), so it reaches
#: nobody. The mailer itself does not start without the setting.
PLACEHOLDER = Unsubscribe(
    "https://unsubscribe-url-not-set.invalid/set-CDPFLOW_MAILER_UNSUBSCRIBE_URL",
    "<https://unsubscribe-url-not-set.invalid/set-CDPFLOW_MAILER_UNSUBSCRIBE_URL>",
)


@dataclass(frozen=True, slots=True)
class LinkConfig:
    shop_url: str | None = None
    product_url: str | None = None
    category_url: str | None = None
    cart_url: str | None = None
    #: The collector's ``/v1/unsubscribe`` URL. The mailer requires it (every marketing
    #: email carries List-Unsubscribe); ``None`` only in previews and tests of links.
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    secrets: tuple[Secret, ...] = ()
    token_ttl_s: int = 60 * DAY_S

    def shop(self, rule: str) -> str | None:
        return _utm(self.shop_url, rule)

    def cart(self, rule: str) -> str | None:
        return _utm(self.cart_url or self.shop_url, rule)

    def product(self, product_id: str | None, rule: str) -> str | None:
        if self.product_url is None or not product_id:
            return None
        return _utm(self.product_url.replace("{product_id}", quote(product_id, safe="")), rule)

    def category(self, category: str | None, rule: str) -> str | None:
        if self.category_url is None or not category:
            return None
        return _utm(self.category_url.replace("{category}", quote(category, safe="")), rule)

    def unsubscribe(self, customer_id: str, trigger_id: str, now_s: float) -> Unsubscribe | None:
        """The link for one email; ``None`` without an unsubscribe URL and secret, or for
        ids too long to sign (the mailer then sends nothing: see :mod:`mailer.sink`)."""
        if self.unsubscribe_url is None or not self.secrets:
            return None
        try:
            token = sign_token(self.secrets, customer_id, trigger_id,
                               expires_s=int(now_s) + self.token_ttl_s)  # fmt: skip
        except ValueError:
            return None
        url = _with_query(self.unsubscribe_url, [("t", token)])
        header = f"<{url}>"
        if self.unsubscribe_mailto:
            mailto = f"<mailto:{self.unsubscribe_mailto}?subject=unsubscribe%20{token}>"
            if len(header) + 2 + len(mailto) <= _MAX_HEADER:
                header = f"{header}, {mailto}"
        return Unsubscribe(url, header) if len(header) <= _MAX_HEADER else None


def check_pattern(name: str, value: str, fields: tuple[str, ...] = ()) -> str:
    """An ``http(s)`` URL (pattern); ``ConfigError`` naming the setting otherwise, or when
    a pattern lacks its placeholder."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise ConfigError(f"{name} must be an http(s) URL without a #fragment")
    for placeholder in fields:
        if "{" + placeholder + "}" not in value:
            raise ConfigError(f"{name} must contain {{{placeholder}}}")
    return value


def _utm(url: str | None, rule: str) -> str | None:
    if url is None:
        return None
    return _with_query(url, [("utm_source", "cdpflow"), ("utm_medium", "email"),
                             ("utm_campaign", rule)])  # fmt: skip


def _with_query(url: str, extra: list[tuple[str, str]]) -> str:
    """``url`` with ``extra`` added to its query (the pattern's own parameters kept)."""
    parts = urlsplit(url)
    names = {k for k, _ in extra}
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names]
    return urlunsplit(parts._replace(query=urlencode(query + extra, quote_via=quote)))
