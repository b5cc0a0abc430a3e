"""Avro decode of ``cdp.Event`` messages: fastavro's ``schemaless_reader`` against the
reader compiled once per writer schema (:mod:`cdpflow.avro_reader`), in the same run.

    python -m bench.decode_throughput [--events N] [--customers N] [--repeat N]

Rows, over the same pre-encoded messages of :mod:`bench.workload` (the body after the
10-byte single-object header):

- fastavro: ``schemaless_reader`` as ``AvroCodec.decode`` called it before (a ``BytesIO``
  per message; the writer schema parsed again on each call, fastavro issue #444);
- compiled: the generated reader alone;
- codec.decode: the whole ``AvroCodec.decode`` the dataflow calls (framing, fingerprint,
  trailing-bytes check, then the compiled reader).

Each row with ``logical=False`` (what the dataflow reads: times as integer ms) and
``logical=True`` (aware UTC datetimes). Every row's records are checked equal first.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import time
from collections.abc import Callable

from fastavro import parse_schema, schemaless_reader

from bench.workload import encoded_events
from cdpflow.avro_reader import compile_reader
from cdpflow.codec import _HEADER_LEN, _without_logical_types, default_codec

__all__ = ["main"]


def _per_message_us(run: Callable[[], None], count: int) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / count * 1e6


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

        def fastavro_run(schema: object = schema, keep: list[object] | None = None) -> None:
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

        runs = {"fastavro": fastavro_run, "compiled": compiled_run, "codec.decode": codec_run}
        expected: list[object] = []
        fastavro_run(keep=expected)
        for name, run in runs.items():  # same records, or the table means nothing
            got: list[object] = []
            run(keep=got)
            if got != expected:
                raise SystemExit(f"{name} (logical={logical}) read other records than fastavro")
        del expected, got  # timed runs keep nothing: live records would make the GC work
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):  # interleaved, so that a busy moment hits every row
            for name, run in runs.items():
                times[name].append(_per_message_us(run, len(data)))
        base = statistics.median(times["fastavro"])
        for name in runs:
            us = statistics.median(times[name])
            rows.append((f"{name}, logical={logical}", us, base / us))

    size = sum(map(len, data)) / len(data)
    print(f"{len(data):,} cdp.Event messages ({size:.0f} bytes on average, "
          f"bench.workload), median of {args.repeat}; Python {platform.python_version()}, "
          f"{platform.machine()}")  # fmt: skip
    print(f"| {'reader':<28} | {'µs / message':>12} | {'speed-up':>10} |")
    print(f"|{'-' * 30}|{'-' * 13}:|{'-' * 11}:|")
    for name, us, speedup in rows:
        print(f"| {name:<28} | {us:>12.2f} | {speedup:>10.2f} |")


if __name__ == "__main__":
    main()
