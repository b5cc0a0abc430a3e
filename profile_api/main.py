"""``cdpflow serve``: run the profile API with uvicorn.

Settings come from the environment (read once, here); ``--host``/``--port``/``--store-dir``
override ``CDPFLOW_API_HOST``/``_PORT``/``_STORE_DIR``. A setting the user can fix ends as
one line on stderr and exit status 2, like every ``cdpflow`` command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from cdpflow.errors import CdpflowError, ConfigError
from cdpflow.logs import LOG_FORMATS, configure_logging
from profile_api.settings import ApiSettings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cdpflow serve",
        description="Profile API: materializes cdp.profiles into RocksDB and serves look-ups.",
        epilog="Tokens, topics and the store directory come from the environment; see the README.",
    )
    p.add_argument("--host", help="interface (default $CDPFLOW_API_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default $CDPFLOW_API_PORT or 8081)")
    p.add_argument(
        "--store-dir",
        type=Path,
        help="RocksDB directory (default $CDPFLOW_API_STORE_DIR or var/profile-store)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default="json", choices=LOG_FORMATS,
                   help="json lines (default) or text for people")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = ApiSettings.from_env()
        if args.port is not None and not 0 < args.port < 65536:
            raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
        settings = replace(
            settings,
            host=args.host or settings.host,
            port=args.port if args.port is not None else settings.port,
            store_dir=args.store_dir or settings.store_dir,
        )
        _preflight(settings)
    except CdpflowError as exc:
        print(f"cdpflow serve: error: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    from profile_api.app import create_app

    configure_logging(args.log_level, args.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,  # it logs client addresses and paths (customer ids)
        log_level=args.log_level,
        log_config=None,  # uvicorn's loggers propagate to ours: one format for every line
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    return 0


def _preflight(settings: ApiSettings) -> None:
    """Fail with one line, before uvicorn starts, if the profiles topic is not there."""
    from confluent_kafka import Consumer

    from cdpflow.kafka_log import kafka_config
    from profile_api.materializer import topic_partitions

    probe = Consumer(kafka_config(settings.bootstrap_servers,
                                  {"group.id": "cdpflow-profile-api-preflight"}))  # fmt: skip
    try:
        topic_partitions(probe, settings.profiles_topic)
    finally:
        probe.close()


if __name__ == "__main__":
    sys.exit(main())
