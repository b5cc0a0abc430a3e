"""``cdpflow demo``: the real dataflow over the bundled sample, with no Kafka.

The sample's JSON events are encoded to Avro exactly as the collector would, fed to
:func:`flows.build_flow` through Bytewax's testing source, and what comes out is decoded
and printed. The bundled sample gets one corrupt message among its events, to show a
dead letter; a file of your own (``--events``) runs exactly as given.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main

from cdpflow import sample
from cdpflow.codec import AvroCodec, default_codec
from cdpflow.json_events import record_from_json
from cdpflow.settings import Settings
from flows.dataflow import build_flow
from flows.decode import to_ms
from flows.encode import SinkMessage

__all__ = ["DemoResult", "encode_sample", "run_demo"]

CORRUPT = b'{"json": "where Avro was expected"}'


@dataclass
class DemoResult:
    """Decoded outputs of one run, by kind."""

    events_in: int
    triggers: list[dict[str, Any]] = field(default_factory=list)
    tag_changes: list[dict[str, Any]] = field(default_factory=list)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    identity_links: list[dict[str, Any]] = field(default_factory=list)
    customer_merges: list[dict[str, Any]] = field(default_factory=list)
    resent: list[dict[str, Any]] = field(default_factory=list)
    """Events written back to the events topic (customer merges, :mod:`state.alias`)."""


def encode_sample(
    events: list[dict[str, Any]], codec: AvroCodec, topic: str = "sample"
) -> list[KafkaSourceMessage[bytes | None, bytes | None]]:
    """JSON events as the Kafka messages the collector would have produced."""
    msgs = []
    for offset, event in enumerate(events):
        record = record_from_json(event, codec)
        key = (record["customer_id"] or record["anonymous_id"] or "").encode()
        value = codec.encode("cdp.Event", record)
        msgs.append(KafkaSourceMessage(key, value, topic=topic, partition=0, offset=offset))
    return msgs


def collect(messages: list[SinkMessage], codec: AvroCodec, events_in: int) -> DemoResult:
    result = DemoResult(events_in)
    for msg in messages:
        if msg.value is None:  # a tombstone: the customer was erased
            result.profiles.pop((msg.key or b"").decode(), None)
            continue
        name, record = codec.decode(msg.value)
        if name == "cdp.Trigger":
            result.triggers.append(record)
        elif name == "cdp.TagChange":
            result.tag_changes.append(record)
        elif name == "cdp.ProfileSnapshot":
            result.profiles[record["customer_id"]] = record  # compacted: the last one wins
        elif name == "cdp.DeadLetter":
            result.dead_letters.append(record)
        elif name == "cdp.IdentityLink":
            result.identity_links.append(record)
        elif name == "cdp.CustomerMerge":
            result.customer_merges.append(record)
        elif name == "cdp.Event":
            result.resent.append(record)
    return result


def run_demo(
    path: Path = sample.SAMPLE_PATH,
    settings: Settings | None = None,
    *,
    corrupt: bool | None = None,
) -> DemoResult:
    """Run the dataflow over ``path``; ``corrupt`` (default: only for the bundled
    sample) adds one message that is not Avro, to show a dead letter."""
    codec = default_codec()
    if corrupt is None:
        corrupt = path.resolve() == sample.SAMPLE_PATH.resolve()
    settings = settings or Settings()
    events = sample.load(path)
    msgs = encode_sample(events, codec)
    # The demo's "now" is two hours after the newest sample event, not today's date, so
    # timers (abandoned carts, lifecycle moves) fire the same way on every run.
    now = max(to_ms(m["event_time"]) for m in map(lambda m: codec.decode(m.value)[1], msgs))
    now += 2 * 3_600_000
    if corrupt:
        msgs.insert(len(msgs) // 2, KafkaSourceMessage(b"?", CORRUPT, topic="sample", partition=0))
    msgs = [replace(m, offset=i) for i, m in enumerate(msgs)]
    out: list[SinkMessage] = []
    run_main(build_flow(TestingSource(msgs), TestingSink(out), settings, clock=lambda: now))
    return collect(out, codec, len(msgs))


def _when(value: datetime | int) -> str:
    return datetime.fromtimestamp(to_ms(value) / 1000, UTC).strftime("%a %d %b %H:%M")


def print_result(r: DemoResult, out: TextIO, *, all_tag_changes: bool = False) -> None:
    w = out.write
    w(f"Triggers ({len(r.triggers)}) -> cdp.triggers\n")
    for t in sorted(r.triggers, key=lambda t: (to_ms(t["event_time"]), t["trigger_id"])):
        who = t["profile"]["first_name"] or t["customer_id"]
        detail = t["category"] or ", ".join(f"{k}={v}" for k, v in t["attributes"].items())
        if t["amount"] is not None:
            detail += f" cart={t['amount']:.2f} {t['currency'] or ''}".rstrip()
        if t["product_ids"]:
            detail += f" products={','.join(t['product_ids'])}"
        w(f"  {_when(t['event_time'])}  {t['rule']:<18} {who:<5} ({t['customer_id']})  "
          f"{detail}  id={t['trigger_id'][:12]}\n")  # fmt: skip

    customers = sorted((c, p) for c, p in r.profiles.items() if not c.startswith("anon:"))
    w(f"\nProfiles ({len(customers)} customers) -> cdp.profiles\n")
    for cid, p in customers:
        tags = ", ".join(p["tags"]) or "-"
        segments = ", ".join(p["segments"]) or "-"
        w(f"  {cid}  {p['first_name'] or '':<5} {p['lifecycle'] or '-':<8} tags: {tags}"
          f"{'  segments: ' + segments if p['segments'] else ''}\n")  # fmt: skip

    w(f"\nTag changes ({len(r.tag_changes)}) -> cdp.triggers\n")
    if all_tag_changes:
        for c in r.tag_changes:
            sign = "+" if c["added"] else "-"
            w(f"  {_when(c['event_time'])}  {sign}{c['tag']:<24} {c['customer_id']}  "
              f"{c['reason']}\n")  # fmt: skip
    else:
        counts = Counter(("+" if c["added"] else "-") + c["tag"] for c in r.tag_changes)
        for tag, n in sorted(counts.items(), key=lambda kv: (kv[0][1:], kv[0][0])):
            w(f"  {tag:<32} {n:>4}\n")
        w("  (every change: cdpflow demo --all)\n")

    w(f"\nIdentity links ({len(r.identity_links)}) -> cdp.identities\n")
    for li in r.identity_links:
        w(f"  {_when(li['event_time'])}  {li['outcome']:<8} anonymous {li['anonymous_id']} -> "
          f"{li['linked_to']} ({li['merged_events']} earlier events merged)\n")  # fmt: skip

    w(f"\nDead letters ({len(r.dead_letters)}) -> cdp.events.dlq\n")
    for d in r.dead_letters:
        w(f"  offset {d['source_offset']:>4}  {d['reason']:<22} {d['error']}\n")
    anonymous = sum(1 for c in r.profiles if c.startswith("anon:"))
    reasons = Counter(d["reason"] for d in r.dead_letters)
    w(f"\nSummary: {r.events_in} messages in; profiles: {len(customers)} customers, "
      f"{anonymous} anonymous visitors; {len(r.triggers)} triggers, "
      f"{len(r.tag_changes)} tag changes, {len(r.dead_letters)} dead letters "
      f"({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))}).\n")  # fmt: skip
