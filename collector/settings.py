"""Collector settings: read from the environment once, in ``main()``, and passed down.

Kafka address and topic names come from :class:`cdpflow.settings.Settings` (same variables,
same defaults). Write keys and webhook secrets come from a variable or from a file named by
``<VARIABLE>_FILE`` (one secret a line, for mounted secrets); they are :class:`Secret`s,
whose ``repr`` never shows the value.

Write keys are of two kinds (fail-safe: a key whose kind is not said is public):
``CDPFLOW_WRITE_KEYS`` are *public* keys, the ones shipped in a browser snippet or a
mobile app, which may not alias and whose events are never dated after their receipt;
``CDPFLOW_SERVER_WRITE_KEYS`` are *server* keys, kept on the customer's servers, which may
do everything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from cdpflow.errors import ConfigError
from cdpflow.secrets import Secret, secrets_from_env
from cdpflow.settings import Settings, Topics, env_int
from mailer.unsubscribe import secrets_from_settings

__all__ = ["CollectorSettings"]

_WEBHOOK_PREFIX = "CDPFLOW_WEBHOOK_SECRETS_"
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    """Everything the collector process needs; one instance per process."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topics: Topics = field(default_factory=Topics)
    host: str = "127.0.0.1"
    port: int = 8080
    #: Public write keys (browser, mobile): no alias, no event dated after its receipt.
    write_keys: tuple[Secret, ...] = ()
    #: Server write keys: everything, merges (alias) included.
    server_write_keys: tuple[Secret, ...] = ()
    #: Webhook source name (as in ``/v1/webhooks/{source}``) -> its valid secrets; two at
    #: once during a rotation. ``shopify`` and ``shopify-*`` sources use Shopify's scheme.
    webhook_secrets: Mapping[str, tuple[Secret, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    cors_origins: tuple[str, ...] = ()
    max_event_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    #: Items a batch (or a webhook list) may hold; more is 400 ``too_many_items``.
    max_batch_items: int = 2_000
    #: Seconds a request's whole body may take to arrive; slower is 408 ``body_timeout``.
    body_timeout_s: float = 10.0
    #: Request bytes admitted at once; beyond it requests get 429 (bounded memory).
    max_in_flight_bytes: int = 32 * 1024 * 1024
    #: Percent of that budget one write key may hold (requests that carry their key in
    #: the body, not yet authenticated, share one such part), and one client address.
    in_flight_key_share_pct: int = 50
    in_flight_peer_share_pct: int = 25
    #: Rejected items a batch answer lists (each by index); the rest are only counted.
    max_rejects_listed: int = 100
    #: Serve the demo shop (``/demo``, ``/static/shop.html``); off in production.
    demo: bool = False
    produce_timeout_ms: int = 5000
    webhook_tolerance_s: int = 300
    overload_retry_after_s: int = 1
    broker_retry_after_s: int = 5
    #: Events a second each write key (and each webhook source) may store; 0 = no limit.
    #: Beyond it requests get 429 with Retry-After (collector/ratelimit.py).
    rate_limit_per_s: int = 5_000
    #: Events a key may send at once above its rate (a token bucket's size); from the
    #: environment it defaults to 4 seconds' worth of the rate.
    rate_burst: int = 20_000
    #: Map the usual Segment batch messages with the compiled fast path
    #: (``collector/fastpath.py``); False: all in Python, the reference (a switch for
    #: operators who suspect the compiled code).
    fast_path: bool = True
    #: ``CDPFLOW_UNSUBSCRIBE_SECRET``: verifies the mailer's one-click unsubscribe tokens
    #: (two during a rotation); ``()``: ``/v1/unsubscribe`` is not routed.
    unsubscribe_secrets: tuple[Secret, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CollectorSettings:
        """Build from ``CDPFLOW_*`` / ``KAFKA_BOOTSTRAP_SERVERS``; errors name the variable."""
        e = os.environ if env is None else env
        base = Settings.from_env(e)
        d = cls()
        write_keys = secrets_from_env(e, "CDPFLOW_WRITE_KEYS")
        server_keys = secrets_from_env(e, "CDPFLOW_SERVER_WRITE_KEYS")
        if not write_keys and not server_keys:
            raise ConfigError(
                "CDPFLOW_WRITE_KEYS (public) or CDPFLOW_SERVER_WRITE_KEYS (server), or their "
                "_FILE variants, must name at least one write key"
            )
        if any(k.reveal() == s.reveal() for k in write_keys for s in server_keys):
            raise ConfigError(
                "a key is in both CDPFLOW_WRITE_KEYS and CDPFLOW_SERVER_WRITE_KEYS: "
                "a key is either public or server"
            )
        rate = env_int(e, "CDPFLOW_COLLECTOR_RATE_LIMIT", d.rate_limit_per_s, lower=0)
        return cls(
            bootstrap_servers=base.bootstrap_servers,
            topics=base.topics,
            host=_text(e, "CDPFLOW_COLLECTOR_HOST", d.host),
            port=env_int(e, "CDPFLOW_COLLECTOR_PORT", d.port, upper=65535),
            write_keys=write_keys,
            server_write_keys=server_keys,
            webhook_secrets=MappingProxyType(_webhook_secrets(e)),
            cors_origins=_origins(e.get("CDPFLOW_CORS_ORIGINS", "")),
            max_batch_items=env_int(e, "CDPFLOW_MAX_BATCH_ITEMS", d.max_batch_items),
            body_timeout_s=env_int(
                e, "CDPFLOW_COLLECTOR_BODY_TIMEOUT_S", int(d.body_timeout_s), upper=3600
            ),
            max_in_flight_bytes=env_int(
                e,
                "CDPFLOW_COLLECTOR_MAX_IN_FLIGHT_BYTES",
                d.max_in_flight_bytes,
                lower=d.max_batch_bytes,
            ),
            in_flight_key_share_pct=env_int(
                e, "CDPFLOW_COLLECTOR_KEY_SHARE_PCT", d.in_flight_key_share_pct, upper=100
            ),
            in_flight_peer_share_pct=env_int(
                e, "CDPFLOW_COLLECTOR_PEER_SHARE_PCT", d.in_flight_peer_share_pct, upper=100
            ),
            max_rejects_listed=env_int(
                e, "CDPFLOW_COLLECTOR_MAX_REJECTS_LISTED", d.max_rejects_listed, lower=0
            ),
            demo=bool(env_int(e, "CDPFLOW_COLLECTOR_DEMO", 0, lower=0, upper=1)),
            produce_timeout_ms=env_int(
                e, "CDPFLOW_COLLECTOR_PRODUCE_TIMEOUT_MS", d.produce_timeout_ms, lower=100
            ),
            webhook_tolerance_s=env_int(e, "CDPFLOW_WEBHOOK_TOLERANCE_S", d.webhook_tolerance_s),
            rate_limit_per_s=rate,
            rate_burst=env_int(e, "CDPFLOW_COLLECTOR_RATE_BURST", 4 * rate or d.rate_burst),
            fast_path=bool(env_int(e, "CDPFLOW_COLLECTOR_FAST_PATH", 1, lower=0, upper=1)),
            unsubscribe_secrets=secrets_from_settings(e),
        )


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, "").strip() or default


def _list(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _origins(raw: str) -> tuple[str, ...]:
    """``CDPFLOW_CORS_ORIGINS``: browser origins, ``scheme://host[:port]`` each, or ``*``.

    >>> _origins("https://shop.example, http://localhost:8000")
    ('https://shop.example', 'http://localhost:8000')
    """
    origins = _list(raw)
    for origin in origins:
        if origin == "*":
            continue
        try:
            parts = urlsplit(origin)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            parts = None
        if (
            parts is None
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or parts.username is not None
        ):
            raise ConfigError(
                f"CDPFLOW_CORS_ORIGINS: {origin!r} is not an origin: expected "
                "scheme://host[:port] (http or https, no path), or *"
            )
    return tuple(origins)


def _webhook_secrets(env: Mapping[str, str]) -> dict[str, tuple[Secret, ...]]:
    """``CDPFLOW_WEBHOOK_SECRETS_<SOURCE>[_FILE]`` -> ``{source: secrets}``.

    ``<SOURCE>`` is upper case with ``_`` for ``-``: ``..._SHOPIFY_EU`` serves
    ``/v1/webhooks/shopify-eu``.
    """
    names = {k.removesuffix("_FILE") for k in env if k.startswith(_WEBHOOK_PREFIX)}
    out: dict[str, tuple[Secret, ...]] = {}
    for name in sorted(names):
        source = name.removeprefix(_WEBHOOK_PREFIX).lower().replace("_", "-")
        if not _SOURCE_NAME.match(source):
            raise ConfigError(f"{name}: source name must be letters, digits and '_'")
        secrets = secrets_from_env(env, name)
        if not secrets:
            raise ConfigError(f"{name} is set but holds no secret")
        out[source] = secrets
    return out
