"""Collector throughput on loopback, beside a raw producer loop as the ceiling, in one run.

    python -m bench.collector_throughput [--events N] [--batch 100] [--connections 8]
                                         [--workers 1] [--profile PATH]

Needs a broker at ``KAFKA_BOOTSTRAP_SERVERS`` (``bash docker/kafka-local.sh start``); it
creates uuid-named topics and deletes them afterwards.

- **collector**: ``python -m collector.main --workers W`` (default one process; with
  ``W`` > 1, ``W`` forked processes on one port, each with its own producer);
  ``--connections`` keep-alive HTTP/1.1 connections post ``/v1/batch`` bodies of
  ``--batch`` Segment ``track`` calls, pre-serialized. A request counts when its 200 came
  back, i.e. after Kafka acknowledged all its events. Latency is per request.
- **ceiling**: the same events, already Avro-encoded, through one ``confluent_kafka``
  producer with the collector's settings (idempotent, ``acks=all``, lz4, linger 5 ms) as
  fast as it goes, ended by ``flush()``. Both get the same uncounted warm-up (the first 5 %
  of the events): a cold producer's first flush also waits for its connections and its
  idempotent producer id, about half a second here, which earlier versions of this
  benchmark counted in the ceiling (36,000 events/s for 20,000 events instead of ~150,000).

- **no Kafka**: the same load on the collector app with a sink that discards the
  messages (``bench.collector_no_kafka``): what HTTP, JSON parsing and mapping alone
  allow one process, beside the ceiling of producing alone.

The load generator is a minimal asyncio HTTP client so that it takes little of the CPU the
collector and the broker share on a small machine. The end offsets of the topic are
checked against the number of events answered 200.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cdpflow.codec import default_codec
from cdpflow.settings import Topics
from collector.intake import Normalizer
from collector.producer import OutMessage, producer_config
from collector.segment import segment_to_record
from collector.settings import CollectorSettings

WRITE_KEY = "bench-key"
CATEGORIES = [f"cat-{i}" for i in range(30)]
START = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def messages(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """Segment ``track`` calls: 70 % product views, 20 % cart adds, 10 % custom events."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        category = rng.choice(CATEGORIES)
        product = {
            "product_id": f"{category}-{rng.randint(1, 50)}",
            "category": category,
            "price": 49.0,
            "currency": "EUR",
            "name": "Some product",
        }
        roll = rng.random()
        event = "Product Viewed" if roll < 0.7 else "Product Added" if roll < 0.9 else "Wished"
        out.append(
            {
                "type": "track",
                "messageId": f"bench-{seed}-{i}",
                "userId": f"c-{rng.randint(1, 5000)}",
                "event": event,
                "properties": product,
                # Distinct device times, as real traffic has (in the minute before sentAt).
                "timestamp": _iso(START + timedelta(milliseconds=rng.randint(0, 59_999))),
                "context": {
                    "ip": "192.0.2.1",
                    "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
                    "page": {"url": "https://shop.example/p/1"},
                    "locale": "en-GB",
                    "library": {"name": "analytics.js", "version": "4.1.0"},
                },
            }
        )
    return out


#: ``--mix shop``: a storefront's calls, by share (the rest of the shape as in ``messages``).
SHOP_MIX = (
    ("Product Viewed", 0.40),
    ("page", 0.20),
    ("Product Added", 0.08),
    ("Product Removed", 0.02),
    ("Email Opened", 0.06),
    ("Email Link Clicked", 0.04),
    ("identify", 0.08),
    ("Checkout Started", 0.05),
    ("Order Completed", 0.04),
    ("Wished", 0.03),
)


