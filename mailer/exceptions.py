"""Errors of the mailer. Messages carry codes and names, never an address or a name."""

from __future__ import annotations

from cdpflow.errors import CdpflowError

__all__ = [
    "DeliveryError",
    "MailerError",
    "PermanentDeliveryError",
    "TemplateError",
    "TransientDeliveryError",
    "Unavailable",
]


class MailerError(CdpflowError):
    """Root of the mailer's own errors."""

    reason = "mailer"


class Unavailable(MailerError):
    """Something the mailer needs for every trigger is unreachable (the dead-letter topic,
    the profiles feed): not the trigger's fault, so it is not dead-lettered. The worker
    stops without committing; the trigger is handled again on restart."""

    reason = "unavailable"


class DeliveryError(MailerError):
    """The provider did not accept the message. ``code`` is its status (SMTP reply code
    or HTTP status), ``None`` when it never answered."""

    reason = "delivery_failed"

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientDeliveryError(DeliveryError):
    """Worth retrying: connection trouble, timeouts, SMTP 4xx, HTTP 408/429/5xx."""

    reason = "delivery_failed"


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help: SMTP 5xx (e.g. 550 mailbox refused), HTTP 4xx."""

    reason = "delivery_refused"


class TemplateError(MailerError):
    """A shipped or configured template does not render; the message names it."""

    reason = "template_error"
