"""Settings of ``cdpflow serve``: read from the environment once, in ``main()``.

Kafka and topic names come from :class:`cdpflow.settings.Settings` (the shared
variables); the API adds ``CDPFLOW_API_*``. Tokens come from a variable (comma-separated)
or from a file named by ``<VARIABLE>_FILE`` (one token a line, for mounted secrets), or
both. Errors name the variable, never a token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cdpflow.errors import ConfigError
from cdpflow.secrets import Secret, secrets_from_env
from cdpflow.settings import Settings, env_int

__all__ = ["ApiSettings"]


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Everything the profile API process needs; one instance per process."""

    bootstrap_servers: str = "127.0.0.1:9092"
    profiles_topic: str = "cdp.profiles"
    host: str = "127.0.0.1"
    port: int = 8081
    store_dir: Path = Path("var/profile-store")
    tokens: tuple[Secret, ...] = ()
    #: Bearer tokens that may erase (``DELETE /v1/profiles/{id}``) and do nothing else;
    #: none configured means erasure over HTTP is disabled.
    admin_tokens: tuple[Secret, ...] = ()
    events_topic: str = "cdp.events"
    #: How long an erasure waits for Kafka's acknowledgement before answering 503.
    erase_timeout_s: float = 5.0
    erase_retry_after_s: int = 5
    max_page_size: int = 1000
    #: Largest request body read (the e-mail look-up's); more is ``413``.
    max_body_bytes: int = 16 * 1024
    #: How long a request body may take to arrive; longer is ``408``.
    body_timeout_s: float = 10.0
    #: The segments the rules define (``CDPFLOW_RULES_FILE``): members of any other are
    #: ``404``. ``None`` (tests building settings by hand): every name is a segment.
    segments: frozenset[str] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        e = os.environ if env is None else env
        shared = Settings.from_env(e)
        d = cls()
        tokens = secrets_from_env(e, "CDPFLOW_API_TOKENS", min_length=16)
        if not tokens:
            raise ConfigError(
                "CDPFLOW_API_TOKENS (or CDPFLOW_API_TOKENS_FILE) must name at least one "
                "bearer token (comma-separated)"
            )
        admin_tokens = secrets_from_env(e, "CDPFLOW_API_ADMIN_TOKENS", min_length=16)
        readable = {t.reveal() for t in tokens}
        if any(t.reveal() in readable for t in admin_tokens):
            raise ConfigError(
                "CDPFLOW_API_ADMIN_TOKENS: an admin token must differ from every read token"
            )
        return cls(
            bootstrap_servers=shared.bootstrap_servers,
            profiles_topic=shared.topics.profiles,
            host=e.get("CDPFLOW_API_HOST", "").strip() or d.host,
            port=_port(e.get("CDPFLOW_API_PORT", "").strip(), d.port),
            store_dir=Path(e.get("CDPFLOW_API_STORE_DIR", "").strip() or d.store_dir),
            tokens=tokens,
            admin_tokens=admin_tokens,
            events_topic=shared.topics.events,
            erase_timeout_s=env_int(
                e, "CDPFLOW_API_ERASE_TIMEOUT_MS", int(d.erase_timeout_s * 1000), lower=100
            )
            / 1000,
            max_body_bytes=env_int(
                e, "CDPFLOW_API_MAX_BODY_BYTES", d.max_body_bytes, lower=256, upper=1 << 20
            ),
            body_timeout_s=env_int(
                e, "CDPFLOW_API_BODY_TIMEOUT_MS", int(d.body_timeout_s * 1000), lower=100
            )
            / 1000,
            segments=frozenset(shared.profile.rules.segments),
        )


def _port(raw: str, default: int) -> int:
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"CDPFLOW_API_PORT must be a port number 1-65535, got {raw!r}")
    return int(raw)
