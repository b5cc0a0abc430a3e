"""Errors of the pure profile logic; rooted in :class:`cdpflow.errors.CdpflowError`."""

from cdpflow.errors import CdpflowError

__all__ = ["MergeOverlapError", "SnapshotVersionError", "StateError"]


class StateError(CdpflowError):
    """The profile logic was handed something it cannot apply."""

    reason = "state"


class SnapshotVersionError(StateError):
    """A recovery snapshot written by a layout this code cannot read."""

    reason = "snapshot_version"


class MergeOverlapError(StateError):
    """Two customer states to merge have both applied some of the same events: their
    counters cannot be added without counting those events twice."""

    reason = "merge_overlap"
