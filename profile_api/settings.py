"""Settings of ``cdpflow serve``: read from the environment once, in ``main()``.

Kafka and topic names come from :class:`cdpflow.settings.Settings` (the shared
variables); the API adds ``CDPFLOW_API_*``. Errors name the variable, never a token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cdpflow.errors import ConfigError
from cdpflow.settings import Settings
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
    max_page_size: int = 1000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        e = os.environ if env is None else env
        shared = Settings.from_env(e)
        d = cls()
        tokens = tuple(Secret(t.strip()) for t in e.get("CDPFLOW_API_TOKENS", "").split(","))
        tokens = tuple(t for t in tokens if t.reveal())
        if not tokens:
            raise ConfigError(
                "CDPFLOW_API_TOKENS must name at least one bearer token (comma-separated)"
            )
        if any(len(t.reveal()) < 16 for t in tokens):
            raise ConfigError("CDPFLOW_API_TOKENS: every token must be at least 16 characters")
        return cls(
            bootstrap_servers=shared.bootstrap_servers,
            profiles_topic=shared.topics.profiles,
            host=e.get("CDPFLOW_API_HOST", "").strip() or d.host,
            port=_port(e.get("CDPFLOW_API_PORT", "").strip(), d.port),
            store_dir=Path(e.get("CDPFLOW_API_STORE_DIR", "").strip() or d.store_dir),
            tokens=tokens,
        )


def _port(raw: str, default: int) -> int:
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"CDPFLOW_API_PORT must be a port number 1-65535, got {raw!r}")
    return int(raw)
