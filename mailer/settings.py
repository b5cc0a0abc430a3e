"""Settings of ``cdpflow mailer``: read from the environment once, in ``main()``.

Kafka and topic names come from :class:`cdpflow.settings.Settings`; the mailer adds
``CDPFLOW_MAILER_*``, ``CDPFLOW_SMTP_*`` and ``CDPFLOW_WEBHOOK_*`` (all listed in the
README). Errors name the variable; secrets are never echoed.

Every email the mailer sends is a marketing email (triggers are moments in a customer's
behaviour, never receipts), and every marketing email must carry one-click
``List-Unsubscribe`` (RFC 8058; Gmail's and Yahoo's bulk-sender rules): without
``CDPFLOW_MAILER_UNSUBSCRIBE_URL`` (and so ``CDPFLOW_UNSUBSCRIBE_SECRET``) the mailer does
not start. Only ``cdpflow mailer preview`` (``for_preview=True``) goes without it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cdpflow.errors import ConfigError
from cdpflow.secrets import Secret
from cdpflow.settings import Settings
from mailer.addresses import InvalidRecipient, recipient
from mailer.delivery import Backoff
from mailer.links import DAY_S, UNSUBSCRIBE_URL_REQUIRED, LinkConfig, check_pattern
from mailer.policy import DAY_MS, PolicyConfig
from mailer.quiet_hours import QuietHours
from mailer.smtp import SmtpConfig
from mailer.templates import TEMPLATE_NAME
from mailer.unsubscribe import SECRET_VARIABLE, secrets_from_settings

__all__ = ["MailerSettings", "WebhookConfig"]

DeliveryKind = Literal["smtp", "webhook"]


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str
    secret: Secret
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class MailerSettings:
    """Everything the mailer process needs; one instance per process."""

    bootstrap_servers: str = "127.0.0.1:9092"
    triggers_topic: str = "cdp.triggers"
    profiles_topic: str = "cdp.profiles"
    dead_letter_topic: str = "cdp.events.dlq"
    group_id: str = "cdpflow-mailer"
    state_dir: Path = Path("var/mailer")
    sender: str = "noreply@example.com"
    shop_name: str = "Our shop"
    delivery: DeliveryKind = "smtp"
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    webhook: WebhookConfig | None = None
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    backoff: Backoff = field(default_factory=Backoff)
    profile_wait_ms: int = 5_000
    dedupe_ttl_ms: int = 30 * DAY_MS
    templates_dir: Path | None = None
    #: Shop links and one-click unsubscribe (:mod:`mailer.links`).
    links: LinkConfig = field(default_factory=LinkConfig)
    #: The template of a trigger whose rule has none (e.g. ``generic``); ``None``: skip it.
    fallback_template: str | None = None
    #: A product feed (``.jsonl`` or ``.csv``) that fills names and prices triggers lack.
    catalog_file: Path | None = None
    #: ``/metrics`` (Prometheus) on this port; ``None``: not served.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, for_preview: bool = False
    ) -> MailerSettings:
        """The settings, or :class:`ConfigError` naming the variable. ``for_preview``:
        for ``cdpflow mailer preview``, which renders without an unsubscribe URL (the
        mailer does not: :data:`UNSUBSCRIBE_URL_REQUIRED`)."""
        e = os.environ if env is None else env
        shared = Settings.from_env(e)
        r = _Reader(e)
        d = cls()
        delivery = r.text("CDPFLOW_MAILER_DELIVERY", d.delivery)
        if delivery not in ("smtp", "webhook"):
            raise ConfigError(
                f"CDPFLOW_MAILER_DELIVERY must be 'smtp' or 'webhook', got {delivery!r}"
            )
        security = r.text("CDPFLOW_SMTP_SECURITY", d.smtp.security)
        if security not in ("none", "starttls", "tls"):
            raise ConfigError(
                f"CDPFLOW_SMTP_SECURITY must be 'none', 'starttls' or 'tls', got {security!r}"
            )
        password = e.get("CDPFLOW_SMTP_PASSWORD", "")
        smtp = SmtpConfig(
            host=r.text("CDPFLOW_SMTP_HOST", d.smtp.host),
            port=int(r.number("CDPFLOW_SMTP_PORT", d.smtp.port, 1, 65535)),
            security=security,  # type: ignore[arg-type]  # checked above
            username=e.get("CDPFLOW_SMTP_USER") or None,
            password=Secret(password) if password else None,
            timeout_s=r.number("CDPFLOW_SMTP_TIMEOUT_S", d.smtp.timeout_s, 0.1, 600),
            sender_name=r.text("CDPFLOW_MAILER_SHOP_NAME", d.shop_name),
        )
        webhook = None
        if delivery == "webhook":
            url = r.text("CDPFLOW_WEBHOOK_URL", "")
            secret = e.get("CDPFLOW_WEBHOOK_SECRET", "")
            if not url.startswith(("https://", "http://")):
                raise ConfigError("CDPFLOW_WEBHOOK_URL must be an http(s) URL for webhook delivery")
            if len(secret) < 16:
                raise ConfigError("CDPFLOW_WEBHOOK_SECRET must be at least 16 characters")
            webhook = WebhookConfig(url, Secret(secret))
        quiet_text = r.text("CDPFLOW_MAILER_QUIET_HOURS", "21:00-08:00")
        try:
            quiet = None if quiet_text.lower() == "off" else QuietHours.parse(quiet_text)
        except ValueError as exc:
            raise ConfigError(f"CDPFLOW_MAILER_QUIET_HOURS: {exc} (or 'off')") from None
        try:
            sender = recipient(r.text("CDPFLOW_MAILER_FROM", d.sender), "CDPFLOW_MAILER_FROM")
        except InvalidRecipient as exc:
            raise ConfigError(f"{exc} (CDPFLOW_MAILER_FROM must be one email address)") from None
        templates = r.text("CDPFLOW_MAILER_TEMPLATES_DIR", "")
        if templates and not Path(templates).is_dir():
            raise ConfigError("CDPFLOW_MAILER_TEMPLATES_DIR is not a directory")
        fallback = r.text("CDPFLOW_MAILER_FALLBACK_TEMPLATE", "") or None
        if fallback is not None and not TEMPLATE_NAME.fullmatch(fallback):
            raise ConfigError("CDPFLOW_MAILER_FALLBACK_TEMPLATE must be a template name [a-z0-9_]")
        catalog = r.text("CDPFLOW_MAILER_CATALOG_FILE", "")
        if catalog and not Path(catalog).is_file():
            raise ConfigError("CDPFLOW_MAILER_CATALOG_FILE is not a file")
        links = _links(e, r)
        settings = cls(
            bootstrap_servers=shared.bootstrap_servers,
            triggers_topic=shared.topics.triggers,
            profiles_topic=shared.topics.profiles,
            dead_letter_topic=shared.topics.dead_letters,
            group_id=r.text("CDPFLOW_MAILER_GROUP", d.group_id),
            state_dir=Path(r.text("CDPFLOW_MAILER_STATE_DIR", str(d.state_dir))),
            sender=sender,
            shop_name=r.text("CDPFLOW_MAILER_SHOP_NAME", d.shop_name),
            delivery=delivery,  # type: ignore[arg-type]  # checked above
            smtp=smtp,
            webhook=webhook,
            policy=PolicyConfig(
                cap_count=int(r.number("CDPFLOW_MAILER_CAP", 1, 1, 1000)),
                cap_window_ms=int(r.number("CDPFLOW_MAILER_CAP_WINDOW_MS", DAY_MS, 1, 1e13)),
                quiet_hours=quiet,
                max_delay_ms=int(r.number("CDPFLOW_MAILER_MAX_DELAY_MS", DAY_MS, 1, 1e13)),
            ),
            backoff=Backoff(
                max_attempts=int(r.number("CDPFLOW_MAILER_MAX_ATTEMPTS", 4, 1, 100)),
                base_s=r.number("CDPFLOW_MAILER_RETRY_BASE_S", 1.0, 0, 3600),
                max_s=r.number("CDPFLOW_MAILER_RETRY_MAX_S", 30.0, 0, 3600),
            ),
            profile_wait_ms=int(r.number("CDPFLOW_MAILER_PROFILE_WAIT_MS", 5000, 0, 600_000)),
            dedupe_ttl_ms=int(r.number("CDPFLOW_MAILER_DEDUPE_TTL_MS", 30 * DAY_MS, 1, 1e13)),
            templates_dir=Path(templates) if templates else None,
            links=links,
            fallback_template=fallback,
            catalog_file=Path(catalog) if catalog else None,
            metrics_port=int(r.number("CDPFLOW_MAILER_METRICS_PORT", 0, 0, 65535)) or None,
            metrics_host=r.text("CDPFLOW_MAILER_METRICS_HOST", d.metrics_host),
        )
        # Last, so that a wrong value elsewhere is named first.
        if links.unsubscribe_url is None and not for_preview:
            raise ConfigError(UNSUBSCRIBE_URL_REQUIRED)
        return settings


def _links(e: Mapping[str, str], r: _Reader) -> LinkConfig:
    """``CDPFLOW_MAILER_*_URL`` patterns and the unsubscribe settings."""
    urls: dict[str, str | None] = {}
    for attr, fields in (("shop_url", ()), ("product_url", ("product_id",)),
                         ("category_url", ("category",)), ("cart_url", ()),
                         ("unsubscribe_url", ())):  # fmt: skip
        name = f"CDPFLOW_MAILER_{attr.upper()}"
        raw = r.text(name, "")
        urls[attr] = check_pattern(name, raw, fields) if raw else None
    secrets = secrets_from_settings(e)
    if urls["unsubscribe_url"] is not None and not secrets:
        raise ConfigError(
            f"CDPFLOW_MAILER_UNSUBSCRIBE_URL needs {SECRET_VARIABLE} (at least 32 characters)"
        )
    mailto = r.text("CDPFLOW_MAILER_UNSUBSCRIBE_MAILTO", "") or None
    if mailto is not None:
        try:
            mailto = recipient(mailto, "CDPFLOW_MAILER_UNSUBSCRIBE_MAILTO")
        except InvalidRecipient as exc:
            raise ConfigError(f"{exc} (must be one email address)") from None
    days = int(r.number("CDPFLOW_MAILER_UNSUBSCRIBE_DAYS", 60, 1, 3650))
    return LinkConfig(**urls, unsubscribe_mailto=mailto, secrets=secrets,
                      token_ttl_s=days * DAY_S)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Reader:
    env: Mapping[str, str]

    def text(self, name: str, default: str) -> str:
        return self.env.get(name, "").strip() or default

    def number(self, name: str, default: float, low: float, high: float) -> float:
        """A number within ``[low, high]``; whole-number defaults give ints."""
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw) if isinstance(default, int) else float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {raw!r}")
        return value
