"""librdkafka's own log, routed to Python ``logging`` at debug level.

Without a log callback librdkafka writes every connection failure to stderr (an
unreachable broker printed 74-399 lines before cdpflow's one line). With the ``logger``
setting confluent-kafka hands each line to our object instead; we log it at DEBUG on the
``cdpflow.kafka`` logger, so a terminal sees only cdpflow's own message, and
``logging.basicConfig(level=logging.DEBUG)`` brings librdkafka's detail back.

Every client cdpflow creates takes its configuration from :func:`kafka_config`.

>>> cfg = kafka_config("127.0.0.1:9092", {"group.id": "g"})
>>> cfg["bootstrap.servers"], cfg["group.id"], cfg["logger"] is LIBRDKAFKA_LOG
('127.0.0.1:9092', 'g', True)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

__all__ = ["LIBRDKAFKA_LOG", "LOGGER", "METADATA_TIMEOUT_S", "kafka_config"]

LOGGER = logging.getLogger("cdpflow.kafka")

METADATA_TIMEOUT_S = 10.0
"""How long the commands wait for a broker's first answer before saying none answered."""


class _DebugLog:
    """What confluent-kafka calls as ``logger.log(level, fmt, *args)``.

    librdkafka's levels (syslog: 3 is an error) describe its view, not ours: a refused
    connection is an error to it, and already one line of ours (the broker address).
    """

    def log(self, level: int, msg: str, *args: Any) -> None:
        if LOGGER.isEnabledFor(logging.DEBUG):
            LOGGER.debug("librdkafka(%s) " + msg, level, *args)


LIBRDKAFKA_LOG = _DebugLog()


def kafka_config(bootstrap_servers: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A confluent-kafka client configuration whose log goes to :data:`LOGGER`."""
    return {"bootstrap.servers": bootstrap_servers, "logger": LIBRDKAFKA_LOG, **(extra or {})}
