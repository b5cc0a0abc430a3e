"""``cdpflow collect``: run the collector with uvicorn.

Settings come from the environment (read once, here); ``--host``/``--port`` override
``CDPFLOW_COLLECTOR_HOST``/``_PORT``. A setting the user can fix ends as one line on stderr
and exit status 2, like every ``cdpflow`` command. ``--workers N`` serves the port from N
processes (:mod:`collector.workers`).
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from cdpflow.errors import ConfigError
from cdpflow.logs import LOG_FORMATS, LogFormat
from cdpflow.runtime import tune_gc
from collector.settings import CollectorSettings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cdpflow collect",
        description="HTTP collector: Segment-compatible tracking API and signed webhooks "
        "into Kafka.",
        epilog="Write keys, webhook secrets, topics and limits come from the environment; "
        "see the README.",
    )
    p.add_argument(
        "--host", help="interface to listen on (default $CDPFLOW_COLLECTOR_HOST or 127.0.0.1)"
    )
    p.add_argument("--port", type=int, help="port (default $CDPFLOW_COLLECTOR_PORT or 8080)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes serving the port, each with its own Kafka producer (default 1); "
        "rate limits and the in-flight budget apply per process",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default="json", choices=LOG_FORMATS,
                   help="json lines (default) or text for people")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = CollectorSettings.from_env()
        if args.port is not None and not 0 < args.port < 65536:
            raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
        if not 1 <= args.workers <= 64:
            raise ConfigError(f"--workers must be between 1 and 64, got {args.workers}")
    except ConfigError as exc:
        print(f"cdpflow collect: error: {exc}", file=sys.stderr)
        return 2
    settings = replace(
        settings,
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
    )
    from collector import workers

    try:
        # Bound here, before uvicorn: a port in use or a bad host is one line, not its log.
        sock = _listen(settings.host, settings.port)
        try:
            _check_topics(settings)
        except ConfigError:
            sock.close()
            raise
    except ConfigError as exc:
        print(f"cdpflow collect: error: {exc}", file=sys.stderr)
        return 2
    if args.workers == 1:
        with sock:
            _serve(settings, args.log_level, sock, log_format=args.log_format)
        return 0

    # Before prometheus_client is imported (by the app's modules): workers share metrics.
    metrics_dir = workers.metrics_dir_for_workers()
    return workers.run_workers(
        args.workers,
        sock,
        lambda sock: _serve(settings, args.log_level, sock, metrics_dir, args.log_format),
        metrics_dir,
    )


def _listen(host: str, port: int) -> socket.socket:
    from collector import workers

    try:
        return workers.bind(host, port)
    except OSError as exc:  # socket.gaierror (no such host) is one
        what = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"cannot listen on {host}:{port}: {what} (set --host/--port or "
            "CDPFLOW_COLLECTOR_HOST/_PORT)"
        ) from None


#: How long start-up waits for the broker's topic list; without an answer it starts anyway
#: and answers 503 until the broker is back (the collector outlives broker outages).
TOPIC_CHECK_TIMEOUT_S = 5.0


def _check_topics(settings: CollectorSettings) -> None:
    """A :class:`ConfigError` naming each of the collector's topics the broker lacks.

    All topics are listed (a metadata request for one topic could create it on a broker
    that auto-creates). The client is gone before the workers fork.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    from cdpflow.kafka_log import kafka_config

    client = AdminClient(kafka_config(settings.bootstrap_servers))
    try:
        topics = client.list_topics(timeout=TOPIC_CHECK_TIMEOUT_S).topics
    except KafkaException:
        return  # no broker yet: /readyz and 503s say so until it answers
    finally:
        del client
    needed = {
        "CDPFLOW_TOPIC_EVENTS": settings.topics.events,
        "CDPFLOW_TOPIC_DLQ": settings.topics.dead_letters,
    }
    missing = [f"{topic} ({name})" for name, topic in needed.items() if topic not in topics]
    if missing:
        raise ConfigError(
            f"missing on {settings.bootstrap_servers}: topic {', '.join(missing)}; "
            "create the topics with `cdpflow topics create`"
        )


def _serve(
    settings: CollectorSettings,
    log_level: str,
    sock: socket.socket,
    metrics_dir: str | None = None,
    log_format: LogFormat = "json",
) -> None:
    """Build the app and run uvicorn on the listening socket ``sock``."""
    import uvicorn

    from collector.app import create_app
    from collector.logs import configure_logging

    configure_logging(log_level, log_format)
    app = create_app(settings, metrics_dir=metrics_dir)
    tune_gc()
    options: dict[str, Any] = {
        "access_log": False,  # it prints client addresses; RequestMetrics logs without them
        "log_config": None,
        "log_level": log_level,
        "lifespan": "on",
        "timeout_graceful_shutdown": 15,
    }
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
