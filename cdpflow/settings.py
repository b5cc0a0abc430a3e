"""Process settings: read from the environment once, in ``main()``, and passed down.

Every variable is listed in the README's configuration table. Errors name the variable
and what it should be, so a typo fails at start-up with one line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cdpflow.errors import ConfigError
from state.config import ProfileConfig, default_rules
from state.events import DAY_MS, HOUR_MS
from state.identity import IdentityConfig
from state.rules.model import DEFAULT_BUDGET_BYTES, load_rules
from state.validation import EventLimits

__all__ = ["Settings", "Topics", "env_int"]

StartFrom = Literal["earliest", "latest"]


@dataclass(frozen=True, slots=True)
class Topics:
    events: str = "cdp.events"
    triggers: str = "cdp.triggers"
    profiles: str = "cdp.profiles"
    dead_letters: str = "cdp.events.dlq"
    identities: str = "cdp.identities"


@dataclass(frozen=True, slots=True)
class Settings:
    bootstrap_servers: str = "127.0.0.1:9092"
    topics: Topics = field(default_factory=Topics)
    partitions: int = 4
    start_from: StartFrom = "earliest"
    recovery_dir: Path = Path("var/recovery")
    # Smaller partitions restore faster: 1M customers in 186 s with 32, 478 s with 4.
    recovery_partitions: int = 32
    snapshot_interval_s: float = 10.0
    profile_flush_ms: int = 1000
    timer_grace_ms: int = 10_000
    freeze_idle_ms: int = 300_000
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    limits: EventLimits = field(default_factory=EventLimits)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    #: Largest output record the dataflow writes (producer's ``message.max.bytes`` and the
    #: broker's default are about 1 MB); a bigger profile snapshot is written trimmed.
    max_message_bytes: int = 1_000_000

    def topics_env(self) -> dict[str, str]:
        """The variables that point another ``cdpflow`` process at the same broker and
        topics (for subprocesses: tests, benchmarks)."""
        t = self.topics
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "CDPFLOW_TOPIC_EVENTS": t.events,
            "CDPFLOW_TOPIC_TRIGGERS": t.triggers,
            "CDPFLOW_TOPIC_PROFILES": t.profiles,
            "CDPFLOW_TOPIC_DLQ": t.dead_letters,
            "CDPFLOW_TOPIC_IDENTITIES": t.identities,
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``CDPFLOW_*`` and ``KAFKA_BOOTSTRAP_SERVERS`` variables."""
        e = os.environ if env is None else env
        r = _Reader(e)
        d = cls()
        topics = Topics(
            events=r.text("CDPFLOW_TOPIC_EVENTS", d.topics.events),
            triggers=r.text("CDPFLOW_TOPIC_TRIGGERS", d.topics.triggers),
            profiles=r.text("CDPFLOW_TOPIC_PROFILES", d.topics.profiles),
            dead_letters=r.text("CDPFLOW_TOPIC_DLQ", d.topics.dead_letters),
            identities=r.text("CDPFLOW_TOPIC_IDENTITIES", d.topics.identities),
        )
        gc_tuning = r.text("CDPFLOW_GC_TUNING", "1")
        if gc_tuning not in ("0", "1"):
            raise ConfigError(f"CDPFLOW_GC_TUNING must be 0 or 1, got {gc_tuning!r}")
        start = r.text("CDPFLOW_START_FROM", d.start_from)
        if start not in ("earliest", "latest"):
            raise ConfigError(f"CDPFLOW_START_FROM must be 'earliest' or 'latest', got {start!r}")
        rules_file = r.text("CDPFLOW_RULES_FILE", "")
        # Worst-case bytes per customer a rules file's declared traits may hold.
        budget = env_int(e, "CDPFLOW_RULES_BUDGET_BYTES", DEFAULT_BUDGET_BYTES, lower=1024)
        profile = ProfileConfig(
            allowed_lateness_ms=r.ms("CDPFLOW_ALLOWED_LATENESS_MS", HOUR_MS),
            dedupe_horizon_ms=r.ms("CDPFLOW_DEDUPE_HORIZON_MS", 7 * DAY_MS),
            idle_ttl_ms=r.ms("CDPFLOW_IDLE_TTL_MS", 30 * DAY_MS),
            # Thresholds, windows and cooldowns of tags and triggers live in the rules file.
            rules=load_rules(Path(rules_file), budget) if rules_file else default_rules(),
        )
        junk = frozenset(
            v.strip().lower() for v in r.text("CDPFLOW_JUNK_IDS", "").split(",") if v.strip()
        )
        limits = EventLimits(
            max_future_ms=r.ms("CDPFLOW_MAX_FUTURE_MS", d.limits.max_future_ms),
            max_age_ms=r.ms("CDPFLOW_MAX_AGE_MS", d.limits.max_age_ms),
            junk_ids=junk,
            max_field_bytes=env_int(
                e, "CDPFLOW_MAX_FIELD_BYTES", d.limits.max_field_bytes, lower=64, upper=256 * 1024
            ),
        )
        identity = IdentityConfig(
            junk=junk,
            max_buffer=r.positive("CDPFLOW_ANONYMOUS_BUFFER", d.identity.max_buffer),
            ttl_ms=r.ms("CDPFLOW_ANONYMOUS_TTL_MS", d.identity.ttl_ms),
        )
        bootstrap = e.get("KAFKA_BOOTSTRAP_SERVERS")
        if bootstrap is not None and not bootstrap.strip():
            raise ConfigError(
                "KAFKA_BOOTSTRAP_SERVERS is set but empty: give host:port[,host:port...] "
                f"or unset it for {d.bootstrap_servers}"
            )
        return cls(
            bootstrap_servers=r.text("KAFKA_BOOTSTRAP_SERVERS", d.bootstrap_servers),
            topics=topics,
            partitions=r.positive("CDPFLOW_PARTITIONS", d.partitions),
            start_from=start,  # type: ignore[arg-type]  # checked above
            recovery_dir=Path(r.text("CDPFLOW_RECOVERY_DIR", str(d.recovery_dir))),
            recovery_partitions=r.positive("CDPFLOW_RECOVERY_PARTITIONS", d.recovery_partitions),
            snapshot_interval_s=r.seconds("CDPFLOW_SNAPSHOT_INTERVAL_S", d.snapshot_interval_s),
            profile_flush_ms=r.non_negative("CDPFLOW_PROFILE_FLUSH_MS", d.profile_flush_ms),
            timer_grace_ms=r.non_negative("CDPFLOW_TIMER_GRACE_MS", d.timer_grace_ms),
            freeze_idle_ms=r.non_negative("CDPFLOW_FREEZE_IDLE_MS", d.freeze_idle_ms),
            profile=profile,
            limits=limits,
            identity=identity,
            max_message_bytes=env_int(
                e, "CDPFLOW_MAX_MESSAGE_BYTES", d.max_message_bytes, lower=64 * 1024
            ),
        )


def env_int(
    env: Mapping[str, str], name: str, default: int, *, lower: int = 1, upper: int | None = None
) -> int:
    """A whole-number variable within bounds, ``default`` when unset; errors name it."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < lower or (upper is not None and value > upper):
        bound = f"between {lower} and {upper}" if upper is not None else f"at least {lower}"
        raise ConfigError(f"{name} must be {bound}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class _Reader:
    env: Mapping[str, str]

    def text(self, name: str, default: str) -> str:
        value = self.env.get(name, "").strip()
        return value or default

    def positive(self, name: str, default: int) -> int:
        return env_int(self.env, name, default, lower=1)

    def non_negative(self, name: str, default: int) -> int:
        return env_int(self.env, name, default, lower=0)

    def ms(self, name: str, default: int) -> int:
        return self.positive(name, default)

    def seconds(self, name: str, default: float) -> float:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{name} must be a finite number above 0, got {raw!r}")
        return value
