"""``cdpflow mailer``: run the email automation worker; ``cdpflow mailer preview RULE``
renders (and test-sends) one rule's email (:mod:`mailer.preview`).

Settings come from the environment (read once, here). ``--until-idle`` and
``--max-messages`` make bounded runs (tests, catch-up jobs). Logs go to stderr as JSON
lines (``--log-format text`` for people). A setting the user can fix
ends as one line on stderr and exit status 2, like every ``cdpflow`` command; the last
line on stdout summarizes the run.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from cdpflow.errors import CdpflowError, ConfigError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cdpflow mailer",
        description="Email automation: turns triggers into emails (SMTP or webhook).",
        epilog="SMTP, webhook, caps and quiet hours come from the environment; see the README. "
        "'cdpflow mailer preview RULE --help': render or test-send one rule's email.",
    )
    p.add_argument("--until-idle", type=float, metavar="SECONDS",
                   help="stop after this long without a trigger")  # fmt: skip
    p.add_argument("--max-messages", type=int, metavar="N",
                   help="stop after N messages of the triggers topic")  # fmt: skip
    p.add_argument("--state-dir", type=Path,
                   help="ledger and profile store (default $CDPFLOW_MAILER_STATE_DIR "
                        "or var/mailer)")  # fmt: skip
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default="json", choices=["json", "text"],
                   help="stderr log lines: one JSON object each (default) or text")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["preview"]:
        from mailer.preview import main as preview

        return preview(argv[1:])
    args = _parser().parse_args(argv)
    from mailer.logs import configure_logging
    from mailer.settings import MailerSettings
    from mailer.worker import RunLimits, run

    try:
        settings = MailerSettings.from_env()
        if args.until_idle is not None and args.until_idle <= 0:
            raise ConfigError("--until-idle must be above 0")
        if args.max_messages is not None and args.max_messages < 1:
            raise ConfigError("--max-messages must be at least 1")
        if args.state_dir is not None:
            settings = replace(settings, state_dir=args.state_dir)
        configure_logging(args.log_level, args.log_format)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        stats = run(settings, RunLimits(args.until_idle, args.max_messages), stop=stop)
    except CdpflowError as exc:
        print(f"cdpflow mailer: error: {exc}", file=sys.stderr)
        return 2
    counts = " ".join(f"{k}={v}" for k, v in sorted(stats.statuses.items()))
    print(f"mailer: {stats.messages} messages {counts}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
