"""A closed-loop TCP echo load generator, for the ``net_throughput`` workload.

``python -m benchmarks.tcp_load --port P --conns N --size B --seconds S [--warmup W]``
opens ``N`` connections to 127.0.0.1:P; each sends a ``B``-byte message, waits until
``B`` bytes have come back, and sends the next (closed loop: one message in flight per
connection, so the rate is what the server sustains). The first ``W`` seconds are not
counted. Prints one JSON object: messages echoed, messages per second, the CPU share
this process used (1.0: one core) and, with ``--watch-pid``, the server's over the same
window.

Stdlib only (and :func:`benchmarks.loadgen.cpu_seconds`), one thread, ``selectors``
(epoll) and non-blocking sockets with ``TCP_NODELAY``: per message one ``recv`` and one
``send``, a few microseconds of Python, so that on two cores the server under test, not
this process, is the limit. Its CPU share says whether that held.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import time

from benchmarks.loadgen import cpu_seconds


def run(
    port: int, conns: int, size: int, seconds: float, warmup: float = 0.0, watch: int = 0
) -> dict[str, float]:
    """The load; ``watch``: a process (the server) whose CPU share over the same window
    is returned too (``watched_cpu_share``; 0 when not given)."""
    payload = b"x" * size
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    got = [0] * conns  # bytes of the current echo received so far, per connection
    try:
        for i in range(conns):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            socks.append(s)
            sel.register(s, selectors.EVENT_READ, i)
        for s in socks:
            s.send(payload)
        start = time.perf_counter()
        counting_from = start + warmup
        deadline = counting_from + seconds
        cpu0 = watched0 = 0.0
        counted = 0
        counting = warmup <= 0
        if counting:
            cpu0, watched0 = time.process_time(), cpu_seconds(watch) if watch else 0.0
        while True:
            now = time.perf_counter()
            if now >= deadline:
                break
            if not counting and now >= counting_from:
                counting = True
                counting_from = now
                deadline = now + seconds
                cpu0, watched0 = time.process_time(), cpu_seconds(watch) if watch else 0.0
            for key, _ in sel.select(0.1):
                i = key.data
                s = socks[i]
                data = s.recv(65536)
                if not data:
                    raise ConnectionError("the server closed a connection")
                got[i] += len(data)
                while got[i] >= size:  # a whole echo is back: the next message
                    got[i] -= size
                    if counting:
                        counted += 1
                    s.send(payload)
        watched = cpu_seconds(watch) - watched0 if watch else 0.0
        elapsed = time.perf_counter() - counting_from
        cpu = time.process_time() - cpu0
    finally:
        for s in socks:
            sel.unregister(s)
            s.close()
        sel.close()
    return {
        "messages": counted,
        "msg_s": counted / elapsed,
        "cpu_share": cpu / elapsed,
        "watched_cpu_share": watched / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=0.0)
    parser.add_argument("--watch-pid", type=int, default=0, help="report this one's CPU too")
    args = parser.parse_args()
    result = run(args.port, args.conns, args.size, args.seconds, args.warmup, args.watch_pid)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
