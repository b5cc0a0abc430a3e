"""Per-customer state, pure: the profile, windowed counters, dedupe and rules.

Nothing here imports Bytewax, Kafka or Avro; ``flows`` adapts it to the dataflow.
"""

from state.config import CategoryInterestConfig, ProfileConfig
from state.events import Event
from state.outputs import Output, ProfileChanged, Rejected, TagChange, Trigger
from state.profile import (
    CustomerState,
    apply,
    as_of,
    compact,
    compact_idle,
    excerpt,
    is_idle,
    view,
)
from state.snapshot import STATE_VERSION, from_snapshot, to_snapshot

__all__ = [
    "STATE_VERSION",
    "CategoryInterestConfig",
    "CustomerState",
    "Event",
    "Output",
    "ProfileChanged",
    "ProfileConfig",
    "Rejected",
    "TagChange",
    "Trigger",
    "apply",
    "as_of",
    "compact",
    "compact_idle",
    "excerpt",
    "from_snapshot",
    "is_idle",
    "to_snapshot",
    "view",
]
