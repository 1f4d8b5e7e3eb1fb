"""Client CPU per request against raw aiohttp (and twilio-python), in one run.

    python benchmarks/bench_client.py [--requests 3000] [--concurrency 50] [--repeats 5]
                                      [--server fast|emulator]

N creates at a fixed concurrency against a stand-in server in its own process on 127.0.0.1,
through each contender in turn, the contenders interleaved ``--repeats`` times so that drift hits
all of them (after one untimed warm-up round). For each: the client process's CPU per request
(``process_time`` / requests) and requests/s, the median of the repeats; the ratios are the
median of the ratios within each round, so that load from other processes, which drifts from
round to round, hits both sides of a ratio alike. The server is
``fast`` (default: a minimal asyncio Protocol answering a canned 201 token, so the client is the
bottleneck) or ``emulator`` (the package's emulator: real checks, but ~2 000 req/s at most).
Contenders:

- raw aiohttp, ``data=dict``: what most hand-written code does (aiohttp builds a ``FormData``);
- raw aiohttp, lean: the form pre-encoded to ``bytes`` with its ``Content-Type``, the URL and
  headers built once: the least a client can do per request (the ratio base);
- this client: validation, retries machinery, strict parsing into ``AccessToken``, with
  OpenTelemetry's API installed and no provider configured (what an app that has not set one
  up pays), and the same client holding no instruments (as without the ``otel`` extra);
- twilio-python's async client (``AsyncTwilioHttpClient``), if ``twilio`` is installed, with its
  Verify domain pointed at the stand-in server.

Then import time of ``verify_access_tokens`` vs ``aiohttp``: the minimum of 30 fresh interpreters.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import yarl

sys.path.insert(0, str(Path(__file__).parent))
from _server import Server, emulator_process, fast_process

from verify_access_tokens import VerifyClient

Measure = Callable[[Server, int, int], Coroutine[Any, Any, tuple[float, float]]]


async def run_concurrently(
    n: int, concurrency: int, call: Callable[[int], Awaitable[object]]
) -> None:
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < n:
            index = next_index
            next_index += 1
            await call(index)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def timed(
    n: int, concurrency: int, call: Callable[[int], Awaitable[object]]
) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) for n calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    await run_concurrently(n, concurrency, call)
    return time.perf_counter() - wall, time.process_time() - cpu


def _basic(server: Server) -> str:
    return base64.b64encode(f"{server.account_sid}:{server.auth_token}".encode()).decode()


def _create_url(server: Server) -> str:
    return f"{server.base_url}/v2/Services/{server.service_sid}/AccessTokens"


def _form(i: int) -> dict[str, str]:
    return {"Identity": f"bench-user-{i:08d}", "FactorType": "push", "Ttl": "300"}


async def raw_dict(server: Server, n: int, concurrency: int) -> tuple[float, float]:
    headers = {"Authorization": f"Basic {_basic(server)}", "Accept": "application/json"}
    url = _create_url(server)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

        async def create(i: int) -> object:
            async with session.post(url, data=_form(i), headers=headers) as resp:
                return json.loads(await resp.read())

        return await timed(n, concurrency, create)


async def raw_lean(server: Server, n: int, concurrency: int) -> tuple[float, float]:
    headers = {
        "Authorization": f"Basic {_basic(server)}",
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    url = yarl.URL(_create_url(server))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

        async def create(i: int) -> object:
            body = urlencode(_form(i)).encode()
            async with session.post(url, data=body, headers=headers) as resp:
                return json.loads(await resp.read())

        return await timed(n, concurrency, create)


async def this_client(server: Server, n: int, concurrency: int) -> tuple[float, float]:
    return await _client(server, n, concurrency, telemetry=True)


async def without_telemetry(server: Server, n: int, concurrency: int) -> tuple[float, float]:
    """The client holding no OpenTelemetry instruments, as without the ``otel`` extra."""
    return await _client(server, n, concurrency, telemetry=False)


async def _client(
    server: Server, n: int, concurrency: int, *, telemetry: bool
) -> tuple[float, float]:
    async with VerifyClient(
        server.account_sid, server.auth_token, base_url=server.base_url
    ) as client:
        if not telemetry:
            client._transport.telemetry = None
        tokens = client.access_tokens

        async def create(i: int) -> object:
            return await tokens.create(server.service_sid, identity=f"bench-user-{i:08d}", ttl=300)

        return await timed(n, concurrency, create)


def twilio_version() -> str | None:
    try:
        import twilio  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    return str(twilio.__version__)


async def twilio_python(server: Server, n: int, concurrency: int) -> tuple[float, float]:
    from twilio.http.async_http_client import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
        AsyncTwilioHttpClient,
    )
    from twilio.rest import Client  # type: ignore[import-not-found,import-untyped,unused-ignore]

    http_client = AsyncTwilioHttpClient()  # made in the loop: its aiohttp session needs one
    client: Any = Client(server.account_sid, server.auth_token, http_client=http_client)
    client.verify.base_url = server.base_url  # the Verify domain, pointed at the stand-in
    tokens = client.verify.v2.services(server.service_sid).access_tokens
    try:

        async def create(i: int) -> object:
            return await tokens.create_async(
                identity=f"bench-user-{i:08d}", factor_type="push", ttl=300
            )

        return await timed(n, concurrency, create)
    finally:
        await http_client.close()


def import_time(module: str, runs: int = 30) -> float:
    """Wall ms of `import module` in a fresh interpreter, minus an empty interpreter.

    The minimum of many runs: start-up cost is deterministic, the noise only ever adds to it.
    """

    def best(code: str) -> float:
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            samples.append(time.perf_counter() - started)
        return min(samples)

    return (best(f"import {module}") - best("pass")) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--server", choices=["fast", "emulator"], default="fast")
    parser.add_argument("--only", help="run only the contenders whose name contains this")
    parser.add_argument("--import-runs", type=int, default=30)
    parser.add_argument("--uvloop", action="store_true", help="use uvloop if installed")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop  # type: ignore[import-not-found,unused-ignore]

        uvloop.install()
    contenders: dict[str, Measure] = {
        "raw aiohttp, data=dict": raw_dict,
        "raw aiohttp, lean (pre-encoded bytes, prebuilt URL/headers)": raw_lean,
        "this client": this_client,
        "this client, no telemetry": without_telemetry,
    }
    version = twilio_version()
    if version is None:
        print("note: twilio not installed (pip install twilio): twilio-python row skipped")
    else:
        contenders[f"twilio-python {version} async"] = twilio_python
    if args.only:
        contenders = {k: f for k, f in contenders.items() if args.only in k or "lean" in k}
    n = args.requests
    print(
        f"{n} creates at concurrency {args.concurrency}, median of {args.repeats} interleaved "
        f"runs; Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
        f"loop {'uvloop' if args.uvloop else 'asyncio'}; server: {args.server} (own process)"
    )
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    stand_in = fast_process() if args.server == "fast" else emulator_process()
    with stand_in as server:
        for measure in contenders.values():  # warm-up: imports, converters, code caches
            asyncio.run(measure(server, min(n, 500), args.concurrency))
        for _ in range(args.repeats):
            for name, measure in contenders.items():
                samples[name].append(asyncio.run(measure(server, n, args.concurrency)))
    cpu = {k: 1000 * statistics.median(c for _, c in v) / n for k, v in samples.items()}
    rps = {k: n / statistics.median(w for w, _ in v) for k, v in samples.items()}

    def ratio(a: str, b: str, index: int) -> float:
        """Median over rounds of sample a / sample b (index 0: wall time, 1: CPU)."""
        if a not in samples or b not in samples:
            return float("nan")
        pairs = zip(samples[a], samples[b], strict=True)
        return statistics.median(x[index] / y[index] for x, y in pairs)

    lean = next(k for k in contenders if "lean" in k)
    print()
    print("| contender | CPU ms/req | CPU vs lean | CPU vs data=dict | req/s |")
    print("|---|---:|---:|---:|---:|")
    for name in contenders:
        print(
            f"| {name} | {cpu[name]:.3f} | {ratio(name, lean, 1):.2f} | "
            f"{ratio(name, 'raw aiohttp, data=dict', 1):.2f} | {rps[name]:.0f} |"
        )
    twilio_name = f"twilio-python {version} async"
    if "this client, no telemetry" in samples:
        print(
            "\nOpenTelemetry installed, no provider, CPU per request vs none: "
            f"{ratio('this client', 'this client, no telemetry', 1):.3f}"
        )
    if "this client" in cpu and twilio_name in cpu:
        print(
            f"\nthroughput, this client / twilio-python: "
            f"{ratio(twilio_name, 'this client', 0):.2f}; CPU per request, twilio-python / "
            f"this client: {ratio(twilio_name, 'this client', 1):.2f}"
        )
    if args.import_runs <= 0:
        return
    aiohttp_ms = import_time("aiohttp", args.import_runs)
    ours_ms = import_time("verify_access_tokens", args.import_runs)
    print(
        f"\nimport time (min of {args.import_runs}): aiohttp {aiohttp_ms:.0f} ms, "
        f"verify_access_tokens {ours_ms:.0f} ms "
        f"(ratio {ours_ms / aiohttp_ms:.2f}; includes aiohttp)"
    )


if __name__ == "__main__":
    main()
