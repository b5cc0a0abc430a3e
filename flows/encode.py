"""Turn outputs of the profile logic and dead letters into Kafka messages.

Routing: ``Trigger`` and ``TagChange`` to the triggers topic (the email system's one
subscription), ``ProfileChanged`` to the compacted profiles topic, ``Rejected`` and
``DeadLetter`` to the dead-letter topic, ``IdentityLink`` and ``CustomerMerge`` to the
identities topic, and ``Resend`` (a customer merge's handover and forwarded events) back to
the events topic. Keys are the customer id, so a consumer sees one
customer's records in order. A ``cdp.schema`` header names the record for routing
without decoding.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

import orjson
from bytewax.connectors.kafka import KafkaSinkMessage

from cdpflow.avro_writer import compile_record_writer
from cdpflow.codec import MARKER, AvroCodec
from cdpflow.settings import Topics
from flows import metrics
from flows.clock import Clock
from flows.dead_letters import DeadLetter, Origin
from flows.event_record import event_record
from flows.failures import record_failure
from flows.snapshot_load import LOAD, SnapshotLoad
from state import STATE_VERSION, Erased, Output, ProfileChanged, Rejected, TagChange, Trigger
from state.identity import IdentityLink
from state.outputs import CustomerMerge, Resend

__all__ = ["Encoder", "SinkMessage"]

SinkMessage = KafkaSinkMessage[bytes | None, bytes | None]

_KEPT_ATTRIBUTES = frozenset({"email", "first_name", "last_name", "signup_date"})
#: ``cdp.ProfileSnapshot``'s fields in schema order, as :meth:`Encoder._snapshot` passes them.
_SNAPSHOT_FIELDS = ("customer_id", "state_version", "email", "first_name", "last_name",
                    "lifecycle", "tags", "segments", "profile_json", "event_time", "emitted_at",
                    "revision", "as_of")  # fmt: skip
_SNAPSHOT_HEADERS = (("cdp.schema", b"cdp.ProfileSnapshot"),)
_NO_ATTRIBUTES: dict[str, Any] = {}


class Encoder:
    """Encodes with one codec to one set of topics; ``emitted_at`` comes from ``clock``.

    :meth:`outputs` is the failure boundary of the last stage: an output that cannot be
    encoded becomes a ``processing_error`` dead letter, and none exceeds
    ``max_message_bytes`` (which would fail the sink on every restart): a profile snapshot
    over it is written trimmed (``"truncated": true``, identity, lifecycle, tags and
    segments kept) with a ``profile_too_large`` dead letter; any other record is replaced
    by an ``output_too_large`` dead letter.
    """

    def __init__(
        self,
        codec: AvroCodec,
        topics: Topics,
        clock: Clock,
        max_message_bytes: int = 1_000_000,
        load: SnapshotLoad = LOAD,
    ) -> None:
        self._codec = codec
        self._load = load  # told what snapshots cost: their coalescing adapts to it
        self._topics = topics
        self._clock = clock
        self._max = max_message_bytes
        # A snapshot goes out per customer change: written by a positional writer (no
        # record dict built and read back), the same bytes as ``codec.encode``'s.
        schema = codec.schema("cdp.ProfileSnapshot")
        names = tuple(f["name"] for f in schema["fields"])
        if names != _SNAPSHOT_FIELDS:
            raise ValueError(f"cdp.ProfileSnapshot has fields {names}, the encoder "
                             f"writes {_SNAPSHOT_FIELDS}: update it with the schema")  # fmt: skip
        prefix = MARKER + codec.fingerprint_of("cdp.ProfileSnapshot")
        self._write_snapshot = compile_record_writer(schema, prefix)

    def outputs(self, item: tuple[str, Output]) -> list[SinkMessage]:
        """:meth:`output`, never raising and never over the size limit."""
        key, out = item
        try:
            msg = self.output(item)
            if msg.value is None or len(msg.value) <= self._max:
                return [msg]
            return self._oversized(key, out, len(msg.value))
        except Exception as exc:  # noqa: BLE001 - the failure boundary: the worker goes on
            error = record_failure("encode", exc)
            return [self._letter(key, "processing_error", error, type(exc).__name__, out)]

    def _oversized(self, key: str, out: Output, size: int) -> list[SinkMessage]:
        kind = type(out).__name__
        error = f"{kind} record of {size} bytes exceeds CDPFLOW_MAX_MESSAGE_BYTES ({self._max})"
        if isinstance(out, ProfileChanged):
            v = out.view
            trimmed = {
                "customer_id": v.get("customer_id"),
                "key": v.get("key"),
                "revision": v.get("revision"),
                "attributes": {
                    k: a
                    for k, a in (v.get("attributes") or {}).items()
                    if k in _KEPT_ATTRIBUTES and (not isinstance(a, str) or len(a) <= 1024)
                },
                "lifecycle": v.get("lifecycle"),
                "tags": v.get("tags", []),
                "segments": v.get("segments", []),
                "truncated": True,
            }
            letter = self._letter(key, "profile_too_large", error, "OutputTooLarge", out)
            smaller = ProfileChanged(out.key, trimmed, out.event_time, out.as_of)
            return [self.output((key, smaller)), letter]
        return [self._letter(key, "output_too_large", error, "OutputTooLarge", out)]

    def _letter(
        self, key: str, reason: str, error: str, error_type: str, out: Output
    ) -> SinkMessage:
        origin = getattr(out, "origin", None)
        if not isinstance(origin, Origin):
            origin = Origin(None, None, None, key.encode(), None)
        return self.dead_letter(DeadLetter(reason, error, error_type, origin, self._clock()))

    def output(self, item: tuple[str, Output]) -> SinkMessage:
        key, out = item
        if isinstance(out, Trigger):
            metrics.TRIGGERS.labels(out.rule).inc()
            return self._msg(self._topics.triggers, out.customer_id, "cdp.Trigger",
                             self._trigger(out))  # fmt: skip
        if isinstance(out, TagChange):
            metrics.TAG_CHANGES.labels(str(out.added).lower()).inc()
            record = {
                "change_id": out.change_id,
                "customer_id": out.customer_id,
                "tag": out.tag,
                "added": out.added,
                "reason": out.reason,
                "event_time": out.event_time,
                "emitted_at": self._clock(),
            }
            return self._msg(self._topics.triggers, out.customer_id, "cdp.TagChange", record)
        if isinstance(out, ProfileChanged):
            start = perf_counter()
            value = self._snapshot(out)
            self._load.spent(perf_counter() - start)
            return KafkaSinkMessage(key.encode(), value, topic=self._topics.profiles,
                                    headers=list(_SNAPSHOT_HEADERS))  # fmt: skip
        if isinstance(out, Erased):
            # A tombstone: compaction drops the customer's snapshots, and every reader of
            # the topic (profile API, mailer) deletes its copy.
            return KafkaSinkMessage(out.key.encode(), None, topic=self._topics.profiles,
                                    headers=[("cdp.schema", b"tombstone")])  # fmt: skip
        if isinstance(out, Rejected):
            if out.reason == "late_event":
                metrics.LATE_EVENTS.inc()
            origin = out.origin if isinstance(out.origin, Origin) else None
            letter = DeadLetter(out.reason, out.error, out.error_type, origin, self._clock(),
                                out.event_id or None)  # fmt: skip
            return self.dead_letter(letter)
        if isinstance(out, Resend):
            ev = out.event
            return self._msg(self._topics.events, ev.key, "cdp.Event", event_record(ev))
        if isinstance(out, CustomerMerge):
            return self._msg(self._topics.identities, out.merged_into, "cdp.CustomerMerge", {
                "merge_id": out.merge_id,
                "previous_id": out.previous_id,
                "customer_id": out.customer_id,
                "outcome": out.outcome,
                "merged_into": out.merged_into,
                "merged_events": out.merged_events,
                "event_time": out.event_time,
                "emitted_at": self._clock(),
            })  # fmt: skip
        raise TypeError(f"no route for output type {type(out).__name__}")

    def identity_link(self, link: IdentityLink) -> SinkMessage:
        record = {
            "link_id": link.link_id,
            "anonymous_id": link.anonymous_id,
            "customer_id": link.customer_id,
            "outcome": link.outcome,
            "linked_to": link.linked_to,
            "merged_events": link.merged_events,
            "event_time": link.event_time,
            "emitted_at": self._clock(),
        }
        return self._msg(self._topics.identities, link.linked_to, "cdp.IdentityLink", record)

    def dead_letter(self, letter: DeadLetter) -> SinkMessage:
        metrics.DEAD_LETTERS.labels(letter.reason).inc()
        key = letter.origin.key if letter.origin else None
        value = self._codec.encode("cdp.DeadLetter", letter.to_record())
        return KafkaSinkMessage(key, value, topic=self._topics.dead_letters,
                                headers=[("cdp.schema", b"cdp.DeadLetter")])  # fmt: skip

    def _msg(self, topic: str, key: str, name: str, record: dict[str, Any]) -> SinkMessage:
        return KafkaSinkMessage(
            key.encode(),
            self._codec.encode(name, record),
            topic=topic,
            headers=[("cdp.schema", name.encode())],
        )

    def _trigger(self, t: Trigger) -> dict[str, Any]:
        return {
            "trigger_id": t.trigger_id,
            "rule": t.rule,
            "customer_id": t.customer_id,
            "email": t.profile.get("email"),
            "category": t.category,
            "product_ids": list(t.product_ids),
            "items": list(t.items),
            "amount": t.amount,
            "currency": t.currency,
            "attributes": t.attributes,
            "profile": t.profile,
            "event_time": t.event_time,
            "emitted_at": self._clock(),
        }

    def _snapshot(self, p: ProfileChanged) -> bytes:
        """The framed ``cdp.ProfileSnapshot`` of ``p`` (fields in ``_SNAPSHOT_FIELDS`` order)."""
        v = p.view
        get = v.get
        attrs = get("attributes", _NO_ATTRIBUTES)
        return self._write_snapshot(
            p.key,
            STATE_VERSION,
            attrs.get("email"),
            attrs.get("first_name"),
            attrs.get("last_name"),
            get("lifecycle"),
            list(get("tags", ())),
            list(get("segments", ())),
            orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode(),
            p.event_time,
            self._clock(),
            get("revision"),
            p.as_of,
        )
