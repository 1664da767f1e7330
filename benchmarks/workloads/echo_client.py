"""The echo workload's client: a fixed load against 127.0.0.1, run in its own process.

Stdlib only and runnable as a script (``python echo_client.py --port P ...``) so that its
timing is never disturbed by the server's GIL or threads. ``--conns`` connections each
send a ``--size``-byte request every ``--interval-ms`` (one outstanding per connection)
for ``--seconds``, then stop; the run is bounded in count and time.

Latency is measured from the request's *intended* send time, so a stalled server is
charged for the requests it delayed (no coordinated omission). Requests still unanswered
``--grace`` seconds after the end are counted as ``unanswered``. Results go to ``--out``
as JSON (a file, not stdout: the parent polls without reading a pipe).
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import time


def run(
    port: int, conns: int, interval: float, seconds: float, size: int, grace: float
) -> dict[str, object]:
    sel = selectors.DefaultSelector()
    payload = b"x" * size
    socks = []
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
    start = time.perf_counter()
    end = start + seconds
    # per connection: intended send time of the outstanding request (None: idle), bytes in
    intended: list[float | None] = [None] * conns
    next_send = [start + i * interval / conns for i in range(conns)]
    received = [0] * conns
    latencies: list[float] = []
    sent = 0
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    try:
        while True:
            now = time.perf_counter()
            if now >= end + grace or (now >= end and all(t is None for t in intended)):
                break
            for i, s in enumerate(socks):
                if intended[i] is None and next_send[i] <= now and next_send[i] < end:
                    s.sendall(payload)
                    intended[i] = next_send[i]
                    next_send[i] += interval
                    sent += 1
            waits = [t - now for t, o in zip(next_send, intended, strict=True) if o is None]
            timeout = max(0.0, min([*waits, 0.005]))
            for key, _ in sel.select(timeout):
                i = key.data
                data = socks[i].recv(65536)
                if not data:
                    raise ConnectionError("server closed the connection")
                received[i] += len(data)
                if received[i] >= size and intended[i] is not None:
                    received[i] -= size
                    done = time.perf_counter()
                    latencies.append(done - intended[i])
                    intended[i] = None
                    # a late answer moves the next request to now, not into a burst
                    next_send[i] = max(next_send[i], done)
    finally:
        for s in socks:
            sel.unregister(s)
            s.close()
        sel.close()
    elapsed = min(time.perf_counter(), end + grace) - start
    return {
        "sent": sent,
        "answered": len(latencies),
        "unanswered": sent - len(latencies),
        "seconds": elapsed,
        "latencies_s": latencies,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--conns", type=int, default=4)
    parser.add_argument("--interval-ms", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--grace", type=float, default=1.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    result = run(
        args.port, args.conns, args.interval_ms / 1000, args.seconds, args.size, args.grace
    )
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
