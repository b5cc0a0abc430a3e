"""Golden check for profile snapshots: every ``cdp.profiles`` message byte for byte, against
the snapshot code of an earlier commit.

    .venv/bin/python -m bench.snapshot_golden compare [REV]     # REV default: HEAD

``compare`` checks out HEAD into two worktrees (``/tmp/wt-snap`` and ``-after``), puts
the snapshot code (:data:`SNAPSHOT_FILES`) of ``REV`` in the first and the working
tree's in the second, runs ``dump`` in each and compares: only the snapshot code differs
between the two, so a difference is its doing. ``dump OUT`` writes the messages of these
runs, with a fixed clock:

- ``demo``: the dataflow over the bundled sample, as ``cdpflow demo``, with the default
  coalescing and with ``flush_ms=0`` (a snapshot after every batch);
- ``workload``: the dataflow over the benchmark workload (``bench.workload``), ``flush_ms=0``;
- ``per_event``: the workload folded with ``state.apply``, then encoded after *every*
  event, with the shipped rules and with twenty declared traits (``bench.fold_rules``).
"""

from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from bytewax.testing import TestingSink, TestingSource, run_main

__all__ = ["SNAPSHOT_FILES", "compare", "dump"]

SNAPSHOT_FILES = (
    "state/profile_view.py",
    "flows/encode.py",
    "cdpflow/avro_writer.py",
    "flows/profile_step.py",
    "flows/snapshot_load.py",
)
WORKTREE = Path("/tmp/wt-snap")  # noqa: S108 - a scratch checkout, named in the brief
NOW = 1_793_100_000_000

Messages = list[tuple[str, bytes | None, bytes | None]]


def _flow_messages(msgs: list[Any], flush_ms: int) -> Messages:
    from cdpflow.settings import Settings
    from flows.dataflow import build_flow

    settings = replace(Settings(), profile_flush_ms=flush_ms)
    out: list[Any] = []
    flow = build_flow(TestingSource(msgs), TestingSink(out), settings, clock=lambda: NOW)
    run_main(flow)  # type: ignore[no-untyped-call]
    return [("", m.key, m.value) for m in out if m.topic == settings.topics.profiles]


def _demo_inputs() -> list[Any]:
    from cdpflow import sample
    from cdpflow.codec import default_codec
    from cdpflow.demo import encode_sample

    return encode_sample(sample.load(sample.SAMPLE_PATH), default_codec())


def _per_event(n: int, customers: int, traits: bool) -> Messages:
    from bench.fold_rules import events, with_traits
    from cdpflow.codec import default_codec
    from cdpflow.settings import Topics
    from flows.encode import Encoder
    from state import ProfileChanged
    from state.config import ProfileConfig, default_rules
    from state.profile import CustomerState, apply, as_of
    from state.profile_view import view
    from state.rules.model import DEFAULT_RULES

    rules = with_traits(DEFAULT_RULES.read_text(), 20, matched=True) if traits else default_rules()
    cfg = ProfileConfig(rules=rules)
    enc = Encoder(default_codec(), Topics(), lambda: NOW)
    sts: dict[str, CustomerState] = {}
    out: Messages = []
    for ev in events(n, customers):
        key = ev.customer_id or ""
        st = sts.get(key)
        if st is None:
            st = sts[key] = CustomerState(key)
        apply(st, ev, cfg)
        msg = enc.output((key, ProfileChanged(key, view(st, cfg), st.watermark, as_of(st))))
        out.append(("", msg.key, msg.value))
    return out


def dump(path: Path, events: int) -> dict[str, int]:
    """Write every case's messages to ``path`` (a pickle); return the count per case."""
    from bench.workload import encoded_events
    from cdpflow.codec import default_codec

    demo = _demo_inputs()
    workload = encoded_events(default_codec(), events, events // 4)
    cases: dict[str, Messages] = {
        "demo, default flush": _flow_messages(demo, 1000),
        "demo, flush_ms=0": _flow_messages(demo, 0),
        "workload, flush_ms=0": _flow_messages(workload, 0),
        "per_event, shipped rules": _per_event(events, events // 4, traits=False),
        "per_event, 20 traits": _per_event(events, events // 4, traits=True),
    }
    path.write_bytes(pickle.dumps(cases))
    return {name: len(m) for name, m in cases.items()}


def _first_difference(a: Messages, b: Messages) -> str:
    from cdpflow.codec import default_codec

    codec = default_codec()
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            before = codec.decode(x[2])[1] if x[2] else None
            after = codec.decode(y[2])[1] if y[2] else None
            return f"message {i} (key {x[1]!r}):\n  before {before}\n  after  {after}"
    return f"{len(a)} messages before, {len(b)} after"


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - no shell


def _worktree(root: Path, at: Path) -> None:
    """A fresh detached worktree of HEAD at ``at``."""
    if at.exists():
        _run(["git", "-C", str(root), "worktree", "remove", "--force", str(at)])
    _run(["git", "-C", str(root), "worktree", "add", "--detach", str(at), "HEAD"])


def compare(rev: str, events: int) -> bool:
    """True when every case's messages are the same bytes with ``rev``'s snapshot code as
    with the working tree's; everything else is HEAD's on both sides (other work in
    progress in the checkout does not count)."""
    root = Path(__file__).resolve().parent.parent
    before_tree, after_tree = WORKTREE, WORKTREE.with_name(WORKTREE.name + "-after")
    before, after = before_tree.with_suffix(".before.pkl"), before_tree.with_suffix(".after.pkl")
    try:
        for tree in (before_tree, after_tree):
            _worktree(root, tree)
            (tree / "bench" / "snapshot_golden.py").write_bytes(Path(__file__).read_bytes())
        for path in SNAPSHOT_FILES:
            git = ["git", "-C", str(root), "show", f"{rev}:{path}"]
            old = subprocess.run(git, capture_output=True, check=False).stdout  # noqa: S603
            (before_tree / path).unlink(missing_ok=True)  # a file added since ``rev``
            if old:
                (before_tree / path).write_bytes(old)
            if (root / path).exists():
                (after_tree / path).write_bytes((root / path).read_bytes())
        cmd = [sys.executable, "-m", "bench.snapshot_golden", "dump", "--events", str(events)]
        subprocess.run([*cmd, str(before)], cwd=before_tree, check=True)  # noqa: S603
        subprocess.run([*cmd, str(after)], cwd=after_tree, check=True)  # noqa: S603
    finally:
        for tree in (before_tree, after_tree):
            _run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)])
    a, b = pickle.loads(before.read_bytes()), pickle.loads(after.read_bytes())  # noqa: S301
    same = True
    for name in a:
        ok = a[name] == b.get(name)
        same &= ok
        print(f"{name:<26} {len(a[name]):>7,} messages  {'same bytes' if ok else 'DIFFERENT'}")
        if not ok:
            print("  " + _first_difference(a[name], b.get(name, [])))
    return same


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare")
    c.add_argument("rev", nargs="?", default="HEAD")
    c.add_argument("--events", type=int, default=20_000)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("--events", type=int, default=20_000)
    args = p.parse_args()
    if args.cmd == "dump":
        counts = dump(args.out, args.events)
        print(f"{Path.cwd()}: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
        return
    sys.exit(0 if compare(args.rev, args.events) else 1)


if __name__ == "__main__":
    main()
