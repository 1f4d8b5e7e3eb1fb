"""Client overhead against raw aiohttp, in one run, against an emulator in another process.

    python benchmarks/bench_client.py [--requests 2000] [--repeats 3] [--uvloop]

For each concurrency it sends N creates then N fetches through (a) raw aiohttp posting the same
form with a precomputed Authorization header and decoding the JSON, and (b) this client
(validation, retries machinery, parsing into AccessToken). It prints requests/s and the client
process's CPU milliseconds per request for both, and the ratios (best of the repeats, the two
alternating so that drift hits both). Then import time of `verify_access_tokens` vs `aiohttp`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from _server import Server, emulator_process

from verify_access_tokens import VerifyClient


async def run_concurrently(
    n: int, concurrency: int, call: Callable[[int], Awaitable[object]]
) -> list[object]:
    results: list[object] = [None] * n
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < n:
            index = next_index
            next_index += 1
            results[index] = await call(index)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def raw_aiohttp(server: Server, n: int, concurrency: int) -> tuple[float, float]:
    auth = base64.b64encode(f"{server.account_sid}:{server.auth_token}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}", "Accept": "application/json"}
    create_url = f"{server.base_url}/v2/Services/{server.service_sid}/AccessTokens"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

        async def create(i: int) -> object:
            form = {"Identity": f"bench-user-{i:08d}", "FactorType": "push", "Ttl": "300"}
            async with session.post(create_url, data=form, headers=headers) as resp:
                return json.loads(await resp.read())

        async def fetch(i: int) -> object:
            async with session.get(f"{create_url}/{sids[i]}", headers=headers) as resp:
                return json.loads(await resp.read())

        wall, cpu = time.perf_counter(), time.process_time()
        created = await run_concurrently(n, concurrency, create)
        sids = [c["sid"] for c in created]  # type: ignore[index]
        await run_concurrently(n, concurrency, fetch)
        return time.perf_counter() - wall, time.process_time() - cpu


async def this_client(server: Server, n: int, concurrency: int) -> tuple[float, float]:
    async with VerifyClient(
        server.account_sid, server.auth_token, base_url=server.base_url
    ) as client:
        tokens = client.access_tokens

        async def create(i: int) -> object:
            return await tokens.create(server.service_sid, identity=f"bench-user-{i:08d}", ttl=300)

        async def fetch(i: int) -> object:
            return await tokens.fetch(server.service_sid, sids[i])

        wall, cpu = time.perf_counter(), time.process_time()
        created = await run_concurrently(n, concurrency, create)
        sids = [c.sid for c in created]  # type: ignore[attr-defined]
        await run_concurrently(n, concurrency, fetch)
        return time.perf_counter() - wall, time.process_time() - cpu


def import_time(module: str, runs: int = 30) -> float:
    """Wall ms of `import module` in a fresh interpreter, minus an empty interpreter.

    The minimum of many runs: start-up cost is deterministic, the noise only ever adds to it.
    """

    def timed(code: str) -> float:
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            samples.append(time.perf_counter() - started)
        return min(samples)

    return (timed(f"import {module}") - timed("pass")) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 8, 32])
    parser.add_argument("--uvloop", action="store_true", help="use uvloop if installed")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    n = args.requests
    print(
        f"{n} creates + {n} fetches per run, best of {args.repeats}; "
        f"Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
        f"loop {'uvloop' if args.uvloop else 'asyncio'}"
    )
    print()
    print(
        f"{'conc':>4} | {'raw req/s':>9} {'client req/s':>12} {'ratio':>6} | "
        f"{'raw CPU ms/req':>14} {'client CPU ms/req':>17} {'ratio':>6}"
    )
    with emulator_process() as server:
        for concurrency in args.concurrency:
            best = {"raw": (float("inf"), float("inf")), "client": (float("inf"), float("inf"))}
            for _ in range(args.repeats):
                for name, bench in (("raw", raw_aiohttp), ("client", this_client)):
                    wall, cpu = asyncio.run(bench(server, n, concurrency))
                    best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
            requests = 2 * n
            raw_rps, client_rps = requests / best["raw"][0], requests / best["client"][0]
            raw_cpu, client_cpu = (
                1000 * best["raw"][1] / requests,
                1000 * best["client"][1] / requests,
            )
            print(
                f"{concurrency:>4} | {raw_rps:>9.0f} {client_rps:>12.0f} "
                f"{client_rps / raw_rps:>6.2f} | {raw_cpu:>14.3f} {client_cpu:>17.3f} "
                f"{client_cpu / raw_cpu:>6.2f}"
            )
    aiohttp_ms = import_time("aiohttp")
    ours_ms = import_time("verify_access_tokens")
    print()
    print(
        f"import time: aiohttp {aiohttp_ms:.0f} ms, verify_access_tokens {ours_ms:.0f} ms "
        f"(ratio {ours_ms / aiohttp_ms:.2f}; includes aiohttp, attrs, cattrs)"
    )


if __name__ == "__main__":
    main()
