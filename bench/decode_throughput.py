"""Avro decode of ``cdp.Event`` messages: fastavro's ``schemaless_reader`` against the
reader compiled once per writer schema (:mod:`cdpflow.avro_reader`), in the same run.

    python -m bench.decode_throughput [--events N] [--customers N] [--repeat N]

Rows, over the same pre-encoded messages of :mod:`bench.workload` (the body after the
10-byte single-object header):

- fastavro: ``schemaless_reader`` as ``AvroCodec.decode`` called it before (a ``BytesIO``
  per message; the writer schema parsed again on each call, fastavro issue #444);
- compiled: the generated reader alone;
- codec.decode: the whole ``AvroCodec.decode`` (framing, fingerprint, trailing-bytes
  check, then the compiled reader).

Each row with ``logical=False`` (what the dataflow reads: times as integer ms) and
``logical=True`` (aware UTC datetimes). Then the bytes to :class:`state.events.Event`, as
the dataflow's decode step gets it (before ``check_event``), against the first of them:

- fastavro + event_from_record: the decode before any compiled reader;
- codec.decode + event_from_record: the compiled reader's dict, then the conversion;
- codec.decode_into Event: the reader that builds the ``Event`` itself (``EVENT_INTO``),
  what ``flows.decode`` calls now.

Every row's records (or events) are checked equal first.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from fastavro import parse_schema, schemaless_reader

from bench.workload import encoded_events
from cdpflow.avro_reader import compile_reader
from cdpflow.codec import _HEADER_LEN, _without_logical_types, default_codec
from flows.decode import EVENT_INTO, event_from_record

__all__ = ["main"]


def _per_message_us(run: Callable[[], None], count: int) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / count * 1e6


def _measure(
    runs: dict[str, Callable[..., None]], repeat: int, count: int, suffix: str = ""
) -> list[tuple[str, float, float]]:
    """Each run's median µs per message and its speed-up over the first run."""
    first = next(iter(runs))
    expected: list[object] = []
    runs[first](keep=expected)
    for name, run in runs.items():  # same records, or the table means nothing
        got: list[object] = []
        run(keep=got)
        if got != expected or not all(
            type(a) is type(b) for a, b in zip(got, expected, strict=True)
        ):
            raise SystemExit(f"{name}{suffix} read other records than {first}")
    del expected, got  # timed runs keep nothing: live records would make the GC work
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):  # interleaved, so that a busy moment hits every row
        for name, run in runs.items():
            times[name].append(_per_message_us(run, count))
    base = statistics.median(times[first])
    return [
        (f"{name}{suffix}", statistics.median(times[name]), base / statistics.median(times[name]))
        for name in runs
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=5_000)
    p.add_argument("--customers", type=int, default=1_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()

    codec = default_codec()
    msgs = [m.value for m in encoded_events(codec, args.events, args.customers)]
    assert all(m is not None for m in msgs)
    data: list[bytes] = [m for m in msgs if m is not None]
    logical_schema = codec.schema("cdp.Event")
    rows: list[tuple[str, float, float]] = []
    for logical in (False, True):
        schema = logical_schema if logical else parse_schema(_without_logical_types(logical_schema))
        compiled = compile_reader(schema, logical=logical)

        def fastavro_run(schema: Any = schema, keep: list[object] | None = None) -> None:
            for m in data:
                buf = io.BytesIO(m)
                buf.seek(_HEADER_LEN)
                record = schemaless_reader(buf, schema, None)
                if keep is not None:
                    keep.append(record)

        def compiled_run(
            read: Callable[..., tuple[object, int]] = compiled, keep: list[object] | None = None
        ) -> None:
            for m in data:
                record = read(m, _HEADER_LEN)[0]
                if keep is not None:
                    keep.append(record)

        def codec_run(logical: bool = logical, keep: list[object] | None = None) -> None:
            for m in data:
                record = codec.decode(m, logical=logical)[1]
                if keep is not None:
                    keep.append(record)

        runs: dict[str, Callable[..., None]] = {
            "fastavro": fastavro_run,
            "compiled": compiled_run,
            "codec.decode": codec_run,
        }
        rows += _measure(runs, args.repeat, len(data), f", logical={logical}")

    plain_schema = parse_schema(_without_logical_types(logical_schema))

    def fastavro_event_run(keep: list[object] | None = None) -> None:
        for m in data:
            buf = io.BytesIO(m)
            buf.seek(_HEADER_LEN)
            record: Any = schemaless_reader(buf, plain_schema, None)
            event = event_from_record(record)
            if keep is not None:
                keep.append(event)

    def codec_event_run(keep: list[object] | None = None) -> None:
        for m in data:
            event = event_from_record(codec.decode(m, logical=False)[1])
            if keep is not None:
                keep.append(event)

    def into_run(keep: list[object] | None = None) -> None:
        for m in data:
            event = codec.decode_into(m, EVENT_INTO, None)[1]
            if keep is not None:
                keep.append(event)

    rows += _measure(
        {
            "fastavro + event_from_record": fastavro_event_run,
            "codec.decode + event_from_record": codec_event_run,
            "codec.decode_into Event": into_run,
        },
        args.repeat,
        len(data),
    )

    size = sum(map(len, data)) / len(data)
    print(f"{len(data):,} cdp.Event messages ({size:.0f} bytes on average, "
          f"bench.workload), median of {args.repeat}; Python {platform.python_version()}, "
          f"{platform.machine()}")  # fmt: skip
    print(f"| {'reader':<32} | {'µs / message':>12} | {'speed-up':>10} |")
    print(f"|{'-' * 34}|{'-' * 13}:|{'-' * 11}:|")
    for name, us, speedup in rows:
        print(f"| {name:<32} | {us:>12.2f} | {speedup:>10.2f} |")


if __name__ == "__main__":
    main()
