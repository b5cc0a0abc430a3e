"""The ``cdpflow`` command line.

``argparse`` (standard library) is enough for a handful of subcommands; every failure
the user can fix ends as one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from cdpflow.errors import CdpflowError, ConfigError
from cdpflow.settings import Settings

__all__ = ["main"]

# Subcommands that own their argument parsing: `cdpflow serve ...` is `profile_api.main`.
_DELEGATED = {"collect": "collector.main", "serve": "profile_api.main", "mailer": "mailer.main"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cdpflow",
        description="Real-time customer profiles, tags and triggers on Kafka and Bytewax.",
        epilog="Configuration comes from environment variables; see the README.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the dataflow over the bundled sample (no Kafka)")
    demo.add_argument("--events", type=Path, help="a JSONL file of events instead of the sample")
    demo.add_argument("--all", action="store_true", help="list every tag change")

    run = sub.add_parser("run", help="run the dataflow against Kafka")
    run.add_argument(
        "-p",
        "--processes",
        type=int,
        default=1,
        help="worker processes on this machine (default 1)",
    )
    run.add_argument("-w", "--workers-per-process", type=int, default=1)
    run.add_argument(
        "--recovery-dir",
        type=Path,
        help="state snapshots and offsets (default $CDPFLOW_RECOVERY_DIR "
        "or var/recovery); created on first run",
    )
    run.add_argument(
        "--no-recovery",
        action="store_true",
        help="keep state in memory only (a restart starts from scratch)",
    )
    run.add_argument(
        "--until-end",
        action="store_true",
        help="stop at the end of the events topic instead of tailing it",
    )
    run.add_argument(
        "-i",
        "--process-id",
        type=int,
        help="this process's index in a cluster across machines (0, 1, ...; with -a)",
    )
    run.add_argument(
        "--progress-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="a progress line this often while catching up on a backlog (default 10)",
    )
    run.add_argument(
        "-a",
        "--addresses",
        help="host:port of every process, ';'-separated, for a cluster across "
        "machines (with -i); default: loopback ports from 2101",
    )

    rules = sub.add_parser("rules", help="check or try out a rules file")
    rsub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    rcheck = rsub.add_parser("check", help="validate a rules file and explain it")
    rcheck.add_argument("file", type=Path)
    rtest = rsub.add_parser("test", help="print what a sequence of events produces")
    rtest.add_argument("file", type=Path)
    rtest.add_argument("--events", type=Path, required=True, help="JSONL events, one per line")
    rtest.add_argument(
        "--until",
        help="move the clock to this time (ISO-8601) so timers fire; default: the newest event",
    )

    rp = sub.add_parser("replay", help="rebuild profiles from history (the same dataflow)")
    rp.add_argument("--since", help="first message time (ISO-8601); default: the earliest")
    rp.add_argument("--until", help="stop before this message time; default: the end now")
    rp.add_argument(
        "--from-archive",
        type=Path,
        metavar="DIR",
        help="replay an archive written by 'cdpflow archive' instead of the topic",
    )
    rp.add_argument(
        "--recovery-dir",
        type=Path,
        help="fresh state directory (default var/replay-<time>); cut over by "
        "running 'cdpflow run --recovery-dir' on it",
    )
    rp.add_argument(
        "--force",
        action="store_true",
        help="allow the live recovery directory, or continue an existing replay",
    )
    rp.add_argument(
        "--triggers",
        choices=["none", "fresh", "all"],
        default="fresh",
        help="which triggers to emit (default fresh: within --fresh-horizon of now)",
    )
    rp.add_argument("--fresh-horizon", default="24h", help="default 24h")
    rp.add_argument(
        "--diff",
        action="store_true",
        help="write nothing; compare the replayed profiles with the live ones",
    )
    rp.add_argument("-w", "--workers-per-process", type=int, default=1)

    tl = sub.add_parser("tail", help="print a topic's records as JSON lines, decoded")
    tl.add_argument(
        "topic",
        metavar="TOPIC",
        help="a topic name, or events, triggers, profiles, dlq, identities",
    )
    tl.add_argument("--from-beginning", action="store_true", help="from the start of the topic")
    tl.add_argument("--key", help="only records with this key (a customer id)")
    tl.add_argument("--follow", "-f", action="store_true", help="keep printing new records")
    tl.add_argument(
        "-n", type=int, help="how many records (default: the last 10; all from the beginning)"
    )

    dq = sub.add_parser("dlq", help="inspect dead letters; send the fixable ones back")
    dsub = dq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    dl = dsub.add_parser("list", help="one JSON line per dead letter (no payloads)")
    dl.add_argument("--reason", help="only this reason (e.g. unknown_schema)")
    dl.add_argument("-n", type=int, help="only the newest N")
    dr = dsub.add_parser("redrive", help="send fixable dead letters' bytes back to the events")
    dr.add_argument("--reason", help="only this reason")
    dr.add_argument("--dry-run", action="store_true", help="count, send nothing")

    fg = sub.add_parser("forget", help="erase a customer from every place that keeps them")
    fg.add_argument("customer_id")

    ar = sub.add_parser("archive", help="copy the events topic into Avro container files")
    ar.add_argument("dir", type=Path)
    ar.add_argument("--since", help="first message time (ISO-8601)")
    ar.add_argument("--until", help="stop before this message time")
    ar.add_argument("--per", choices=["hour", "day"], default="hour", help="one file per ...")

    # Listed here for --help; main() hands their arguments to their own parsers.
    sub.add_parser(
        "collect", help="HTTP collector: Segment-compatible API, signed webhooks (--help)"
    )
    sub.add_parser("serve", help="profile API over cdp.profiles (see: cdpflow serve --help)")
    sub.add_parser("mailer", help="email automation on cdp.triggers (see: cdpflow mailer --help)")

    topics = sub.add_parser("topics", help="manage the Kafka topics")
    tsub = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    create = tsub.add_parser("create", help="create the default topics if missing")
    create.add_argument("--partitions", type=int, help="partitions per topic (default 4)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:
        delegate = importlib.import_module(_DELEGATED[argv[0]])
        return int(delegate.main(argv[1:]))
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "demo":
            return _demo(args, settings)
        if args.command == "run":
            return _run(args, settings)
        if args.command == "topics":
            return _topics(args, settings)
        if args.command == "rules":
            return _rules(args, settings)
        if args.command == "replay":
            return _replay(args, settings)
        if args.command == "archive":
            return _archive(args, settings)
        if args.command == "forget":
            return _forget(args, settings)
        if args.command == "tail":
            return _tail(args, settings)
        if args.command == "dlq":
            return _dlq(args, settings)
    except CdpflowError as exc:
        first, *more = str(exc).splitlines() or [type(exc).__name__]
        hint = f" (+{len(more)} more; see cdpflow rules check)" if more else ""
        print(f"cdpflow: error: {first}{hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2  # pragma: no cover - argparse enforces a known command


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from cdpflow import demo, sample

    path = args.events or sample.SAMPLE_PATH
    if not path.is_file():
        raise ConfigError(f"--events: no such file: {path}")
    demo.print_result(demo.run_demo(path, settings), sys.stdout, all_tag_changes=args.all)
    return 0


def _rules(args: argparse.Namespace, settings: Settings) -> int:
    from cdpflow import rules_cli
    from state.rules.model import RulesError

    if args.rules_command == "check":
        try:
            return rules_cli.check(args.file, sys.stdout)
        except RulesError as exc:
            print(exc, file=sys.stderr)  # every problem, one per line
            return 2
    return rules_cli.test(args.file, args.events, args.until, settings, sys.stdout)


def _time(value: str | None, flag: str) -> int | None:
    from cdpflow.json_events import parse_time

    return None if value is None else parse_time(value, flag)


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    from cdpflow.tail import TailOptions, tail

    opts = TailOptions(args.topic, args.from_beginning, args.key, args.follow, args.n)
    return tail(settings, opts, sys.stdout)


def _dlq(args: argparse.Namespace, settings: Settings) -> int:
    from cdpflow import dlq

    if args.dlq_command == "list":
        return dlq.list_letters(settings, sys.stdout, sys.stderr, reason=args.reason, n=args.n)
    return dlq.redrive(settings, sys.stdout, reason=args.reason, dry_run=args.dry_run)


def _duration(value: str, flag: str) -> int:
    from state.rules.expressions import ExpressionError, parse_duration

    try:
        return parse_duration(value)
    except ExpressionError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from cdpflow.replay import ReplayOptions, replay
    from cdpflow.runtime import tune_gc

    if args.workers_per_process < 1:
        raise ConfigError("--workers-per-process must be at least 1")
    since, until = _time(args.since, "--since"), _time(args.until, "--until")
    if since is not None and until is not None and since >= until:
        raise ConfigError(f"--since ({args.since}) must be before --until ({args.until})")
    opts = ReplayOptions(
        since_ms=since,
        until_ms=until,
        archive=args.from_archive,
        recovery_dir=args.recovery_dir,
        force=args.force,
        triggers=args.triggers,
        fresh_horizon_ms=_duration(args.fresh_horizon, "--fresh-horizon"),
        diff=args.diff,
        workers=args.workers_per_process,
    )
    tune_gc()
    return replay(settings, opts, sys.stdout)


def _forget(args: argparse.Namespace, settings: Settings) -> int:
    from cdpflow.forget import request_erasure

    event_id = request_erasure(settings, args.customer_id)
    print(
        f"erasure requested ({event_id}): the dataflow wipes the profile and tombstones "
        f"{settings.topics.profiles}; the profile API and the mailer drop their copies"
    )
    return 0


def _archive(args: argparse.Namespace, settings: Settings) -> int:
    from cdpflow.archive import archive_topic

    since, until = _time(args.since, "--since"), _time(args.until, "--until")
    if since is not None and until is not None and since >= until:
        raise ConfigError(f"--since ({args.since}) must be before --until ({args.until})")
    written = archive_topic(
        settings.bootstrap_servers,
        settings.topics.events,
        args.dir,
        since_ms=since,
        until_ms=until,
        granularity=args.per,
    )
    for p, n in sorted(written.items()):
        print(f"{settings.topics.events}/{p}: {n} messages archived")
    return 0


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import replace

    from cdpflow.topics import create_topics

    if args.partitions is not None:
        if args.partitions < 1:
            raise ConfigError("--partitions must be at least 1")
        settings = replace(settings, partitions=args.partitions)
    for topic, status in create_topics(settings).items():
        print(f"{topic}: {status}")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.processes < 1 or args.workers_per_process < 1:
        raise ConfigError("--processes and --workers-per-process must be at least 1")
    if not args.progress_interval > 0:
        raise ConfigError("--progress-interval must be above 0 seconds")
    recovery_dir = None if args.no_recovery else (args.recovery_dir or settings.recovery_dir)
    partitions = _check_topics(settings)  # once, before any process starts
    if args.processes > 1 and args.process_id is None:
        return _spawn_cluster(args, settings, recovery_dir)

    from bytewax._bytewax import cli_main
    from bytewax.recovery import RecoveryConfig

    from cdpflow.run_report import CountingSource, Progress, Reporter
    from cdpflow.runtime import start_line, stop_line, tune_gc
    from flows.dataflow import build_flow
    from flows.kafka_io import kafka_sink, kafka_source

    t = settings.topics
    recovery = None
    resumed = False
    if recovery_dir is not None:
        resumed = _init_recovery(recovery_dir, settings.recovery_partitions)
        recovery = RecoveryConfig(str(recovery_dir))
    progress = Progress()
    source = CountingSource(kafka_source(settings, until_end=args.until_end), progress)
    flow = build_flow(source, kafka_sink(settings), settings)
    addresses = args.addresses.split(";") if args.addresses else None
    prefix = "" if args.process_id is None else f"process {args.process_id}: "
    out = sys.stdout
    out.write(prefix + start_line(settings, partitions, args.processes,
                                  args.workers_per_process, recovery_dir, resumed,
                                  args.until_end) + "\n")  # fmt: skip
    out.flush()
    reporter = Reporter(progress, settings.bootstrap_servers, out, args.progress_interval, prefix)
    reporter.start()

    def stop(signum: int, _frame: object) -> None:
        # Stop as a crash would, and as safely: the next start resumes from the last
        # completed epoch (state exactly once, outputs since then again, with the same ids).
        # Ending the input instead would make every customer's timers catch up to the
        # wall clock, ahead of a backlog still queued.
        count, _ = progress.snapshot()
        line = stop_line("stopped on request", count, time.monotonic() - reporter.started_at,
                         recovery_dir)  # fmt: skip
        reporter.finish(line + (
            f"; resumes from its last snapshot (at most {settings.snapshot_interval_s:g} s "
            "of input read again)" if recovery_dir else ""))  # fmt: skip
        os._exit(0 if signum == signal.SIGTERM else 130)

    signal.signal(signal.SIGTERM, stop)  # `docker stop`, systemd, the cluster's parent
    signal.signal(signal.SIGINT, stop)  # Ctrl-C
    tune_gc()
    how = "interrupted"
    try:
        cli_main(
            flow,
            workers_per_process=args.workers_per_process,
            process_id=args.process_id,
            addresses=addresses,
            epoch_interval=timedelta(seconds=settings.snapshot_interval_s),
            recovery_config=recovery,
        )
        how = f"at the end of {t.events}" if args.until_end else "stopped"
    finally:
        reporter.stop()
        count, _ = progress.snapshot()
        reporter.finish(stop_line(how, count, time.monotonic() - reporter.started_at,
                                  recovery_dir))  # fmt: skip
    return 0


def _check_topics(settings: Settings) -> int:
    """Fail, naming them, when the topics ``run`` needs are missing; the events topic's
    partition count otherwise."""
    from cdpflow.topics import admin

    meta = admin(settings).list_topics(timeout=10).topics
    t = settings.topics
    names = (t.events, t.triggers, t.profiles, t.dead_letters, t.identities)
    missing = [n for n in dict.fromkeys(names) if n not in meta]
    if missing:
        many = len(missing) > 1
        raise ConfigError(
            f"topic{'s' if many else ''} {', '.join(missing)} do{'' if many else 'es'} not "
            f"exist on {settings.bootstrap_servers} (run: cdpflow topics create)"
        )
    return len(meta[t.events].partitions)


def _init_recovery(directory: Path, partitions: int) -> bool:
    """Create the recovery partitions on first run; later runs resume from them.

    True when the directory holds a snapshot already (this run resumes from it)."""
    from bytewax.recovery import init_db_dir

    if not (directory.is_dir() and any(directory.glob("part-*.sqlite3"))):
        directory.mkdir(parents=True, exist_ok=True)
        init_db_dir(directory, partitions)
    return _has_snapshots(directory)


def _has_snapshots(directory: Path) -> bool:
    """Whether any epoch was snapshotted: a directory just created (by this process or by
    the parent of a cluster) has the partitions' tables, empty."""
    import sqlite3

    for db in directory.glob("part-*.sqlite3"):
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                if conn.execute("SELECT 1 FROM snaps LIMIT 1").fetchone():
                    return True
        except sqlite3.Error:
            return True  # not ours to judge: Bytewax will say what is wrong with it
    return False


