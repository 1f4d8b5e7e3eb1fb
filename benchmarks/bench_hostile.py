"""Peak memory and loop stalls of one `create` against hostile bodies (tests/helpers/hostile.py).

    python benchmarks/bench_hostile.py [--timeout 35] [--repeats 5]

For each body (200 MB with Content-Length, endless chunked, 1 MB gzip bomb of 1 GiB) it runs the
client in a fresh subprocess and prints the growth of its peak RSS (VmHWM) over the call, the
error raised, and the longest gap between ticks of a 1 ms heartbeat task (how long the event loop
was blocked). Each body is run ``--repeats`` times: the largest RSS growth and the smallest of the
longest stalls are printed (other processes on a busy machine only add to a stall). The server
runs in this process, so its memory is not counted. Set PYTHONPATH to measure another copy of
the package.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers.hostile import MIB, HostileServer, bomb, endless, huge

ACCOUNT_SID = "AC" + "a" * 32
SERVICE_SID = "VA" + "c" * 32
BODIES = {
    "200 MB body": lambda: huge(200 * MIB),
    "endless chunked": endless,
    "1 MB gzip bomb (1 GiB decoded)": lambda: bomb(1024 * MIB),
}


def vm_hwm_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")  # pragma: no cover


async def child(base_url: str, timeout: float) -> None:
    from verify_access_tokens import VerifyClient

    stall = 0.0
    running = True

    async def heartbeat() -> None:
        nonlocal stall
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            stall = max(stall, now - last)
            last = now

    async with VerifyClient(ACCOUNT_SID, "x" * 32, base_url=base_url, timeout=timeout) as c:
        import cattrs  # noqa: F401  (imported on first parse: keep it out of the delta)

        before = vm_hwm_kib()
        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0.01)
        start = time.perf_counter()
        try:
            await c.access_tokens.create(SERVICE_SID, identity="ff483d1ff591898a")
            error = "none"
        except Exception as exc:  # report whatever it was, bare or typed
            cause = getattr(exc, "cause", None)
            error = type(exc).__name__ + (f"({type(cause).__name__})" if cause else "")
        elapsed = time.perf_counter() - start
        running = False
        await beat
    print(
        json.dumps(
            {
                "growth_mb": (vm_hwm_kib() - before) / 1024,
                "error": error,
                "seconds": elapsed,
                "max_stall_ms": stall * 1000,
            }
        )
    )


async def main(timeout: float, repeats: int) -> None:
    for name, behaviour in BODIES.items():
        results = []
        for _ in range(repeats):
            async with HostileServer(behaviour()) as server:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--child",
                    server.base_url,
                    "--timeout",
                    str(timeout),
                    stdout=subprocess.PIPE,
                )
                out, _ = await proc.communicate()
                results.append(json.loads(out))
        growth = max(r["growth_mb"] for r in results)
        stall = min(r["max_stall_ms"] for r in results)
        seconds = max(r["seconds"] for r in results)
        errors = sorted({r["error"] for r in results})
        print(
            f"{name:32} peak RSS +{growth:7.1f} MB  longest loop stall {stall:7.1f} ms  "
            f"{seconds:5.2f} s  {', '.join(errors)}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--timeout", type=float, default=35.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child, args.timeout))
    else:
        asyncio.run(main(args.timeout, args.repeats))
