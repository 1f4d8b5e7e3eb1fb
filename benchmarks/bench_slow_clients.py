"""Slow clients against ``serve``: do legitimate requests still get through, are slow ones closed?

    python benchmarks/bench_slow_clients.py [--slow-headers 3000] [--slow-bodies 3000]

Starts ``verify-access-tokens serve --emulator`` in a process limited to ``--nofile`` (4096)
open files, with its default limits (headers 10 s, body 10 s, connections what the open-file limit
allows). Then, from this process, on 127.0.0.1 only:

- ``--slow-headers`` connections send a request line and one header, then one more byte every
  ``--interval`` seconds, never finishing their headers;
- ``--slow-bodies`` connections send complete headers announcing a 1 000-byte form body, then
  one byte of it every ``--interval`` seconds;
- a separate prober process sends a legitimate ``POST /access-token`` on a new connection every
  ``--probe-every`` seconds, for the whole run, and reports each answer's status and latency.

Reports the probes' p50/p99/max latency and statuses, and for each slow connection how long
the server kept it: from connect (slow headers) or from the end of its headers (slow bodies) to
the server's close. Bounded: every connection is opened once, and the run lasts
``--duration`` seconds at most.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _limit_files(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


async def _slow(port: int, first: bytes, interval: float, deadline: float) -> tuple[str, float]:
    """Open, send ``first``, trickle; the seconds until the server closed (or why not)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
    except (OSError, TimeoutError):
        return "connect failed", 0.0
    writer.write(first)
    started = time.monotonic()  # connected (headers sent with it, for a slow body)
    closed = asyncio.ensure_future(reader.read(65536))
    try:
        while time.monotonic() < deadline:
            done, _ = await asyncio.wait({closed}, timeout=interval)
            if done:
                try:
                    data = closed.result()
                except OSError:
                    data = b""
                if data:  # an answer (503 past the cap): keep reading until the close
                    closed = asyncio.ensure_future(reader.read(65536))
                    continue
                return "closed", time.monotonic() - started
            with contextlib.suppress(OSError):
                writer.write(b"a")
        return "still open", time.monotonic() - started
    finally:
        closed.cancel()
        writer.close()


def _probe(url: str, every: float, duration: float) -> None:
    """The prober process: one legitimate request on a new connection every ``every`` s."""
    results = []
    end = time.monotonic() + duration
    while time.monotonic() < end:
        began = time.monotonic()
        try:
            with httpx.Client(base_url=url, timeout=30) as http:
                status = http.post("/access-token", data={"identity": "user-1"}).status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        results.append((status, time.monotonic() - began))
        time.sleep(max(0.0, every - (time.monotonic() - began)))
    print(json.dumps(results))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _attack(args: argparse.Namespace, port: int) -> dict[str, list[tuple[str, float]]]:
    deadline = time.monotonic() + args.duration
    header = b"POST /access-token HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    body = (
        b"POST /access-token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
        b"identity="
    )
    tasks: dict[str, list[asyncio.Future[tuple[str, float]]]] = {"headers": [], "bodies": []}
    for i in range(max(args.slow_headers, args.slow_bodies)):
        if i < args.slow_headers:
            tasks["headers"].append(
                asyncio.ensure_future(_slow(port, header, args.interval, deadline))
            )
        if i < args.slow_bodies:
            tasks["bodies"].append(
                asyncio.ensure_future(_slow(port, body, args.interval, deadline))
            )
        if i % 100 == 99:
            await asyncio.sleep(0)  # let connects proceed
    return {kind: list(await asyncio.gather(*group)) for kind, group in tasks.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow-headers", type=int, default=3000)
    parser.add_argument("--slow-bodies", type=int, default=3000)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between bytes")
    parser.add_argument("--nofile", type=int, default=4096, help="the server's open-file limit")
    parser.add_argument("--duration", type=float, default=25.0, help="the run's length")
    parser.add_argument("--probe-every", type=float, default=0.1)
    parser.add_argument("--attacker-nice", type=int, default=10, help="this process's nice")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--show-server-log", action="store_true")
    args = parser.parse_args()
    if args.probe:
        _probe(args.probe, args.probe_every, args.duration)
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.slow_headers + args.slow_bodies + 256
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, need)), hard))

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "verify_access_tokens", "serve", "--emulator"]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: _limit_files(args.nofile),
    )
    try:
        with httpx.Client(base_url=url) as http:
            while True:
                try:
                    if http.get("/access-token").status_code == 405:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
        prober = subprocess.Popen(
            [
                *(sys.executable, __file__, "--probe", url),
                *("--duration", str(args.duration), "--probe-every", str(args.probe_every)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        # The attacker would be on other machines: here it yields the CPU to the server and
        # the prober (same machine, loopback), so the figures are the server's.
        os.nice(args.attacker_nice)
        began = time.monotonic()
        results = asyncio.run(_attack(args, port))
        elapsed = time.monotonic() - began
        probes = json.loads(prober.communicate(timeout=args.duration + 60)[0])
        server_cpu = _cpu_seconds(server.pid)
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: the server logs its guard's summary
        _, err = server.communicate(timeout=60)

    latencies = [seconds for _, seconds in probes]
    statuses: dict[str, int] = {}
    for status, _ in probes:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    print(
        f"server: serve --emulator, ulimit -n {args.nofile}; attack ran {elapsed:.1f} s; "
        f"server CPU {server_cpu:.1f} s, this process {time.process_time():.1f} s"
    )
    print(
        f"legitimate requests: {len(probes)}, statuses {statuses}, latency p50 "
        f"{statistics.median(latencies) * 1000:.0f} ms, p99 "
        f"{_percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )
    for kind, limit in (("headers", 10.0), ("bodies", 10.0)):
        outcomes = results[kind]
        kept = [seconds for outcome, seconds in outcomes if outcome == "closed"]
        counts: dict[str, int] = {}
        for outcome, _ in outcomes:
            counts[outcome] = counts.get(outcome, 0) + 1
        late = sum(1 for seconds in kept if seconds > limit + 1)
        print(
            f"slow {kind}: {len(outcomes)} opened, {counts}; held p50 "
            f"{statistics.median(kept):.2f} s, max {max(kept):.2f} s; "
            f"closed later than limit + 1 s: {late}"
        )
    summary = [line for line in err.splitlines() if "slow-client guard" in line]
    print("server:", summary[-1].split(": ", 1)[-1] if summary else "no guard summary")
    print(f"server errors logged: {err.count('ERROR')}, tracebacks: {err.count('Traceback')}")
    if args.show_server_log:
        print(err[-6000:])


if __name__ == "__main__":
    main()
