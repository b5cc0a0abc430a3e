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
from cdpflow.settings import Settings, env_int
from profile_api.secret import Secret

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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        e = os.environ if env is None else env
        shared = Settings.from_env(e)
        d = cls()
        tokens = _tokens(e, "CDPFLOW_API_TOKENS")
        if not tokens:
            raise ConfigError(
                "CDPFLOW_API_TOKENS (or CDPFLOW_API_TOKENS_FILE) must name at least one "
                "bearer token (comma-separated)"
            )
        admin_tokens = _tokens(e, "CDPFLOW_API_ADMIN_TOKENS")
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
        )


def _tokens(env: Mapping[str, str], name: str) -> tuple[Secret, ...]:
    """``name`` (comma-separated) and ``name_FILE`` (one a line), each ≥ 16 characters."""
    values = [t.strip() for t in env.get(name, "").split(",")]
    file_name = env.get(f"{name}_FILE", "").strip()
    if file_name:
        try:
            text = Path(file_name).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {file_name}: {exc.strerror}") from None
        values += [line.strip() for line in text.splitlines()]
    tokens = tuple(Secret(v) for v in dict.fromkeys(v for v in values if v))
    if any(len(t.reveal()) < 16 for t in tokens):
        raise ConfigError(f"{name}: every token must be at least 16 characters")
    return tokens


def _port(raw: str, default: int) -> int:
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"CDPFLOW_API_PORT must be a port number 1-65535, got {raw!r}")
    return int(raw)
