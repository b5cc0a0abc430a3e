"""An :class:`~state.events.Event` back as a ``cdp.Event`` record: the inverse of
:func:`flows.decode.event_from_record`, for events the dataflow writes back to the
events topic (a customer merge's handover and forwarded events, :mod:`state.alias`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from state.events import Event

__all__ = ["event_record"]

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def event_record(ev: Event) -> dict[str, Any]:
    """The record to encode; values decoded without logical types pass through as they
    came (fastavro encodes raw ints and decimal bytes unchanged)."""
    # Imported here: cdpflow.json_events imports flows (to_ms), which imports this module.
    from cdpflow.json_events import PAYLOAD_RECORD

    payload = dict(ev.payload)
    signup = payload.get("signup_date")
    if isinstance(signup, str):
        payload["signup_date"] = date.fromisoformat(signup).toordinal() - _EPOCH_ORDINAL
    return {
        "event_id": ev.event_id,
        "event_type": ev.event_type,
        "customer_id": ev.customer_id,
        "anonymous_id": ev.anonymous_id,
        "event_time": ev.event_time,
        "sent_at": None,
        "received_at": ev.received_at,
        "source": ev.source,
        "context": ev.context,
        "payload": (PAYLOAD_RECORD[ev.event_type], payload),
    }
