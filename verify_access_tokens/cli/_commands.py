"""The commands ``demo``, ``emulator``, ``create`` and ``fetch``.

``enroll`` and ``serve`` have their own modules; the emulator fault flags are shared with
``serve --emulator``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator

from .. import ConfigurationError, VerifyClient
from ..emulator import Faults, VerifyEmulator
from ._listen import check_port
from ._output import emulator_printout, print_token

EXIT_OK, EXIT_API_ERROR, EXIT_USAGE = 0, 1, 2


def _client(args: argparse.Namespace) -> VerifyClient:
    return VerifyClient(base_url=args.base_url)


def _service_sid(args: argparse.Namespace) -> str:
    """SERVICE_SID, else ``$VERIFY_SERVICE_SID`` (as ``serve`` does)."""
    sid: str | None = args.service_sid or os.environ.get("VERIFY_SERVICE_SID") or None
    if sid is None:
        raise ConfigurationError("SERVICE_SID", "missing: pass it or set VERIFY_SERVICE_SID")
    return sid


async def create_command(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        token = await client.access_tokens.create(
            _service_sid(args),
            identity=args.identity,
            factor_type=args.factor_type,
            factor_friendly_name=args.friendly_name,
            ttl=args.ttl,
        )
    print_token(token, args, sys.stdout)
    return EXIT_OK


async def fetch_command(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        token = await client.access_tokens.fetch(_service_sid(args), args.sid)
    print_token(token, args, sys.stdout)
    return EXIT_OK


def faults_from_args(args: argparse.Namespace) -> Faults:
    try:
        return Faults(
            max_concurrent=args.max_concurrent,
            concurrency_retry_after=args.concurrency_retry_after,
            reject_first=args.reject_first,
            rate_limit=args.server_rate_limit,
            error_rate=args.error_rate,
            drop_rate=args.drop_rate,
            lost_response_rate=args.lost_response_rate,
            latency=args.latency,
        )
    except ValueError as exc:
        raise ConfigurationError("emulator faults", str(exc)) from None


@contextlib.asynccontextmanager
async def _listening(emulator: VerifyEmulator, args: argparse.Namespace) -> AsyncIterator[None]:
    """The emulator, started.

    A port that is busy (or an address not on this machine) is a one-line settings error naming
    the flag.
    """
    try:
        await emulator.start()
    except OSError as exc:
        await emulator.stop()
        raise ConfigurationError(
            "--port", f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    try:
        yield
    finally:
        await emulator.stop()


async def emulator_command(args: argparse.Namespace) -> int:
    check_port(args.port)
    emulator = VerifyEmulator(
        host=args.host,
        port=args.port,
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        service_sids=[args.service_sid] if args.service_sid else None,
        faults=faults_from_args(args),
        seed=args.seed,
    )
    async with _listening(emulator, args):
        print(emulator_printout(emulator), flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
    return EXIT_OK  # pragma: no cover - only reached when the wait is cancelled


async def demo_command(args: argparse.Namespace) -> int:
    """Enroll many identities concurrently against an in-process emulator, then fetch some."""
    async with (
        VerifyEmulator(faults=faults_from_args(args), seed=args.seed) as emulator,
        emulator.client() as client,
    ):
        identities = [f"demo-user-{i:06d}" for i in range(args.identities)]
        print(
            f"Emulator at {emulator.base_url}; enrolling {len(identities)} identities "
            f"with concurrency {args.concurrency} ...",
            flush=True,
        )
        batch = client.access_tokens.create_many(
            emulator.service_sid, identities, concurrency=args.concurrency, ttl=300
        )
        created = [result.access_token async for result in batch if result.access_token is not None]
        sample = created[:: max(1, len(created) // 20)]
        fetched = await asyncio.gather(
            *(client.access_tokens.fetch(t.service_sid, t.sid) for t in sample)
        )
        matches = sum(f == t for f, t in zip(fetched, sample, strict=True))
    summary = batch.summary
    failed = summary.failed_total
    print(
        f"created:  {summary.succeeded}/{len(identities)} tokens in {summary.elapsed:.2f}s "
        f"({summary.rate:.0f} req/s, {summary.retried} retries)"
    )
    kinds = ", ".join(f"{n} {name}" for name, n in summary.failed.most_common())
    print(f"errors:   {failed}" + (f": {kinds}" if failed else ""))
    print(f"fetched:  {len(fetched)} back, {matches} identical to what create returned")
    counters = emulator.counters
    print(
        f"emulator: {counters.requests} requests, {counters.tokens_created} tokens created, "
        f"{counters.faults_injected} faults injected"
    )
    if created:
        print(f"example:  {created[0]!r}")
    if not counters.faults_injected:
        print(
            "try:      demo --max-concurrent 20 --latency 0.05  (Twilio's in-flight limit), or "
            "--server-rate-limit 100 --drop-rate 0.02  (retries, lost answers)"
        )
    return EXIT_OK if not failed else EXIT_API_ERROR


def concurrency(text: str) -> int | str:
    """``--concurrency``: ``adaptive`` or a whole number >= 1 (checked by ``create_many``)."""
    if text == "adaptive":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'adaptive' or a number, not {text!r}") from None


CONCURRENCY_HELP = (
    "requests in flight at once: 'adaptive' finds the account's free concurrency from Twilio's "
    "429s (at most the pool's 100), or a number"
)


def _latency(text: str) -> float | tuple[float, float]:
    """``0.2`` (fixed) or ``0.05-0.3`` (uniform in that range, from the seeded RNG)."""
    low, dash, high = text.partition("-")
    try:
        return (float(low), float(high)) if dash else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seconds (0.2) or a range (0.05-0.3), not {text!r}"
        ) from None


def add_fault_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--max-concurrent",
        type=int,
        help="requests in flight the emulator allows across all connections, as Twilio limits "
        "an account; beyond it, it answers 429 (code 20429, no Retry-After)",
    )
    parser.add_argument(
        "--concurrency-retry-after",
        type=float,
        help="Retry-After seconds on --max-concurrent's 429s (default: none, as Twilio)",
    )
    parser.add_argument(
        "--reject-first",
        type=int,
        default=0,
        help="answer the first N requests 429 (isolated 429s, to watch a client recover)",
    )
    parser.add_argument(
        "--server-rate-limit",
        type=float,
        help="requests/s the emulator allows (Verify's per-service limits); beyond it, 429",
    )
    parser.add_argument(
        "--error-rate", "--fault-rate", type=float, default=0.0, help="fraction answered 503"
    )
    parser.add_argument("--drop-rate", type=float, default=0.0, help="fraction of dropped conns")
    parser.add_argument(
        "--lost-response-rate",
        type=float,
        default=0.0,
        help="fraction of creates that succeed but whose answer is lost",
    )
    parser.add_argument(
        "--latency",
        type=_latency,
        default=0.0,
        help="seconds added per request, or a range such as 0.05-0.3 (uniform, seeded)",
    )
    parser.add_argument("--seed", type=int, help="the same account, token and service on every "
                        "start, and reproducible faults and sids")  # fmt: skip
