"""The mailer process: a consumer group on the triggers topic feeding
:class:`~mailer.sink.TriggerMailer`, committing each offset only after the trigger's
outcome is durable (sent, skipped, deferred or dead-lettered).

The mailer keeps its own profile store (``<state dir>/profiles``, RocksDB) that a
:class:`~profile_api.materializer.Materializer` keeps current with ``cdp.profiles``: it
catches up before each batch of triggers, so consent is judged on the newest snapshot
written before the trigger was read. Outcomes, send times and deferred triggers live in
``<state dir>/ledger``. Both survive restarts. The profile store only ever moves
forward in time (:mod:`mailer.freshness`): a replay writing older snapshots beside the
live run cannot rewind it.

With ``CDPFLOW_MAILER_METRICS_PORT`` set, Prometheus metrics (:mod:`mailer.metrics`) are
served on ``http://<CDPFLOW_MAILER_METRICS_HOST>:<port>/metrics`` while the mailer runs.

Delivery is at least once: a crash after the provider accepted an email but before its
outcome was recorded sends it again on restart (with the same ``Message-ID`` /
``Idempotency-Key``, so a provider that dedupes drops it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from prometheus_client import start_http_server

from cdpflow.codec import default_codec
from cdpflow.errors import ConfigError
from cdpflow.kafka_log import kafka_config
from mailer.catalog import Catalog, load_catalog
from mailer.dead_letters import KafkaDeadLetters
from mailer.delivery import Delivery
from mailer.exceptions import Unavailable
from mailer.freshness import FreshProfileStore
from mailer.ledger import Ledger
from mailer.metrics import MailerMetrics
from mailer.settings import MailerSettings
from mailer.sink import MailerConfig, TriggerMailer, TriggerMessage
from mailer.smtp import SmtpDelivery
from mailer.templates import Renderer
from mailer.webhook import WebhookDelivery
from profile_api.materializer import Materializer, MaterializerError
from state.store import RocksProfileStore, StoredProfile

__all__ = ["RunLimits", "RunStats", "build_delivery", "catalog_for", "run", "serve_metrics"]

log = logging.getLogger("cdpflow.mailer")


@dataclass(frozen=True, slots=True)
class RunLimits:
    """When a run stops by itself: ``until_idle_s`` without a trigger (counted from the
    latest partition assignment), or after ``max_messages``. ``None``: never."""

    until_idle_s: float | None = None
    max_messages: int | None = None


@dataclass(slots=True)
class RunStats:
    messages: int = 0
    statuses: Counter[str] = field(default_factory=Counter)


class _StoreProfiles:
    def __init__(self, store: RocksProfileStore, feed: Materializer) -> None:
        self._store = store
        self._feed = feed

    def get(self, customer_id: str) -> StoredProfile | None:
        return self._store.get(customer_id)

    def refresh(self) -> None:
        try:
            self._feed.catch_up()
        except MaterializerError as exc:  # the broker, not the trigger: do not dead-letter
            raise Unavailable(str(exc)) from exc


def build_delivery(settings: MailerSettings) -> Delivery:
    if settings.delivery == "webhook":
        if settings.webhook is None:  # pragma: no cover - from_env guarantees it
            raise ConfigError("CDPFLOW_WEBHOOK_URL is required for webhook delivery")
        return WebhookDelivery(settings.webhook.url, settings.webhook.secret,
                               timeout_s=settings.webhook.timeout_s)  # fmt: skip
    return SmtpDelivery(settings.smtp)


def catalog_for(settings: MailerSettings) -> Catalog:
    """The product feed, read once at start (empty without ``CDPFLOW_MAILER_CATALOG_FILE``)."""
    if settings.catalog_file is None:
        return Catalog()
    catalog = load_catalog(settings.catalog_file)
    log.info("catalogue: %d products", len(catalog.products))
    return catalog


def serve_metrics(metrics: MailerMetrics, host: str, port: int) -> Callable[[], None]:
    """Serve ``/metrics`` in a daemon thread; returns the function that stops it.
    A port that cannot be bound is a :class:`ConfigError` naming the setting."""
    try:
        server, thread = start_http_server(port, host, registry=metrics.registry)
    except OSError as exc:
        raise ConfigError(
            f"CDPFLOW_MAILER_METRICS_PORT: cannot listen on {host}:{port} "
            f"({exc.strerror or type(exc).__name__})"
        ) from None
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop


def run(
    settings: MailerSettings,
    limits: RunLimits,
    *,
    stop: threading.Event | None = None,
    now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> RunStats:
    """Consume until ``stop`` is set or a limit is reached."""
    stop = stop or threading.Event()
    codec = default_codec()
    metrics = MailerMetrics()
    store = RocksProfileStore(settings.state_dir / "profiles")
    ledger = Ledger(settings.state_dir / "ledger")
    fresh = FreshProfileStore(store, ledger, on_stale=metrics.stale_snapshots.inc)
    feed = Materializer(fresh, settings.bootstrap_servers, settings.profiles_topic,
                        on_erase=ledger.forget_customer)  # fmt: skip
    metrics.watch_feed(lambda: dict(feed.skipped))
    stop_metrics: Callable[[], None] = lambda: None  # noqa: E731
    delivery = build_delivery(settings)
    dead = KafkaDeadLetters(settings.bootstrap_servers, settings.dead_letter_topic, codec)
    consumer = Consumer(
        kafka_config(
            settings.bootstrap_servers,
            {
                "group.id": settings.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",  # stale triggers are skipped by max delay
                # One message may take retries x SMTP timeout; keep the group membership.
                "max.poll.interval.ms": 900_000,
            },
        )
    )
    try:
        if settings.metrics_port is not None:
            stop_metrics = serve_metrics(metrics, settings.metrics_host, settings.metrics_port)
        feed.assign()
        feed.catch_up()
        forgotten = ledger.prune(now_ms() - settings.dedupe_ttl_ms)
        log.info("mailer ready; %d old outcomes forgotten", forgotten)
        config = MailerConfig(settings.sender, settings.shop_name, settings.policy,
                              settings.backoff, settings.profile_wait_ms, settings.links,
                              settings.fallback_template, catalog_for(settings))  # fmt: skip
        mailer = TriggerMailer(
            config,
            ledger=ledger,
            profiles=_StoreProfiles(store, feed),
            renderer=Renderer(settings.templates_dir),
            delivery=delivery,
            dead_letters=dead,
            codec=codec,
            now_ms=now_ms,
            sleep=sleep,
            metrics=metrics,
        )
        return _loop(consumer, settings, mailer, feed, limits, stop, monotonic)
    finally:
        stop_metrics()
        consumer.close()
        dead.close()
        delivery.close()
        feed.close()
        ledger.close()
        store.close()


def _loop(
    consumer: Consumer,
    settings: MailerSettings,
    mailer: TriggerMailer,
    feed: Materializer,
    limits: RunLimits,
    stop: threading.Event,
    monotonic: Callable[[], float],
) -> RunStats:
    topic = settings.triggers_topic
    meta = consumer.list_topics(topic, timeout=10)
    if topic not in meta.topics or meta.topics[topic].error is not None:
        raise ConfigError(f"topic {topic} does not exist (run: cdpflow topics create)")
    last_activity = monotonic()

    def on_assign(c: Consumer, partitions: list[TopicPartition]) -> None:
        nonlocal last_activity
        last_activity = monotonic()

    consumer.subscribe([topic], on_assign=on_assign)
    stats = RunStats()
    while not stop.is_set():
        messages = [m for m in consumer.consume(100, 0.5) if _ok(m)]
        if messages:
            feed.catch_up()
            last_activity = monotonic()
        for msg in messages:
            result = mailer.add(_message(msg))
            _commit(consumer, msg)
            stats.messages += 1
            stats.statuses[result.status] += 1
            if limits.max_messages is not None and stats.messages >= limits.max_messages:
                return stats
            if stop.is_set():
                return stats  # the rest of the batch is uncommitted: redelivered later
        for result in mailer.run_due():
            stats.statuses[result.status] += 1
        idle = monotonic() - last_activity
        if limits.until_idle_s is not None and idle >= limits.until_idle_s:
            break
    return stats


def _ok(msg: Message) -> bool:
    err = msg.error()
    if err is None:
        return True
    log.warning("triggers consumer error: %s", err.name())
    return False


def _message(msg: Message) -> TriggerMessage:
    return TriggerMessage(msg.value(), msg.key(), msg.topic() or "", msg.partition() or 0,
                          msg.offset() or 0)  # fmt: skip


def _commit(consumer: Consumer, msg: Message) -> None:
    try:
        consumer.commit(message=msg, asynchronous=False)
    except KafkaException as exc:
        # A rebalance took the partition: its next owner redelivers, the ledger dedupes.
        log.warning("offset commit failed: %s", exc.args[0].name() if exc.args else "?")
