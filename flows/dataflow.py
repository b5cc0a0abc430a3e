"""``build_flow``: the cdpflow dataflow, independent of where events come from and go.

::

    events_in ─► decode ─┬─ oks ─► identity ─┬─ events ─► by_customer ─► profile ─► encode ─┐
                         │                   ├─ links ─────────────────────► identity_links ─┤
                         │                   └─ errs ─────────────────────► identity_errors ─┤
                         └─ errs ──────────────────────────────────────────► dead_letters ───┴─► out

Every stage that handles one record is a failure boundary (:mod:`flows.failures`): what
raises becomes a ``processing_error`` dead letter and the worker goes on.

Production passes Kafka (``flows.kafka_io``); the demo and tests pass Bytewax's
testing source and sink.
"""

from __future__ import annotations

from collections.abc import Callable

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import FixedPartitionedSink, Sink

from cdpflow.codec import AvroCodec, default_codec
from cdpflow.settings import Settings
from flows.clock import Clock, system_clock_ms
from flows.decode import SourceItem, decode
from flows.encode import Encoder, SinkMessage
from flows.identity_step import stitch
from flows.profile_step import profiles
from state import Trigger
from state.alias import route_key

__all__ = ["build_flow"]


def build_flow(
    source: Source[SourceItem],
    sink: Sink[SinkMessage],
    settings: Settings,
    *,
    codec: AvroCodec | None = None,
    clock: Clock = system_clock_ms,
    flow_id: str = "cdpflow",
    keep_trigger: Callable[[Trigger], bool] | None = None,
    end_at_stream_time: bool = False,
    resend: bool = True,
) -> Dataflow:
    """``keep_trigger``: a filter for triggers (replay's ``--triggers`` policy); tag changes
    and profiles always flow. ``end_at_stream_time``: at the end of a bounded input, let
    the moments happen up to the newest event time only (replay), instead of up to the
    wall clock (a bounded live run). ``resend``: write a customer merge's handover and
    forwarded events back to the events topic (:mod:`state.alias`); a replay passes
    ``False``, its history already holding them."""
    codec = codec or default_codec()
    encoder = Encoder(codec, settings.topics, clock, settings.max_message_bytes)
    flow = Dataflow(flow_id)
    msgs = op.input("events_in", flow, source)
    decoded = decode("decode", msgs, codec, settings.limits, clock)
    stitched = stitch("identity", decoded.oks, settings.identity, clock)
    keyed = op.key_on("by_customer", stitched.events, route_key)
    outputs = profiles(
        "profile",
        keyed,
        settings.profile,
        clock,
        settings.profile_flush_ms,
        settings.timer_grace_ms,
        end_at_stream_time,
        resend,
        settings.freeze_idle_ms,
    )
    if keep_trigger is not None:
        policy = keep_trigger
        outputs = op.filter(
            "trigger_policy", outputs, lambda kv: not isinstance(kv[1], Trigger) or policy(kv[1])
        )
    encoded = op.flat_map("encode", outputs, encoder.outputs)
    dead = op.map("dead_letters", decoded.errs, encoder.dead_letter)
    links = op.map("identity_links", stitched.links, encoder.identity_link)
    routing = op.flat_map("identity_errors", stitched.errs, lambda r: encoder.outputs(("", r)))
    merged = op.merge("all_out", encoded, dead, links, routing)
    if isinstance(sink, FixedPartitionedSink):  # partitioned by key (flows.kafka_io.EpochSink)
        op.output("out", op.map("by_key", merged, _keyed), sink)
    else:
        op.output("out", merged, sink)
    return flow


def _keyed(msg: SinkMessage) -> tuple[str, SinkMessage]:
    key = msg.key
    return ("" if key is None else key.decode("utf-8", "replace")), msg
