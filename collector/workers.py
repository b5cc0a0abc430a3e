"""Several collector processes on one port: ``cdpflow collect --workers N``.

One Python process runs its requests on one core (the GIL): past that, the collector
scales by processes. It is stateless, so the processes share nothing but the port:

- the parent binds the listening socket, then forks the workers (before any thread or
  producer exists); each builds its own app — its own Kafka producer, created in the
  lifespan, flushed on shutdown — and serves the inherited socket with uvicorn. The kernel
  hands each new connection to one of the processes waiting in ``accept()``;
- the parent only supervises: SIGTERM or SIGINT is passed on to every worker (each stops
  taking connections, answers what it holds and flushes its producer); if a worker dies
  on its own, the others are stopped and the exit status is 1, for the process manager
  to restart the whole;
- metrics use Prometheus' multiprocess mode: each worker writes its counters to memory-
  mapped files in a directory of the parent's (``PROMETHEUS_MULTIPROC_DIR``, set before
  ``prometheus_client`` is imported), and ``/metrics``, whichever worker answers it, sums
  all of them; the in-flight gauge sums the live workers.

The rate limit (``CDPFLOW_COLLECTOR_RATE_LIMIT``) and the in-flight byte budget apply per
worker: N workers admit up to N times each. One customer's events sent through different
connections may reach Kafka out of order, which the dataflow's event-time handling allows
for (as with several collectors behind a load balancer).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from types import FrameType

__all__ = ["METRICS_DIR_ENV", "bind", "metrics_dir_for_workers", "run_workers"]

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_dir_for_workers() -> str:
    """A new, empty directory for the workers' metric files, named in the environment.

    Call before anything imports ``prometheus_client``: it reads the variable once, at
    import, to choose memory-mapped values.
    """
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the metrics directory was set")
    path = tempfile.mkdtemp(prefix="cdpflow-collector-metrics-")
    os.environ[METRICS_DIR_ENV] = path
    return path


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; ``OSError`` (in use, no such address) as is."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_workers(
    count: int, sock: socket.socket, serve: Callable[[socket.socket], None], metrics_dir: str
) -> int:
    """Fork ``count`` workers, each running ``serve(sock)`` on the listening socket (see
    :func:`bind`); supervise them; the exit status.

    ``serve`` builds the worker's app and runs uvicorn on the socket until it is told to
    stop. Closes ``sock`` and removes ``metrics_dir`` at the end.
    """
    from prometheus_client import multiprocess

    parent = os.getpid()
    workers: list[int] = []
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for _ in range(count):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the worker; tested through the command
                _worker(sock, serve, parent)
            workers.append(pid)
        failed = False
        while workers:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid not in workers:
                continue
            workers.remove(pid)
            multiprocess.mark_process_dead(pid, metrics_dir)  # type: ignore[no-untyped-call]
            code = os.waitstatus_to_exitcode(status)
            if not stopping:
                # A worker died on its own: stop the rest; the manager restarts us.
                failed = True
                print(f"cdpflow collect: worker {pid} exited ({code}); stopping", file=sys.stderr)
                stop(signal.SIGTERM, None)
            elif code not in (0, -signal.SIGTERM):
                failed = True
        return 1 if failed else 0
    finally:
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _stop_with_parent(parent: int) -> None:  # pragma: no cover - in the worker
    """SIGTERM when the parent dies, even killed (Linux ``PR_SET_PDEATHSIG``): workers
    are not left serving the port unsupervised."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the call
        os.kill(os.getpid(), signal.SIGTERM)


def _worker(
    sock: socket.socket, serve: Callable[[socket.socket], None], parent: int
) -> None:  # pragma: no cover
    """The forked worker: its own process group (a terminal's Ctrl-C reaches the parent,
    which passes it on once), default signal handling until uvicorn installs its own."""
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handlers
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _stop_with_parent(parent)
        os.setpgid(0, 0)
        serve(sock)
        code = 0
    except BaseException:  # noqa: BLE001 - report it, then leave without the parent's cleanup
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
