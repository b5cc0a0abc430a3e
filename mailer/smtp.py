"""Delivery over SMTP (``smtplib``): plain, STARTTLS or implicit TLS, optional login.

A connection is opened per email (triggered mail is a trickle, and a long-lived session
would need its own health checks). Reply codes decide the retry: 4xx and connection
trouble are transient, 5xx permanent. The server's reply text is not kept: it often
repeats the address.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cdpflow.secrets import Secret
from mailer.exceptions import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from mailer.message import OutgoingEmail, to_mime

__all__ = ["SmtpConfig", "SmtpDelivery"]

Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 25
    security: Security = "starttls"
    username: str | None = None
    password: Secret | None = None
    timeout_s: float = 30.0
    sender_name: str = "cdpflow"


def _by_code(code: int, what: str) -> DeliveryError:
    if 400 <= code < 500:
        return TransientDeliveryError(f"SMTP {code} on {what}", code=code)
    return PermanentDeliveryError(f"SMTP {code} on {what}", code=code)


class SmtpDelivery:
    """A :class:`~mailer.delivery.Delivery` to one SMTP server."""

    def __init__(
        self,
        config: SmtpConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        wall_clock_s: Callable[[], float] = time.time,
    ) -> None:
        self._cfg = config
        self._ssl = ssl_context or ssl.create_default_context()
        self._wall_clock_s = wall_clock_s

    def send(self, email: OutgoingEmail) -> None:
        message = to_mime(email, self._cfg.sender_name, self._wall_clock_s())
        try:
            with self._connect() as smtp:
                if self._cfg.username and self._cfg.password is not None:
                    smtp.login(self._cfg.username, self._cfg.password.reveal())
                # The envelope is given, not derived from the headers: one recipient.
                refused = smtp.send_message(message, from_addr=email.sender,
                                            to_addrs=[email.to])  # fmt: skip
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise _by_code(min(codes, default=550), "recipient") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise TransientDeliveryError(
                f"SMTP {exc.smtp_code} on login (check the SMTP user and password)",
                code=exc.smtp_code,
            ) from None
        except smtplib.SMTPSenderRefused as exc:
            raise _by_code(exc.smtp_code, "sender") from None
        except smtplib.SMTPDataError as exc:
            raise _by_code(exc.smtp_code, "data") from None
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, "command") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientDeliveryError(f"SMTP connection: {type(exc).__name__}") from None
        if refused:  # one recipient only: refused means not sent
            codes = [code for code, _ in refused.values()]
            raise _by_code(min(codes), "recipient")

    def _connect(self) -> smtplib.SMTP:
        cfg = self._cfg
        if cfg.security == "tls":
            return smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s,
                                    context=self._ssl)  # fmt: skip
        smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
        try:
            if cfg.security == "starttls":
                smtp.starttls(context=self._ssl)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def close(self) -> None:
        return None
