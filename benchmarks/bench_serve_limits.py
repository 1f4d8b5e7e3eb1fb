"""A burst of sign-ups through ``serve`` against an account at Twilio's concurrency limit.

Starts ``serve --emulator --max-concurrent N --latency L`` in its own process, then sends
``--requests`` POSTs to its endpoint from ``--concurrency`` callers at once (more than the
account allows in flight), and prints how many answers were 429 or 5xx and the latency
percentiles. The client's limiter should hold the excess in the server instead of turning it
into 429s or failed enrollments.

    python benchmarks/bench_serve_limits.py            # 5 000 requests at concurrency 300
    python benchmarks/bench_serve_limits.py --requests 2000 --concurrency 200 \
        --error-rate 0.05 --drop-rate 0.02 --lost-response-rate 0.01   # an unreliable upstream

Loopback only; bounded by the request count and a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import socket
import statistics
import subprocess
import sys
import time


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _wait_listening(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError("serve did not start listening")


async def _burst(port: int, requests: int, concurrency: int) -> tuple[list[float], dict[int, int]]:
    import aiohttp

    url = f"http://127.0.0.1:{port}/access-token"
    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    queue = list(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def caller() -> None:
            while queue:
                i = queue.pop()
                started = time.perf_counter()
                async with session.post(url, data={"identity": f"burst-user-{i:08d}"}) as resp:
                    await resp.read()
                    statuses[resp.status] += 1
                latencies.append(time.perf_counter() - started)

        await asyncio.wait_for(asyncio.gather(*(caller() for _ in range(concurrency))), 600)
    return latencies, dict(statuses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=300)
    parser.add_argument("--max-concurrent", type=int, default=100, help="the account's limit")
    parser.add_argument("--latency", default="0.2", help="emulator seconds per request")
    faults = ("--error-rate", "--drop-rate", "--lost-response-rate")
    for fault in faults:
        parser.add_argument(fault, default="0", help="the emulator's, passed to serve")
    args = parser.parse_args()
    port = _free_port()
    command = [
        sys.executable, "-m", "verify_access_tokens", "serve", "--emulator", "--port", str(port),
        "--max-concurrent", str(args.max_concurrent), "--latency", args.latency,
        *(part for fault in faults
          for part in (fault, getattr(args, fault.lstrip("-").replace("-", "_")))),
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        asyncio.run(_wait_listening(port, 30))
        started = time.perf_counter()
        latencies, statuses = asyncio.run(_burst(port, args.requests, args.concurrency))
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(30)
    latencies.sort()
    bad = sum(count for status, count in statuses.items() if status == 429 or status >= 500)
    print(
        json.dumps(
            {
                "requests": args.requests,
                "concurrency": args.concurrency,
                "account limit": args.max_concurrent,
                "faults": {f: getattr(args, f.lstrip("-").replace("-", "_")) for f in faults},
                "statuses": statuses,
                "429 or 5xx": bad,
                "p50 ms": round(statistics.median(latencies) * 1000),
                "p99 ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000),
                "answers/s": round(len(latencies) / elapsed, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
