"""Enroll every identity in a file (one per line), then summarise.

    python examples/batch_enroll.py [IDENTITIES_FILE]

Runs against a local emulator that limits requests in flight as Twilio limits an account (20
here, and 20 ms per answer: the client's limiter finds the limit from the 429s) unless
TWILIO_AUTH_TOKEN and VERIFY_SERVICE_SID are set. Without a file, it enrolls 200 made-up
identities.
"""

import asyncio
import os
import sys
from collections.abc import Iterator

from verify_access_tokens import VerifyClient
from verify_access_tokens.emulator import Faults, VerifyEmulator


def read_identities(path: str | None) -> Iterator[str]:
    """Lazily, so a file of millions of lines is never held in memory."""
    if path is None:
        yield from (f"example-user-{i:06d}" for i in range(200))
        return
    with open(path, encoding="utf-8") as lines:
        yield from (line.strip() for line in lines if line.strip())


async def enroll_all(client: VerifyClient, service_sid: str, path: str | None) -> int:
    batch = client.access_tokens.create_many(service_sid, read_identities(path), ttl=300)
    async for result in batch:  # exactly one result per identity, as each finishes
        if result.error is not None:
            print(f"{result.identity}: {type(result.error).__name__}: {result.error}")
    summary = batch.summary
    print(
        f"enrolled {summary.succeeded}, failed {summary.failed_total} "
        f"{dict(summary.failed)}, retries {summary.retried}, "
        f"{summary.elapsed:.1f}s at {summary.rate:.0f}/s"
    )
    return summary.failed_total


async def main(path: str | None) -> int:
    if "TWILIO_AUTH_TOKEN" in os.environ:
        async with VerifyClient() as client:
            return await enroll_all(client, os.environ["VERIFY_SERVICE_SID"], path)
    emulator = VerifyEmulator(faults=Faults(max_concurrent=20, latency=0.02))
    async with emulator, emulator.client() as client:
        return await enroll_all(client, emulator.service_sid, path)


if __name__ == "__main__":
    sys.exit(1 if asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None)) else 0)
