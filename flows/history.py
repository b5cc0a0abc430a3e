"""Bounded sources of history for replay: a Kafka topic between offsets, or an archive.

Both yield the same ``KafkaSourceMessage`` items as the live source, so a replay runs the
very same dataflow. Both are recoverable (the next offset, or the next record of the
archive, is the partition's snapshot), so an interrupted replay resumes where it was.

:class:`Progress` is shared by the partitions of one process; the replay command reads
it to draw a progress bar.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import Consumer, TopicPartition
from fastavro import reader as avro_reader

from cdpflow.kafka_log import kafka_config

__all__ = ["ArchiveSource", "KafkaRangeSource", "Progress"]

Message = KafkaSourceMessage[bytes | None, bytes | None]


@dataclass
class Progress:
    """Messages done and to do, per partition name; thread-safe."""

    total: dict[str, int] = field(default_factory=dict)
    done: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def plan(self, part: str, total: int) -> None:
        with self._lock:
            self.total[part] = total
            self.done.setdefault(part, 0)

    def advance(self, part: str, n: int) -> None:
        with self._lock:
            self.done[part] = self.done.get(part, 0) + n

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        with self._lock:
            return dict(self.done), dict(self.total)


class _RangePartition(StatefulSourcePartition[Message, int]):
    def __init__(self, config: dict[str, Any], topic: str, part: int, start: int, end: int,
                 progress: Progress, batch: int) -> None:  # fmt: skip
        self._name = f"{topic}/{part}"
        self._next = start
        self._end = end
        self._batch = batch
        self._progress = progress
        progress.plan(self._name, end - start)
        self._consumer = Consumer(config)
        if start < end:
            self._consumer.assign([TopicPartition(topic, part, start)])

    def next_batch(self) -> list[Message]:
        if self._next >= self._end:
            raise StopIteration
        out: list[Message] = []
        for msg in self._consumer.consume(self._batch, 0.5):
            if msg.error() is not None or msg.offset() >= self._end:
                continue
            out.append(KafkaSourceMessage(msg.key(), msg.value(), topic=msg.topic(),
                                          partition=msg.partition(), offset=msg.offset(),
                                          timestamp=msg.timestamp()))  # fmt: skip
            self._next = msg.offset() + 1
        self._progress.advance(self._name, len(out))
        return out

    def snapshot(self) -> int:
        return self._next

    def close(self) -> None:
        self._consumer.close()


class KafkaRangeSource(FixedPartitionedSource[Message, int]):
    """Partition ``p`` of ``topic`` from ``starts[p]`` (inclusive) to ``ends[p]`` (exclusive).

    The ends are fixed when the replay starts, so live traffic arriving meanwhile is left
    to the live dataflow.
    """

    def __init__(self, bootstrap: str, topic: str, starts: dict[int, int], ends: dict[int, int],
                 progress: Progress | None = None, batch: int = 1000) -> None:  # fmt: skip
        self._config = kafka_config(bootstrap, {"group.id": "cdpflow-replay-unused",
                                                "enable.auto.commit": False})  # fmt: skip
        self._topic = topic
        self._starts, self._ends = starts, ends
        self.progress = progress or Progress()
        self._batch = batch

    def list_parts(self) -> list[str]:
        # Bytewax's KafkaSource names its partitions "<index>-<topic>" and snapshots the
        # next offset: so do we, and a live run on the replay's recovery directory resumes
        # exactly at the offsets where the replay ended (the cut-over).
        return [f"{p}-{self._topic}" for p in sorted(self._ends)]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _RangePartition:
        p = int(for_part.split("-", 1)[0])
        start = self._starts[p] if resume_state is None else resume_state
        return _RangePartition(dict(self._config), self._topic, p, start, self._ends[p],
                               self.progress, self._batch)  # fmt: skip


class _ArchivePartition(StatefulSourcePartition[Message, int | None]):
    def __init__(self, files: list[Path], resume: int | None, progress: Progress, name: str,
                 total: int, batch: int) -> None:  # fmt: skip
        self._records = _records(files)
        self._next = resume  # the next Kafka offset to replay, as KafkaSource snapshots it
        self._batch = batch
        self._progress = progress
        self._name = name
        progress.plan(name, total)

    def next_batch(self) -> list[Message]:
        out: list[Message] = []
        skipped = 0
        for rec in self._records:
            if self._next is not None and rec["offset"] < self._next:
                skipped += 1  # applied before the replay was interrupted
                continue
            out.append(KafkaSourceMessage(rec["key"], rec["value"], topic=rec["topic"],
                                          partition=rec["partition"], offset=rec["offset"],
                                          timestamp=(1, rec["timestamp"])))  # fmt: skip
            if len(out) >= self._batch:
                break
        self._progress.advance(self._name, len(out) + skipped)
        if not out:
            raise StopIteration
        self._next = out[-1].offset + 1  # type: ignore[operator]
        return out

    def snapshot(self) -> int | None:
        return self._next


def _records(files: list[Path]) -> Iterator[dict[str, Any]]:
    for path in files:
        with path.open("rb") as f:
            yield from avro_reader(f)  # type: ignore[misc]


class ArchiveSource(FixedPartitionedSource[Message, int | None]):
    """The archive written by ``cdpflow archive``: one Bytewax partition per Kafka
    partition, named and snapshotted like ``KafkaSource``'s, its files read in time order
    (see :mod:`cdpflow.archive`)."""

    def __init__(self, files_by_partition: dict[str, list[Path]], totals: dict[str, int],
                 progress: Progress | None = None, batch: int = 1000) -> None:  # fmt: skip
        self._files = files_by_partition
        self._totals = totals
        self.progress = progress or Progress()
        self._batch = batch

    def list_parts(self) -> list[str]:
        return sorted(self._files)

    def build_part(
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> _ArchivePartition:
        return _ArchivePartition(self._files[for_part], resume_state, self.progress,
                                 for_part, self._totals[for_part], self._batch)  # fmt: skip
