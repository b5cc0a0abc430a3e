"""The collector with a sink that discards what it would produce: HTTP, JSON and mapping
alone, for ``bench.collector_throughput``'s "no Kafka" row. Benchmark code only: the
collector itself has no way to answer 200 for an event it did not store.

    python -m bench.collector_no_kafka --port 18081   # CDPFLOW_WRITE_KEYS etc. as usual
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from cdpflow.runtime import tune_gc
from collector.app import create_app
from collector.producer import OutMessage
from collector.settings import CollectorSettings


class DiscardingSink:
    """An ``EventSink`` that drops what it is given; ``send`` returns at once."""

    def start(self) -> None:
        pass

    async def send(self, messages: Sequence[OutMessage]) -> None:
        pass

    def ready(self, timeout_s: float) -> bool:
        return True

    def close(self, timeout_s: float) -> int:
        return 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    app = create_app(CollectorSettings.from_env(), DiscardingSink())
    tune_gc()
    options = {"access_log": False, "log_level": "warning", "log_config": None}
    uvicorn.run(app, host="127.0.0.1", port=args.port, **options)


if __name__ == "__main__":
    main()