def _spawn_cluster(args: argparse.Namespace, settings: Settings, recovery_dir: Path | None) -> int:
    """Start ``--processes`` copies of this command on loopback and wait for all of them."""
    base = int(os.environ.get("CDPFLOW_CLUSTER_BASE_PORT", "2101"))
    addresses = ";".join(f"127.0.0.1:{base + i}" for i in range(args.processes))
    if recovery_dir is not None:
        # Initialise once, before the processes race to do it.
        _init_recovery(recovery_dir, settings.recovery_partitions)
    print(f"cdpflow run: starting {args.processes} processes on {addresses}; each reports "
          "its own lines", flush=True)  # fmt: skip
    common = ["-w", str(args.workers_per_process), "-a", addresses]
    common += ["--progress-interval", str(args.progress_interval)]
    common += ["--no-recovery"] if recovery_dir is None else ["--recovery-dir", str(recovery_dir)]
    common += ["--until-end"] if args.until_end else []
    member = [sys.executable, "-m", "cdpflow.cli", "run", "-p", str(args.processes)]
    procs = [
        subprocess.Popen([*member, "-i", str(i), *common])  # noqa: S603 - our own module
        for i in range(args.processes)
    ]

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [proc.wait() for proc in procs]
    return max(codes, key=abs)


if __name__ == "__main__":
    sys.exit(main())
