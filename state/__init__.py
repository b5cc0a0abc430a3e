"""Per-customer state, pure: the profile, windowed counters, dedupe and rules.

Nothing here imports Bytewax, Kafka or Avro; ``flows`` adapts it to the dataflow.
"""

from state.config import CategoryInterestConfig, ProfileConfig
from state.events import Event
from state.outputs import Erased, Output, ProfileChanged, Rejected, TagChange, Trigger
from state.profile import (
    CustomerState,
    advance,
    apply,
    as_of,
    compact,
    compact_idle,
    excerpt,
    facts_of,
    is_idle,
    next_deadline,
)
from state.profile_view import view
from state.snapshot import STATE_VERSION, from_snapshot, to_snapshot

__all__ = [
    "STATE_VERSION",
    "CategoryInterestConfig",
    "CustomerState",
    "Erased",
    "Event",
    "Output",
    "ProfileChanged",
    "ProfileConfig",
    "Rejected",
    "TagChange",
    "Trigger",
    "advance",
    "apply",
    "as_of",
    "compact",
    "compact_idle",
    "excerpt",
    "facts_of",
    "from_snapshot",
    "is_idle",
    "next_deadline",
    "to_snapshot",
    "view",
]
