"""Figures for the batch contract and enroll's crash safety (issue 10's closing note).

    python benchmarks/measure_batch_contract.py [--kills 3] [--identities 20000]

1. ``break`` and cancellation after 20 results with a slow consumer: how many results were
   yielded, kept in ``undelivered``, left ``unfinished``, against the tokens the emulator created;
2. ``stop()`` at concurrency 32 after 100 results: requests sent and results yielded after it;
3. ``enroll`` SIGKILLed at a random moment of a run at concurrency 32, then ``--resume``: how
   many identities were enrolled twice and how many resume reported as in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from verify_access_tokens.emulator import Faults, VerifyEmulator


def endless() -> Iterator[str]:
    return (f"user-{i:08d}" for i in itertools.count())


async def early_exit(how: str) -> str:
    async with VerifyEmulator() as emulator, emulator.client() as client:
        batch = client.access_tokens.create_many(emulator.service_sid, endless(), concurrency=32)
        yielded = 0

        async def consume() -> None:
            nonlocal yielded
            async with batch:
                async for _ in batch:
                    yielded += 1
                    await asyncio.sleep(0.01)
                    if how == "break" and yielded == 20:
                        break

        task = asyncio.create_task(consume())
        if how == "cancel":
            while yielded < 20:
                await asyncio.sleep(0.001)
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        created = emulator.counters.tokens_created
        kept = sum(r.access_token is not None for r in batch.undelivered)
        return (
            f"{how}: created {created}, yielded {yielded}, undelivered {len(batch.undelivered)} "
            f"(with token {kept}), unfinished {len(batch.unfinished)}; "
            f"created - yielded - undelivered-with-token = {created - yielded - kept} "
            f"(<= unfinished)"
        )


async def after_stop() -> str:
    async with VerifyEmulator() as emulator, emulator.client() as client:
        batch = client.access_tokens.create_many(emulator.service_sid, endless(), concurrency=32)
        yielded = requests_at_stop = 0
        async for _ in batch:
            yielded += 1
            if yielded == 100:
                batch.stop()
                requests_at_stop = emulator.counters.requests
        return (
            f"stop() at concurrency 32: {emulator.counters.requests - requests_at_stop} requests "
            f"sent and {yielded - 100} results yielded after it"
        )


def kill_and_resume(n: int, rng: random.Random) -> str:
    loop = asyncio.new_event_loop()
    emulator = VerifyEmulator(faults=Faults(latency=0.01))
    loop.run_until_complete(emulator.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    env = {**os.environ, "TWILIO_ACCOUNT_SID": emulator.account_sid,
           "TWILIO_AUTH_TOKEN": emulator.auth_token}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp, "ids.txt"), Path(tmp, "r.jsonl")
        source.write_text("".join(f"user-{i:08d}\n" for i in range(n)))
        argv = [sys.executable, "-m", "verify_access_tokens", "enroll", emulator.service_sid,
                str(source), "--out", str(out), "--base-url", emulator.base_url,
                "--concurrency", "32", "--quiet"]  # fmt: skip
        process = subprocess.Popen(argv, env=env, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.0, 6.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        done = subprocess.run([*argv, "--resume"], env=env, capture_output=True, text=True)
        reported = done.stderr.split("re-sent ")[1].split(" ")[0]
        statuses = {}
        for line in out.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            statuses[record["identity"]] = record["status"]
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    created = Counter(t.entity_identity for t in emulator.tokens.values())
    twice = sum(c > 1 for c in created.values())
    lost = n - sum(s == "created" for s in statuses.values())
    return f"SIGKILL + --resume: {lost} lost, {twice} enrolled twice, resume reported {reported}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--identities", type=int, default=20_000)
    args = parser.parse_args()
    print(asyncio.run(early_exit("break")))
    print(asyncio.run(early_exit("cancel")))
    print(asyncio.run(after_stop()))
    rng = random.Random(10)
    for _ in range(args.kills):
        print(kill_and_resume(args.identities, rng))


if __name__ == "__main__":
    main()