def shop_messages(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """``messages`` reshaped into a storefront's mix (:data:`SHOP_MIX`): page views,
    sign-ins (``identify``), email engagement, checkouts and orders beside the product
    events."""
    rng = random.Random(seed + 1)
    kinds, weights = zip(*SHOP_MIX, strict=True)
    out = []
    for message in messages(n, seed):
        kind = rng.choices(kinds, weights)[0]
        props = message["properties"]
        if kind == "page":
            message.update(type="page", name="Category", properties={"path": "/c/shoes"})
            del message["event"]
        elif kind == "identify":
            traits = {"email": f"{message['userId']}@example.com", "firstName": "Ada"}
            message.update(type="identify", traits=traits)
            del message["event"], message["properties"]
        elif kind in ("Checkout Started", "Order Completed"):
            line = {**props, "quantity": 1}
            order = {"order_id": f"o-{message['messageId']}", "total": 49.0, "products": [line]}
            message.update(event=kind, properties=order)
        elif kind.startswith("Email"):
            message.update(event=kind, properties={"campaign_id": "wk-48", "email_id": "e-1"})
        else:
            message["event"] = kind
        out.append(message)
    return out


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def request_bytes(port: int, body: bytes) -> bytes:
    import base64

    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    head = (
        f"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _worker(port: int, queue: list[bytes], latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while queue:
            payload = queue.pop()
            started = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _load(
    port: int, bodies: list[bytes], connections: int
) -> tuple[float, list[float], list[int]]:
    queue = [request_bytes(port, b) for b in reversed(bodies)]
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    await asyncio.gather(*(_worker(port, queue, latencies, errors) for _ in range(connections)))
    return time.perf_counter() - started, latencies, errors


def _wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the collector exited during start-up")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the collector did not become ready in 30 s")


def run_collector(
    bootstrap: str,
    topics: Topics,
    msgs: list[dict[str, Any]],
    batch: int,
    connections: int,
    port: int,
    workers: int = 1,
    profile: str | None = None,
    module: str = "collector.main",
) -> dict[str, float]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CDPFLOW_TOPIC_EVENTS": topics.events,
        "CDPFLOW_TOPIC_DLQ": topics.dead_letters,
        "CDPFLOW_WRITE_KEYS": WRITE_KEY,
        # One write key at full speed: the per-key limit stays on (its cost is measured)
        # but far above what one process takes.
        "CDPFLOW_COLLECTOR_RATE_LIMIT": "10000000",
    }
    command = [sys.executable, "-m", module, "--port", str(port)]
    if module == "collector.main":
        command += ["--log-level", "warning", "--workers", str(workers)]
    # Our own interpreter and module, no shell.
    proc = subprocess.Popen(command, env=env)  # noqa: S603
    try:
        _wait_healthy(port, proc)
        bodies = [
            orjson.dumps({"batch": msgs[i : i + batch], "sentAt": "2026-11-01T10:01:00Z"})
            for i in range(0, len(msgs), batch)
        ]
        warm = max(1, len(bodies) // 20)
        asyncio.run(_load(port, bodies[:warm], connections))  # warm-up, not counted
        spy = _start_profile(proc.pid, profile) if profile else None
        pids = _processes(proc.pid)
        before = _cpu(pids)
        elapsed, latencies, errors = asyncio.run(_load(port, bodies[warm:], connections))
        after = _cpu(pids)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if errors:
        raise SystemExit(f"{len(errors)} requests were not answered 200: {sorted(set(errors))}")
    counted = sum(len(orjson.loads(b)["batch"]) for b in bodies[warm:])
    q = statistics.quantiles(latencies, n=100)
    return {
        "rate": counted / elapsed,
        "p50": q[49] * 1000,
        "p99": q[98] * 1000,
        "events": counted,
        "stored": len(msgs),
        "elapsed": elapsed,
        # What the process itself needed, apart from the machine's other work (Linux).
        "cpu_us": (after[0] - before[0]) / counted * 1e6,
        "loop_cpu_s": after[1] - before[1],
        "loop_wait_s": after[2] - before[2],
    }


def _start_profile(pid: int, path: str) -> subprocess.Popen[bytes]:
    """py-spy sampling the collector during the counted load (collapsed stacks, ``raw``)."""
    spy = subprocess.Popen(  # noqa: S603 - py-spy beside our interpreter, no shell
        [
            os.path.join(os.path.dirname(sys.executable), "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--nonblocking",
            "--format",
            "raw",
            "--rate",
            "250",
            "--output",
            path,
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    return spy


def _processes(pid: int) -> list[int]:
    """The collector's process and its workers (``/proc``; the process alone elsewhere)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [pid, *(int(c) for c in f.read().split())]
    except OSError:
        return [pid]


def _cpu(pids: list[int]) -> tuple[float, float, float]:
    """The processes' CPU seconds (all threads), and their main (event loop) threads'
    seconds on a CPU and runnable but waiting for one (``/proc``; zeros elsewhere)."""
    total = on_cpu = waiting = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
                run, wait = (int(x) / 1e9 for x in f.read().split()[:2])
        except OSError:
            return 0.0, 0.0, 0.0
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        on_cpu, waiting = on_cpu + run, waiting + wait
    return total, on_cpu, waiting


def run_ceiling(bootstrap: str, topic: str, msgs: list[dict[str, Any]]) -> float:
    codec = default_codec()
    normalizer = Normalizer(codec, Topics(events=topic))
    encoded = [
        normalizer.encode_record(segment_to_record(m, None, received_at=1_793_000_000_000))
        for m in msgs
    ]
    settings = replace(CollectorSettings(), bootstrap_servers=bootstrap)
    producer = Producer(producer_config(settings))
    # Warm-up, not counted, as for the collector: the first flush also waits for the
    # connections and the idempotent producer's id (~0.5 s here), which is not throughput.
    warm = max(1, len(encoded) // 20)
    _produce_all(producer, encoded[:warm])
    started = time.perf_counter()
    _produce_all(producer, encoded[warm:])
    elapsed = time.perf_counter() - started
    return (len(encoded) - warm) / elapsed


def _produce_all(producer: Producer, messages: list[OutMessage]) -> None:
    for i, m in enumerate(messages):
        while True:
            try:
                producer.produce(m.topic, m.value, m.key)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)
    left = producer.flush(60)
    if left:
        raise SystemExit(f"ceiling: {left} messages not delivered")


def end_offsets(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts
        )
    finally:
        consumer.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument(
        "--mix",
        choices=("views", "shop"),
        default="views",
        help="views: product views, cart adds, custom events; shop: a storefront's mix",
    )
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--port", type=int, default=18080)
    p.add_argument("--workers", type=int, default=1, help="collector processes on the port")
    p.add_argument(
        "--profile", metavar="PATH", help="py-spy the collector during the load (collapsed stacks)"
    )
    args = p.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    tag = uuid.uuid4().hex[:8]
    topics = Topics(events=f"bench-{tag}.events", dead_letters=f"bench-{tag}.dlq")
    ceiling_topic = f"bench-{tag}.ceiling"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [topics.events, topics.dead_letters, ceiling_topic]
    for future in admin.create_topics([NewTopic(t, 4, 1) for t in names]).values():
        future.result(timeout=30)
    try:
        msgs = (messages if args.mix == "views" else shop_messages)(args.events)
        ceiling = run_ceiling(bootstrap, ceiling_topic, msgs)
        result = run_collector(
            bootstrap,
            topics,
            msgs,
            args.batch,
            args.connections,
            args.port,
            args.workers,
            args.profile,
        )
        stored = end_offsets(bootstrap, topics.events)
        # The same load on a collector that discards instead of producing: what HTTP, JSON
        # and mapping alone allow one process (bench/collector_no_kafka.py).
        alone = run_collector(
            bootstrap,
            topics,
            msgs,
            args.batch,
            args.connections,
            args.port + 1,
            module="bench.collector_no_kafka",
        )
    finally:
        admin.delete_topics(names)
    print(
        f"{args.events:,} events ({args.mix}), batches of {args.batch}, "
        f"{args.connections} connections, "
        f"{args.workers} collector process{'es' if args.workers > 1 else ''}; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print("| run | events/s | p50 ms/request | p99 ms/request |")
    print("|---|---:|---:|---:|")
    print(f"| raw producer loop (ceiling) | {ceiling:,.0f} | | |")
    print(
        f"| collector `/v1/batch` | {result['rate']:,.0f} | {result['p50']:.1f} | "
        f"{result['p99']:.1f} |"
    )
    print(
        f"| collector `/v1/batch`, events discarded instead of produced (no Kafka) | "
        f"{alone['rate']:,.0f} | {alone['p50']:.1f} | {alone['p99']:.1f} |"
    )
    print(
        f"collector / ceiling: {result['rate'] / ceiling:.0%}; stored in topic: {stored:,} "
        f"of {len(msgs):,} answered 200"
    )
    if result["loop_cpu_s"]:
        loops = "its event loop" if args.workers == 1 else f"its {args.workers} event loops"
        print(
            f"collector: {result['cpu_us']:.0f} µs of CPU per event (all threads); "
            f"{loops} ran {result['loop_cpu_s']:.2f} s and waited "
            f"{result['loop_wait_s']:.2f} s for a CPU in {result['elapsed']:.2f} s; "
            f"without Kafka {alone['cpu_us']:.0f} µs"
        )


if __name__ == "__main__":
    main()
