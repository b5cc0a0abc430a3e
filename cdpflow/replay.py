"""``cdpflow replay``: rebuild profiles from history with the same dataflow, then cut over.

What runs is :func:`flows.build_flow`, unchanged, over a bounded source: the events topic
between two times (end offsets fixed when the replay starts), or an archive written by
``cdpflow archive``. State goes to a *fresh* recovery directory (never the live one,
unless ``--force``). Timers run on event time: stream time is the replay's own progress,
and at the end every moment up to the newest replayed event happens — not up to today.

Triggers (``--triggers``): ``none``; ``fresh`` (the default) keeps only those whose moment
lies within ``--fresh-horizon`` (24 h) of now, so a backfill never emails about a cart
abandoned last spring; ``all`` keeps every one, with the same ids a live run produced.
Tag changes and profile snapshots are written as usual.

Cut-over: the replay source names and snapshots its partitions exactly as the live
``KafkaSource`` does, so ``cdpflow run --recovery-dir <the replay's directory>`` resumes
at the very offsets where the replay stopped: no gap, nothing counted twice.

``--diff`` replays without writing anything — nothing to Kafka, no recovery directory —
and compares the result with the live ``cdp.profiles``: counts of equal and differing
profiles, which fields differ, examples by customer id (never values).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TextIO

from bytewax._bytewax import cli_main
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.recovery import RecoveryConfig
from tqdm import tqdm

from cdpflow.archive import read_manifest
from cdpflow.errors import ConfigError
from cdpflow.history_plan import plan_offsets
from cdpflow.settings import Settings
from flows.dataflow import build_flow
from flows.encode import SinkMessage
from flows.history import ArchiveSource, KafkaRangeSource, Progress
from flows.kafka_io import kafka_sink
from state import Trigger

__all__ = ["ReplayOptions", "TriggerPolicy", "keep_trigger", "replay"]

TriggerPolicy = Literal["none", "fresh", "all"]


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    since_ms: int | None = None
    until_ms: int | None = None
    archive: Path | None = None
    recovery_dir: Path | None = None
    force: bool = False
    triggers: TriggerPolicy = "fresh"
    fresh_horizon_ms: int = 24 * 3_600_000
    diff: bool = False
    workers: int = 1


@dataclass
class _Counts:
    kept: int = 0
    suppressed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def keep_trigger(
    policy: TriggerPolicy, now_ms: int, horizon_ms: int, counts: _Counts | None = None
) -> Callable[[Trigger], bool]:
    """The replay's trigger filter: ``none``, ``fresh`` (moment within ``horizon_ms`` of
    ``now_ms``) or ``all``.

    >>> keep = keep_trigger("fresh", now_ms=100_000, horizon_ms=10_000)
    >>> keep(Trigger("t", "r", "c", 95_000, {})), keep(Trigger("t", "r", "c", 80_000, {}))
    (True, False)
    """

    def keep(t: Trigger) -> bool:
        ok = policy == "all" or (policy == "fresh" and t.event_time >= now_ms - horizon_ms)
        if counts is not None:
            with counts.lock:
                if ok:
                    counts.kept += 1
                else:
                    counts.suppressed += 1
        return ok

    return keep


class _Collect(StatelessSinkPartition[SinkMessage]):
    def __init__(self, into: list[SinkMessage], lock: threading.Lock) -> None:
        self._into, self._lock = into, lock

    def write_batch(self, items: list[SinkMessage]) -> None:
        with self._lock:
            self._into.extend(items)


class _CollectingSink(DynamicSink[SinkMessage]):
    """Keeps what a shadow replay would have written, for ``--diff``."""

    def __init__(self) -> None:
        self.items: list[SinkMessage] = []
        self._lock = threading.Lock()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Collect:
        return _Collect(self.items, self._lock)


def replay(settings: Settings, opts: ReplayOptions, out: TextIO) -> int:
    if opts.diff and opts.recovery_dir is not None:
        raise ConfigError("--diff writes nothing, so it takes no --recovery-dir: leave it out")
    # A shadow replay keeps its state in memory only: nothing to cut over to.
    recovery_dir = None if opts.diff else _recovery_dir(settings, opts)
    progress = Progress()
    if opts.archive is not None:
        source: Any = _archive_source(opts.archive, settings.topics.events, progress)
        what = f"archive {opts.archive}"
    else:
        plan = plan_offsets(settings.bootstrap_servers, settings.topics.events,
                            opts.since_ms, opts.until_ms)  # fmt: skip
        source = KafkaRangeSource(settings.bootstrap_servers, settings.topics.events,
                                  plan.starts, plan.ends, progress)  # fmt: skip
        what = f"{settings.topics.events} offsets {plan.starts} -> {plan.ends}"
    if recovery_dir is not None:
        # Only now that the source is known: a replay that could not start leaves no
        # directory behind that the next attempt would refuse as "already holds state".
        _init_recovery_dir(recovery_dir, settings)
    counts = _Counts()
    now = int(time.time() * 1000)
    keep = keep_trigger(opts.triggers, now, opts.fresh_horizon_ms, counts)
    collected = _CollectingSink() if opts.diff else None
    sink: Any = collected if collected is not None else kafka_sink(settings)
    # resend=False: the handovers and forwarded events of customer merges are in the
    # history already; a replay applies those and writes none back.
    flow = build_flow(source, sink, settings, keep_trigger=keep, end_at_stream_time=True,
                      flow_id="cdpflow", resend=False)  # fmt: skip
    if recovery_dir is None:
        out.write(f"replaying {what}\n  shadow: state in memory only, nothing written to "
                  "Kafka or to disk\n")  # fmt: skip
    else:
        out.write(f"replaying {what}\n  into {recovery_dir}; triggers: {opts.triggers}\n")
    started = time.monotonic()
    reporter = _Reporter(progress, out)
    reporter.start()
    try:
        cli_main(flow, workers_per_process=opts.workers,
                 epoch_interval=timedelta(seconds=settings.snapshot_interval_s),
                 recovery_config=None if recovery_dir is None
                 else RecoveryConfig(str(recovery_dir)))  # fmt: skip
    finally:
        reporter.stop()
    elapsed = time.monotonic() - started
    done, _ = progress.snapshot()
    n = sum(done.values())
    rate = f"{n:,} messages in {elapsed:.1f} s ({n / max(elapsed, 1e-9):,.0f}/s)"
    if collected is not None:
        out.write(f"replayed {rate} in shadow; it would have written {len(collected.items):,} "
                  "records (none written)\n")  # fmt: skip
        from cdpflow.replay_diff import diff_against_live

        return diff_against_live(settings, collected.items, out)
    out.write(f"replayed {rate}; triggers kept {counts.kept}, suppressed {counts.suppressed} "
              f"(policy {opts.triggers})\n")  # fmt: skip
    out.write(f"cut over with: cdpflow run --recovery-dir {recovery_dir}\n")
    return 0


def _recovery_dir(settings: Settings, opts: ReplayOptions) -> Path:
    """The replay's directory, refused when it is the live one or holds state (unless
    ``--force``); created later by :func:`_init_recovery_dir`."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    directory = opts.recovery_dir or Path(f"var/replay-{stamp}")
    live = settings.recovery_dir.resolve()
    if directory.resolve() == live and not opts.force:
        raise ConfigError(
            f"{directory} is the live recovery directory; replay into a fresh one "
            "(or --force, with the live dataflow stopped)"
        )
    if directory.is_dir() and any(directory.glob("part-*.sqlite3")) and not opts.force:
        raise ConfigError(
            f"{directory} already holds state; choose a fresh directory (or --force "
            "to continue that replay from where it stopped)"
        )
    return directory


