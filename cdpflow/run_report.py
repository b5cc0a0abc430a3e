"""What ``cdpflow run`` tells its operator: one line at start, progress while it catches
up, one line at stop.

The dataflow itself (``flows/``) is untouched: the events source is wrapped so that each
partition counts the messages it hands over and remembers the next offset it will read
(its resume state at start). A reporter
thread turns that into a line per interval while there is a backlog — messages per
second and the lag, the topic's end offsets minus the next offsets (one cheap watermark
request per partition) — one line when the backlog is gone, and nothing more while the
dataflow keeps up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import Consumer, KafkaException, TopicPartition

from cdpflow.kafka_log import kafka_config

__all__ = ["CountingSource", "Progress", "Reporter", "progress_line"]


@dataclass
class Progress:
    """Messages handed to the dataflow and the next offset, per source partition."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    count: int = 0
    next_offsets: dict[str, int | None] = field(default_factory=dict)
    resumed: dict[str, int | None] = field(default_factory=dict)

    def started(self, part: str, resume_state: int | None) -> None:
        with self.lock:
            self.resumed[part] = resume_state
            self.next_offsets.setdefault(part, resume_state)

    def saw(self, part: str, n: int, next_offset: int | None) -> None:
        with self.lock:
            self.count += n
            if next_offset is not None:
                self.next_offsets[part] = next_offset

    def snapshot(self) -> tuple[int, dict[str, int | None]]:
        with self.lock:
            return self.count, dict(self.next_offsets)


class _CountingPartition(StatefulSourcePartition[Any, Any]):
    def __init__(self, inner: StatefulSourcePartition[Any, Any], part: str, p: Progress) -> None:
        self._inner, self._part, self._progress = inner, part, p

    def next_batch(self) -> list[Any]:
        batch = list(self._inner.next_batch())
        newest = None
        for item in batch:
            msg = item.msg if isinstance(item, KafkaError) else item
            if isinstance(msg, KafkaSourceMessage) and msg.offset is not None and msg.offset >= 0:
                newest = msg.offset if newest is None else max(newest, msg.offset)
        self._progress.saw(self._part, len(batch), None if newest is None else newest + 1)
        return batch

    def next_awake(self) -> Any:
        return self._inner.next_awake()

    def snapshot(self) -> Any:
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()


class CountingSource(FixedPartitionedSource[Any, Any]):
    """``inner`` (the dataflow's Kafka source), counting into ``progress``."""

    def __init__(self, inner: FixedPartitionedSource[Any, Any], progress: Progress) -> None:
        self._inner, self._progress = inner, progress

    def list_parts(self) -> list[str]:
        return self._inner.list_parts()

    def build_part(
        self, step_id: str, for_part: str, resume_state: Any
    ) -> StatefulSourcePartition[Any, Any]:
        self._progress.started(for_part, resume_state if isinstance(resume_state, int) else None)
        return _CountingPartition(
            self._inner.build_part(step_id, for_part, resume_state), for_part, self._progress
        )


def _split(part: str) -> tuple[int, str]:
    """Bytewax names a Kafka partition ``"<partition>-<topic>"``."""
    p, _, topic = part.partition("-")
    return int(p), topic


def progress_line(rate: float, lag: int | None, count: int) -> str:
    """One line per interval while there is a backlog.

    >>> progress_line(1234.5, 10_000, 50_000)
    'catching up: 1,234 events/s, lag 10,000 messages (50,000 read so far)'
    """
    behind = "lag unknown" if lag is None else f"lag {lag:,} messages"
    return f"catching up: {rate:,.0f} events/s, {behind} ({count:,} read so far)"


class Reporter:
    """Writes the progress lines from a daemon thread, every ``interval_s``."""

    def __init__(
        self,
        progress: Progress,
        bootstrap_servers: str,
        out: TextIO,
        interval_s: float,
        prefix: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._progress, self._bootstrap, self._out = progress, bootstrap_servers, out
        self._interval, self._prefix, self._clock = interval_s, prefix, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cdpflow-progress", daemon=True)
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()
        self._resumed_said = False
        self.started_at = clock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self._interval + 5)

    def finish(self, line: str) -> None:
        """The last lines; never waits for the reporter thread (a signal handler calls it)."""
        self._stop.set()
        self.say_resumed()  # a run shorter than one interval still says where it began
        self.write(line)

    def say_resumed(self) -> None:
        with self._lock:
            if self._resumed_said or not self._progress.resumed:
                return
            self._resumed_said = True
        self.write(resumed_line(self._progress))

    def write(self, line: str) -> None:
        self._out.write(f"{self._prefix}{line}\n")
        self._out.flush()

    def lag(self, offsets: dict[str, int | None]) -> int | None:
        """End offsets minus next offsets over the partitions this process reads."""
        if not offsets:
            return None
        if self._consumer is None:
            self._consumer = Consumer(kafka_config(self._bootstrap, {
                "group.id": "cdpflow-progress-unused", "enable.auto.commit": False}))  # fmt: skip
        total = 0
        try:
            for part, nxt in offsets.items():
                p, topic = _split(part)
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=5, cached=False
                )
                total += max(0, high - (low if nxt is None or nxt < 0 else max(nxt, low)))
        except (KafkaException, ValueError):
            return None  # the broker is away: the dataflow will say so itself
        return total

    def _run(self) -> None:
        last_count, last_at = 0, self.started_at
        catching_up = False
        try:
            while not self._stop.wait(self._interval):
                count, offsets = self._progress.snapshot()
                now = self._clock()
                rate = (count - last_count) / max(now - last_at, 1e-9)
                last_count, last_at = count, now
                lag = self.lag(offsets)
                self.say_resumed()
                if lag is not None and lag > 0:
                    catching_up = True
                    self.write(progress_line(rate, lag, count))
                elif catching_up and lag == 0:
                    catching_up = False
                    self.write(f"caught up: {count:,} read so far")
        finally:
            if self._consumer is not None:
                self._consumer.close()


def resumed_line(progress: Progress) -> str:
    with progress.lock:
        resumed = dict(progress.resumed)
    if all(v is None for v in resumed.values()):
        return f"reading {len(resumed)} partition(s) from their start (no saved offsets)"
    at = ", ".join(f"{k}@{'start' if v is None else v}" for k, v in sorted(resumed.items()))
    return f"resumed {len(resumed)} partition(s) at offsets {at}"
