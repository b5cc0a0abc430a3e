"""Bytewax wiring: the dataflow, its operators, and the Kafka edges.

Pure profile logic lives in ``state``; this package adapts it to streams.
"""

from flows.dataflow import build_flow

__all__ = ["build_flow"]
