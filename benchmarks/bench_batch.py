"""Batch enrollment figures against an emulator in a separate process.

    python benchmarks/bench_batch.py [--quick] [--adaptive-only] [--identities 1500 10000]

1. identities/s of ``create_many`` at several concurrencies;
2. peak RSS of a client process streaming 10 k and 100 k identities from a generator (each in a
   fresh process, so the figures do not mix): flat in N means memory does not grow with input;
3. ``rate_limit="adaptive"`` (concurrency 32) against an emulator limited to 20, 200 and 2000
   req/s (a fresh emulator process each): goodput (identities created per second / the limit,
   ramp-up included) and the share of attempts answered 429; and, with no server limit, its
   identities/s next to ``rate_limit=None`` measured in the same run.
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


async def enroll(
    server: Server, n: int, concurrency: int, rate_limit: object, prefix: str
) -> dict[str, float]:
    async with VerifyClient(
        server.account_sid, server.auth_token, base_url=server.base_url, max_retries=4
    ) as client:
        started = time.perf_counter()
        batch = client.access_tokens.create_many(
            server.service_sid,
            identities(n, prefix),
            concurrency=concurrency,
            rate_limit=rate_limit,  # type: ignore[arg-type]
        )
        ok = attempts = 0
        async for result in batch:
            ok += result.ok
            attempts += result.attempts
        elapsed = time.perf_counter() - started
        limited = batch.pacer.rate_limited if batch.pacer is not None else 0
        return {
            "n": n,
            "ok": ok,
            "elapsed": elapsed,
            "rate": n / elapsed,
            "attempts": attempts,
            "rate_limited": limited,
            "failed": dict(batch.summary.failed),
        }


def child_rss(server: Server, n: int) -> dict[str, float]:
    """Run one streamed batch in a fresh process; return its figures and peak RSS."""
    code = (
        "import asyncio, json, resource, sys; sys.path.insert(0, 'benchmarks');"
        "from _server import Server; import bench_batch as b;"
        f"s = Server(**{server.__dict__!r});"
        f"r = asyncio.run(b.enroll(s, {n}, 64, None, 'rss{n}'));"
        "r['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024;"
        "print(json.dumps(r))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def adaptive(limits: list[float], sizes: list[int], concurrency: int) -> None:
    print(f"\n3. rate_limit='adaptive' at concurrency {concurrency}, emulator limited to R req/s")
    print(
        f"{'limit R':>8} {'identities':>10} {'ok':>6} {'seconds':>8} {'created/s':>9} "
        f"{'goodput':>8} {'429s':>5} {'attempts':>8} {'429 share':>9}"
    )
    for limit in limits:
        for n in sizes:
            with emulator_process("--server-rate-limit", str(limit)) as server:
                r = asyncio.run(enroll(server, n, concurrency, "adaptive", f"a{limit:.0f}"))
            print(
                f"{limit:>8.0f} {n:>10} {r['ok']:>6.0f} {r['elapsed']:>8.2f} {r['rate']:>9.0f} "
                f"{r['ok'] / r['elapsed'] / limit:>8.1%} {r['rate_limited']:>5.0f} "
                f"{r['attempts']:>8.0f} {r['rate_limited'] / r['attempts']:>9.2%}"
            )
            if r["failed"]:
                print(f"{'':>8} failed: {r['failed']}")
    print("\nno server limit: 'adaptive' vs None, alternating, best of 3")
    print(f"{'identities':>10} {'None /s':>8} {'adaptive /s':>11} {'ratio':>6}")
    with emulator_process() as server:
        for n in sizes:
            best = {"none": 0.0, "adaptive": 0.0}
            for run in range(3):
                for name, rate_limit in (("none", None), ("adaptive", "adaptive")):
                    prefix = f"n{name}{run}-{n}"
                    r = asyncio.run(enroll(server, n, concurrency, rate_limit, prefix))
                    best[name] = max(best[name], r["rate"])
            ratio = best["adaptive"] / best["none"]
            print(f"{n:>10} {best['none']:>8.0f} {best['adaptive']:>11.0f} {ratio:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (no 100 k)")
    parser.add_argument("--adaptive-only", action="store_true", help="only section 3")
    parser.add_argument(
        "--limits", type=float, nargs="*", default=[20.0, 200.0, 2000.0], help="emulator limits"
    )
    parser.add_argument(
        "--identities", type=int, nargs="*", default=[1500], help="batch sizes for section 3"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="for section 3")
    args = parser.parse_args()
    n = 2000 if args.quick else 5000
    print(f"Python {sys.version.split()[0]}; emulator in a separate process on 127.0.0.1")
    if not args.adaptive_only:
        with emulator_process() as server:
            print("\n1. create_many throughput")
            print(f"{'concurrency':>11} {'identities':>10} {'ok':>6} {'identities/s':>12}")
            for concurrency in (1, 8, 32, 128):
                r = asyncio.run(enroll(server, n, concurrency, None, f"c{concurrency}"))
                print(f"{concurrency:>11} {n:>10} {r['ok']:>6.0f} {r['rate']:>12.0f}")
            print("\n2. peak RSS streaming from a generator (fresh process each)")
            print(f"{'identities':>10} {'ok':>7} {'identities/s':>12} {'peak RSS MB':>11}")
            sizes = (2_000, 10_000) if args.quick else (10_000, 100_000)
            for size in sizes:
                r = child_rss(server, size)
                print(f"{size:>10} {r['ok']:>7.0f} {r['rate']:>12.0f} {r['peak_rss_mb']:>11.1f}")
    adaptive(args.limits, args.identities, args.concurrency)
    print(
        f"(client peak RSS of this process: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)"
    )


if __name__ == "__main__":
    main()
