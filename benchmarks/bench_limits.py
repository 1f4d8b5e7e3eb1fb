"""Flow control against Twilio's real limit: requests in flight per account.

Starts the emulator in its own process with ``--max-concurrent N --latency L`` (so the
account's capacity is N / L identities per second), then runs K worker processes at once, each
a ``create_many`` through the public API with the defaults. Per row it prints goodput
(identities created per second over N / L), the share of attempts answered 429, identities
failed, Jain's fairness index across workers, and the ratio to an oracle run in the same
invocation: one process with ``concurrency=N``, told the limit. Rows of K > 1 processes also
give the ratio to K processes each told its share (``max_in_flight=N/K``): that reference pays
the same cost of K processes sharing this machine's cores, so the ratio is the controller's own.

    python benchmarks/bench_limits.py                 # every row, L = 0.2 s
    python benchmarks/bench_limits.py --only 1 --identities 3000

Loopback only; every run is bounded by its identities and a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server, emulator_process

from verify_access_tokens import VerifyClient


def _worker(
    server: Server, name: str, count: int, options: dict[str, Any], start_at: float, out: Any
) -> None:
    """One process: a batch (or single calls) of ``count`` identities; reports its figures."""

    async def run() -> dict[str, Any]:
        client_options = options.get("client", {})
        async with VerifyClient(
            server.account_sid,
            server.auth_token,
            base_url=server.base_url,
            **client_options,
        ) as client:
            await asyncio.sleep(max(0.0, start_at - time.time()))
            started = time.perf_counter()
            errors: collections.Counter[str] = collections.Counter()
            identities = [f"{name}-{i:08d}" for i in range(count)]
            if options.get("single_calls"):
                ok, failed, attempts = await _single_calls(client, server, identities, options)
            else:
                batch = client.access_tokens.create_many(
                    server.service_sid, identities, **options.get("batch", {})
                )
                ok = failed = attempts = 0
                async for result in batch:
                    attempts += max(result.attempts, 1)
                    if result.ok:
                        ok += 1
                    else:
                        failed += 1
                        errors[type(result.error).__name__] += 1
            elapsed = time.perf_counter() - started
            return {
                "ok": ok,
                "failed": failed,
                "attempts": attempts,
                "rate_limited": client.flow.rate_limited,
                "elapsed": elapsed,
                "errors": dict(errors),
            }

    out.put((name, asyncio.run(run())))


async def _single_calls(
    client: VerifyClient, server: Server, identities: list[str], options: dict[str, Any]
) -> tuple[int, int, int]:
    """A neighbour app: single ``create`` calls, ``concurrency`` at a time."""
    queue = list(reversed(identities))
    ok = failed = attempts = 0

    async def one() -> None:
        nonlocal ok, failed, attempts
        while queue:
            identity = queue.pop()
            try:
                answer = await client.access_tokens.create_with_http_info(
                    server.service_sid, identity=identity
                )
            except Exception as error:  # counted, as a user would see it
                failed += 1
                attempts += max(getattr(error, "attempts", 1), 1)
            else:
                ok += 1
                attempts += answer.attempts

    await asyncio.gather(*(one() for _ in range(options["concurrency"])))
    return ok, failed, attempts


def _run_workers(server: Server, plans: list[tuple[str, int, dict[str, Any]]]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start_at = time.time() + 2.0  # every worker imports and connects first, then all start
    processes = [
        context.Process(target=_worker, args=(server, name, count, options, start_at, out))
        for name, count, options in plans
    ]
    for process in processes:
        process.start()
    results = dict(out.get(timeout=600) for _ in processes)
    for process in processes:
        process.join(30)
    return results


def _jain(values: list[float]) -> float:
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values)) if values else 1.0


def _row(
    label: str,
    results: dict[str, Any],
    capacity: float,
    oracle: float | None,
    batch_names: Callable[[str], bool] = lambda name: True,
) -> dict[str, Any]:
    batch = {k: v for k, v in results.items() if batch_names(k)}
    elapsed = max(r["elapsed"] for r in batch.values())
    created = sum(r["ok"] for r in batch.values())
    rate = created / elapsed
    attempts = sum(r["attempts"] for r in results.values())
    limited = sum(r["rate_limited"] for r in results.values())
    shares = [r["ok"] / r["elapsed"] for r in batch.values()]
    row = {
        "scenario": label,
        "identities/s": round(rate, 1),
        "goodput": round(rate / capacity, 3),
        "429 share": round(limited / max(attempts, 1), 4),
        "failed": sum(r["failed"] for r in results.values()),
        "Jain": round(_jain(shares), 3),
        "vs oracle": None if oracle is None else round(rate / oracle, 3),
    }
    errors: collections.Counter[str] = collections.Counter()
    for r in results.values():
        errors.update(r.get("errors", {}))
    if errors:
        row["failed by"] = dict(errors)
    others = {k: v for k, v in results.items() if not batch_names(k)}
    if others:
        row["neighbour failed"] = sum(r["failed"] for r in others.values())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="L, seconds per request")
    parser.add_argument("--identities", type=int, default=4000, help="per scenario, in total")
    parser.add_argument("--only", type=int, action="append", help="run only these row numbers")
    args = parser.parse_args()
    latency, total = args.latency, args.identities
    rows: list[dict[str, Any]] = []

    def wanted(number: int) -> bool:
        return not args.only or number in args.only

    for number, n, workers in ((1, 100, 1), (2, 50, 1), (3, 100, 4), (4, 100, 8)):
        if not wanted(number):
            continue
        capacity = n / latency
        flags = ("--max-concurrent", str(n), "--latency", str(latency), "--seed", "1")
        with emulator_process(*flags) as server:
            oracle_results = _run_workers(
                server, [("oracle", total, {"batch": {"concurrency": n}})]
            )
        oracle = _row("oracle", oracle_results, capacity, None)["identities/s"]
        with emulator_process(*flags) as server:
            plans = [(f"w{i}", total // workers, {}) for i in range(workers)]
            results = _run_workers(server, plans)
        row = _row(f"{workers} process(es), defaults, N = {n}", results, capacity, oracle)
        if workers > 1:
            # A second reference: the same K processes each told its share (N / K, fixed). It
            # pays the same cost of K processes on this machine, so the ratio to it is the
            # controller's own.
            share = n // workers
            told = {"client": {"max_in_flight": share}, "batch": {"concurrency": share}}
            with emulator_process(*flags) as server:
                shares = _run_workers(
                    server, [(f"w{i}", total // workers, told) for i in range(workers)]
                )
            reference = _row("told shares", shares, capacity, None)["identities/s"]
            row["vs told shares"] = round(row["identities/s"] / reference, 3)
        rows.append(row)
    if wanted(5):
        n = 100
        flags = ("--max-concurrent", str(n), "--latency", str(latency), "--seed", "1")
        with emulator_process(*flags) as server:
            oracle_results = _run_workers(
                server, [("oracle", total, {"batch": {"concurrency": n - 40}})]
            )
        oracle = _row("oracle", oracle_results, (n - 40) / latency, None)["identities/s"]
        with emulator_process(*flags) as server:
            plans = [(f"w{i}", total // 4, {}) for i in range(4)]
            neighbour_count = int(total * 0.6)
            plans.append(("neighbour", neighbour_count, {"single_calls": True, "concurrency": 40}))
            results = _run_workers(server, plans)
        rows.append(
            _row(
                "neighbour (single creates at 40) + 4-process batch, N = 100",
                results,
                (n - 40) / latency,
                oracle,
                batch_names=lambda name: name != "neighbour",
            )
        )
    if wanted(6):
        flags = ("--latency", str(latency), "--seed", "1")
        with emulator_process(*flags) as server:
            unpaced = _run_workers(
                server,
                [("unpaced", total, {"client": {"max_in_flight": None}, "batch": {}})],
            )
        reference = _row("unpaced", unpaced, 100 / latency, None)["identities/s"]
        with emulator_process(*flags, "--reject-first", "1") as server:
            results = _run_workers(server, [("w0", total, {})])
        rows.append(
            _row("no server limit, one 429 on the first request", results, 100 / latency, reference)
        )
    print(f"L = {latency} s, {total} identities per scenario, python {sys.version.split()[0]}")
    for row in rows:
        print(json.dumps(row))
    if rows:
        print(f"median vs oracle: {statistics.median(r['vs oracle'] for r in rows):.3f}")


if __name__ == "__main__":
    main()
