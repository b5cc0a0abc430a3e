"""``cdpflow collect``: run the collector with uvicorn.

Settings come from the environment (read once, here); ``--host``/``--port`` override
``CDPFLOW_COLLECTOR_HOST``/``_PORT``. A setting the user can fix ends as one line on stderr
and exit status 2, like every ``cdpflow`` command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace

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
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = CollectorSettings.from_env()
        if args.port is not None and not 0 < args.port < 65536:
            raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
    except ConfigError as exc:
        print(f"cdpflow collect: error: {exc}", file=sys.stderr)
        return 2
    settings = replace(
        settings,
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
    )

    import uvicorn

    from collector.app import create_app
    from collector.logs import configure_logging

    configure_logging(args.log_level)
    app = create_app(settings)
    tune_gc()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        access_log=False,  # it prints client addresses; RequestMetrics logs without them
        log_config=None,
        log_level=args.log_level,
        lifespan="on",
        timeout_graceful_shutdown=15,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
