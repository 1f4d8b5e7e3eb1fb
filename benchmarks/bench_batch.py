"""Batch enrollment figures against an emulator in a separate process.

    python benchmarks/bench_batch.py [--quick]

1. identities/s of ``create_many`` at several concurrencies;
2. peak RSS of a client process streaming 10 k and 100 k identities from a generator (each in a
   fresh process, so the figures do not mix): flat in N means memory does not grow with input.

Flow control against Twilio's in-flight limit is measured by ``bench_limits.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _server import Server, emulator_process

from verify_access_tokens import VerifyClient


def identities(n: int, prefix: str) -> Iterator[str]:
    return (f"{prefix}-{i:09d}" for i in range(n))


async def enroll(server: Server, n: int, concurrency: int, prefix: str) -> dict[str, float]:
    async with VerifyClient(
        server.account_sid, server.auth_token, base_url=server.base_url, max_retries=4
    ) as client:
        started = time.perf_counter()
        batch = client.access_tokens.create_many(
            server.service_sid,
            identities(n, prefix),
            concurrency=concurrency,
        )
        ok = attempts = 0
        async for result in batch:
            ok += result.ok
            attempts += result.attempts
        elapsed = time.perf_counter() - started
        return {
            "n": n,
            "ok": ok,
            "elapsed": elapsed,
            "rate": n / elapsed,
            "attempts": attempts,
            "rate_limited": client.flow.rate_limited,
            "failed": dict(batch.summary.failed),
        }


def child_rss(server: Server, n: int) -> dict[str, float]:
    """Run one streamed batch in a fresh process; return its figures and peak RSS."""
    code = (
        "import asyncio, json, resource, sys; sys.path.insert(0, 'benchmarks');"
        "from _server import Server; import bench_batch as b;"
        f"s = Server(**{server.__dict__!r});"
        f"r = asyncio.run(b.enroll(s, {n}, 64, 'rss{n}'));"
        "r['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024;"
        "print(json.dumps(r))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (no 100 k)")
    args = parser.parse_args()
    n = 2000 if args.quick else 5000
    print(f"Python {sys.version.split()[0]}; emulator in a separate process on 127.0.0.1")
    with emulator_process() as server:
        print("\n1. create_many throughput")
        print(f"{'concurrency':>11} {'identities':>10} {'ok':>6} {'identities/s':>12}")
        for concurrency in (1, 8, 32, 128):
            r = asyncio.run(enroll(server, n, concurrency, f"c{concurrency}"))
            print(f"{concurrency:>11} {n:>10} {r['ok']:>6.0f} {r['rate']:>12.0f}")
        print("\n2. peak RSS streaming from a generator (fresh process each)")
        print(f"{'identities':>10} {'ok':>7} {'identities/s':>12} {'peak RSS MB':>11}")
        sizes = (2_000, 10_000) if args.quick else (10_000, 100_000)
        for size in sizes:
            r = child_rss(server, size)
            print(f"{size:>10} {r['ok']:>7.0f} {r['rate']:>12.0f} {r['peak_rss_mb']:>11.1f}")
    print(
        f"(client peak RSS of this process: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)"
    )


if __name__ == "__main__":
    main()
