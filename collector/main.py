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
    if args.workers == 1:
        _serve(settings, args.log_level)
        return 0

    from collector import workers

    # Before prometheus_client is imported (by the app's modules): workers share metrics.
    metrics_dir = workers.metrics_dir_for_workers()
    return workers.run_workers(
        args.workers,
        settings.host,
        settings.port,
        lambda sock: _serve(settings, args.log_level, sock, metrics_dir),
        metrics_dir,
    )


def _serve(
    settings: CollectorSettings,
    log_level: str,
    sock: socket.socket | None = None,
    metrics_dir: str | None = None,
) -> None:
    """Build the app and run uvicorn on ``settings``' address, or on ``sock`` (a worker)."""
    import uvicorn

    from collector.app import create_app
    from collector.logs import configure_logging

    configure_logging(log_level)
    app = create_app(settings, metrics_dir=metrics_dir)
    tune_gc()
    options: dict[str, Any] = {
        "access_log": False,  # it prints client addresses; RequestMetrics logs without them
        "log_config": None,
        "log_level": log_level,
        "lifespan": "on",
        "timeout_graceful_shutdown": 15,
    }
    if sock is None:
        uvicorn.run(app, host=settings.host, port=settings.port, **options)
    else:
        uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