def _init_recovery_dir(directory: Path, settings: Settings) -> None:
    from bytewax.recovery import init_db_dir

    if directory.is_dir() and any(directory.glob("part-*.sqlite3")):
        return  # --force: continue that replay
    directory.mkdir(parents=True, exist_ok=True)
    init_db_dir(directory, settings.recovery_partitions)


def _archive_source(root: Path, topic: str, progress: Progress) -> ArchiveSource:
    topic_dir = root / topic
    manifest = read_manifest(topic_dir)
    if not manifest["partitions"]:
        raise ConfigError(f"--from-archive: no archive of {topic} in {root}")
    files: dict[str, list[Path]] = {}
    totals: dict[str, int] = {}
    for p, entry in manifest["partitions"].items():
        name = f"{p}-{topic}"  # named like KafkaSource's partitions: see cut-over
        files[name] = sorted((topic_dir / f"p{p}").glob("*.avro"))
        totals[name] = entry["count"]
    return ArchiveSource(files, totals, progress)


class _Reporter:
    """A progress bar on a terminal; a log line every 10 s otherwise."""

    def __init__(self, progress: Progress, out: TextIO) -> None:
        self._progress = progress
        self._out = out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        tty = self._out.isatty() if hasattr(self._out, "isatty") else False
        bar = tqdm(total=0, unit="msg", file=self._out, disable=not tty, dynamic_ncols=True)
        last_log = time.monotonic()
        while not self._stop.wait(0.5):
            done, total = self._progress.snapshot()
            bar.total = sum(total.values())
            bar.n = sum(done.values())
            bar.set_postfix_str(" ".join(f"{p}:{done.get(p, 0)}/{t}" for p, t in
                                         sorted(total.items())), refresh=True)  # fmt: skip
            if not tty and time.monotonic() - last_log >= 10:
                last_log = time.monotonic()
                self._out.write(f"progress: {bar.n:,}/{bar.total:,} messages\n")
                self._out.flush()
        bar.close()
