"""Secrets never leak: logs, exception text, reprs and tracebacks; plus the logger's switch."""

from __future__ import annotations

import base64
import logging
import traceback

import pytest

from verify_access_tokens import OutcomeUnknownError, VerifyClient, VerifyError
from verify_access_tokens._core._log import configure_from_env, logger
from verify_access_tokens.emulator import Faults, VerifyEmulator

pytestmark = pytest.mark.sockets
IDENTITY = "abcdef0123456789"


def secrets_of(emulator: VerifyEmulator) -> list[str]:
    pairs = [
        (emulator.account_sid, emulator.auth_token),
        (emulator.api_key, emulator.api_secret),
    ]
    values = [emulator.auth_token, emulator.api_secret]
    values += [base64.b64encode(f"{u}:{p}".encode()).decode() for u, p in pairs]
    return values


async def test_no_secret_in_logs_errors_or_reprs(
    verify_emulator: VerifyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="verify_access_tokens")
    texts: list[str] = []
    jwts: list[str] = []
    clients = [
        verify_emulator.client(max_retries=2),
        verify_emulator.client(
            api_key=verify_emulator.api_key, api_secret=verify_emulator.api_secret, max_retries=2
        ),
    ]
    for client in clients:
        async with client:
            texts += [repr(client), str(client)]
            verify_emulator.set_faults(Faults())
            token = await client.access_tokens.create(
                verify_emulator.service_sid, identity=IDENTITY, factor_friendly_name="Ana's phone"
            )
            fetched = await client.access_tokens.fetch_with_http_info(token.service_sid, token.sid)
            jwts.append(token.token)
            texts += [repr(token), str(token), repr(fetched), str(fetched)]
            batch = client.access_tokens.create_many(
                verify_emulator.service_sid, [f"{IDENTITY}{i}" for i in range(5)]
            )
            async for result in batch:
                assert result.access_token is not None
                jwts.append(result.access_token.token)
                texts += [repr(result), str(result)]
            errors: list[BaseException] = []
            for faults in (Faults(error_rate=1.0), Faults(drop_rate=1.0), Faults(rate_limit=0.01)):
                verify_emulator.set_faults(faults)
                for call in (
                    client.access_tokens.fetch(token.service_sid, token.sid),
                    client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY),
                    client.access_tokens.create(verify_emulator.service_sid, identity="bad id"),
                ):
                    try:
                        await call
                    except VerifyError as err:
                        errors.append(err)
            assert any(isinstance(e, OutcomeUnknownError) for e in errors)
            for exc in errors:
                texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    async with verify_emulator.client(auth_token="wrong-" + verify_emulator.auth_token) as bad:
        with pytest.raises(VerifyError) as info:
            await bad.access_tokens.fetch(verify_emulator.service_sid, "YK" + "0" * 32)
        texts += [str(info.value), repr(info.value), repr(bad)]
    logged = [record.getMessage() for record in caplog.records]
    assert any("attempt" in line for line in logged)  # the log did say something useful
    assert any("request_id" in line for line in logged)
    haystack = "\n".join(texts + logged)
    for secret in secrets_of(verify_emulator) + jwts:
        assert secret not in haystack
    assert "Ana's phone" not in haystack  # PII stays out of reprs and logs as well


async def test_client_repr_and_traceback_locals_hide_authorization() -> None:
    client = VerifyClient("AC" + "1" * 32, "tok-very-secret", base_url="http://127.0.0.1:9")
    header = client._transport._headers["Authorization"]
    assert "tok-very-secret" not in repr(client)
    assert repr(header) == "'<redacted>'"
    assert repr(client._transport._headers).count("<redacted>") == 1
    assert header == "Basic " + base64.b64encode(b"AC" + b"1" * 32 + b":tok-very-secret").decode()


def test_log_switch_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    level = logger.level
    assert configure_from_env("") is None
    assert configure_from_env("verbose") is None
    monkeypatch.setenv("VERIFY_ACCESS_TOKENS_LOG", "debug")
    handler = configure_from_env()
    try:
        assert handler is not None
        assert handler in logger.handlers
        assert logger.level == logging.DEBUG
    finally:
        logger.removeHandler(handler)  # type: ignore[arg-type]
        logger.setLevel(level)


def test_logger_is_quiet_by_default() -> None:
    assert logger.name == "verify_access_tokens"
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
