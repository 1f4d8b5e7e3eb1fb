"""Forward proxies over real sockets: ``proxy=``, ``proxy_auth=``, ``trust_env=True``, NO_PROXY,
and ``~/.netrc`` never replacing the client's own credentials."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from helpers.constants import ACCOUNT_SID, AUTH_TOKEN
from helpers.forward_proxy import ForwardProxy
from helpers.paths import TESTS, TLS

from verify_access_tokens import (
    APIConnectionError,
    APIStatusError,
    ConfigurationError,
    VerifyClient,
)
from verify_access_tokens.emulator import VerifyEmulator

pytestmark = pytest.mark.sockets
IDENTITY = "0b9a1c5e-3f1d-4c1a-9a7e-2f5d8c6b4a31"
PROXY_SECRET = "pr0xy-s3cret"


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


async def round_trip(client: VerifyClient, emulator: VerifyEmulator) -> None:
    async with client:
        token = await client.access_tokens.create(emulator.service_sid, identity=IDENTITY)
        assert await client.access_tokens.fetch(token.service_sid, token.sid) == token


@pytest.mark.parametrize("style", ["in the URL", "proxy_auth"])
async def test_requests_go_through_an_authenticating_proxy(
    verify_emulator: VerifyEmulator, style: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")  # every logger, aiohttp's included
    async with ForwardProxy(credentials=basic("alice", PROXY_SECRET)) as proxy:
        if style == "in the URL":
            kwargs: dict[str, object] = {
                "proxy": f"http://alice:{PROXY_SECRET}@127.0.0.1:{proxy.port}"
            }
        else:
            kwargs = {"proxy": proxy.url, "proxy_auth": ("alice", PROXY_SECRET)}
        client = verify_emulator.client(**kwargs)
        assert client.proxy == proxy.url
        assert PROXY_SECRET not in repr(client)
        assert f"proxy='{proxy.url}'" in repr(client)
        await round_trip(client, verify_emulator)
    assert proxy.counters.forwarded == 2  # the create and the fetch, absolute-URI form
    assert proxy.counters.refused == 0
    assert proxy.request_lines[0].startswith(f"POST {verify_emulator.base_url}/v2/Services/")
    assert proxy.proxy_authorizations == [basic("alice", PROXY_SECRET)] * 2
    # The client's own credentials reach the server; the proxy's stay with the proxy.
    own = basic(verify_emulator.account_sid, verify_emulator.auth_token)
    assert [h["authorization"] for h in proxy.forwarded_headers] == [own, own]
    assert verify_emulator.counters.tokens_created == 1
    assert verify_emulator.counters.unauthorized == 0
    assert "request_id=RQ" in caplog.text
    assert PROXY_SECRET not in caplog.text


async def test_proxy_refusal_is_a_status_error_without_the_proxy_secret(
    verify_emulator: VerifyEmulator,
) -> None:
    async with ForwardProxy(credentials=basic("alice", "right")) as proxy:
        client = verify_emulator.client(proxy=proxy.url, proxy_auth=("alice", PROXY_SECRET))
        async with client:
            with pytest.raises(APIStatusError) as info:
                await client.access_tokens.fetch(verify_emulator.service_sid, "YK" + "0" * 32)
    assert info.value.status == 407
    assert proxy.counters.refused == 1
    assert verify_emulator.counters.requests == 0
    for text in (str(info.value), repr(info.value)):
        assert PROXY_SECRET not in text
        assert base64.b64encode(f"alice:{PROXY_SECRET}".encode()).decode() not in text


async def test_unreachable_proxy_is_a_connection_error_without_the_secret(
    verify_emulator: VerifyEmulator, unused_tcp_port: int
) -> None:

    client = verify_emulator.client(
        proxy=f"http://alice:{PROXY_SECRET}@127.0.0.1:{unused_tcp_port}", max_retries=0
    )
    async with client:
        with pytest.raises(APIConnectionError) as info:
            await client.access_tokens.fetch(verify_emulator.service_sid, "YK" + "0" * 32)
    assert info.value.request_sent is False
    assert PROXY_SECRET not in str(info.value)
    assert PROXY_SECRET not in repr(info.value)


async def test_trust_env_uses_http_proxy_and_no_proxy_bypasses_it(
    verify_emulator: VerifyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        await round_trip(verify_emulator.client(), verify_emulator)  # trust_env is opt-in
        assert proxy.counters.forwarded == 0
        through = verify_emulator.client(trust_env=True)
        assert through.proxy == proxy.url
        await round_trip(through, verify_emulator)
        assert proxy.counters.forwarded == 2
        monkeypatch.setenv("NO_PROXY", "example.com, 127.0.0.1")
        direct = verify_emulator.client(trust_env=True)
        assert direct.proxy is None
        await round_trip(direct, verify_emulator)
        assert proxy.counters.forwarded == 2  # unchanged: NO_PROXY went around the proxy
    assert verify_emulator.counters.tokens_created == 3


async def test_netrc_never_replaces_the_clients_credentials(
    verify_emulator: VerifyEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """aiohttp's own trust_env would read ~/.netrc for the target host (and refuse to combine it
    with an Authorization header) and for the proxy host; this client reads neither."""
    netrc = tmp_path / ".netrc"
    netrc.write_text(
        "machine 127.0.0.1 login mallory password netrc-secret\n"
        "machine localhost login mallory password netrc-secret\n"
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    async with ForwardProxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        await round_trip(verify_emulator.client(trust_env=True), verify_emulator)
        monkeypatch.setenv("no_proxy", "*")
        await round_trip(verify_emulator.client(trust_env=True), verify_emulator)
    assert proxy.counters.forwarded == 2
    assert proxy.proxy_authorizations == [None, None]  # no proxy credentials from netrc either
    assert verify_emulator.counters.unauthorized == 0
    assert verify_emulator.counters.tokens_created == 2


async def test_with_options_siblings_share_the_proxy(verify_emulator: VerifyEmulator) -> None:
    async with ForwardProxy() as proxy:
        client = verify_emulator.client(proxy=proxy.url)
        sibling = client.with_options(max_retries=0)
        assert sibling.proxy == proxy.url
        async with client:
            await round_trip(sibling, verify_emulator)
    assert proxy.counters.forwarded == 2


@pytest.mark.parametrize(
    ("kwargs", "env", "setting"),
    [
        ({"proxy": "socks5://127.0.0.1:1080"}, {}, "proxy"),
        ({"proxy": f"https://u:{PROXY_SECRET}@127.0.0.1:3128"}, {}, "proxy"),
        ({"proxy": "127.0.0.1:3128"}, {}, "proxy"),
        ({"proxy": "http://127.0.0.1:3128/some/path"}, {}, "proxy"),
        ({"proxy": 3128}, {}, "proxy"),
        ({"proxy_auth": ("u", PROXY_SECRET)}, {}, "proxy_auth"),
        (
            {"proxy": f"http://u:{PROXY_SECRET}@127.0.0.1:3128", "proxy_auth": ("u", "p")},
            {},
            "proxy_auth",
        ),
        ({"proxy": "http://127.0.0.1:3128", "proxy_auth": "u:p"}, {}, "proxy_auth"),
        ({"proxy": "http://127.0.0.1:3128", "proxy_auth": ("u:x", "p")}, {}, "proxy_auth"),
        ({"trust_env": True}, {"HTTPS_PROXY": f"ftp://u:{PROXY_SECRET}@x"}, "HTTPS_PROXY"),
        ({"trust_env": True}, {"https_proxy": "nonsense"}, "https_proxy"),
        # Plain http leaves the machine only through a loopback proxy.
        ({"base_url": "http://127.0.0.1:8099", "proxy": "http://10.0.0.1:3128"}, {}, "proxy"),
        (
            {"base_url": "http://127.0.0.1:8099", "trust_env": True},
            {"HTTP_PROXY": "http://proxy.example:3128"},
            "HTTP_PROXY",
        ),
        ({"proxy": "http://127.0.0.1:3128", "session": "lent"}, {}, "session"),
        ({"trust_env": True, "session": "lent"}, {}, "session"),
    ],
)
async def test_bad_proxy_settings_are_refused_without_echoing_secrets(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object], env: dict[str, str], setting: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    async with aiohttp.ClientSession() as session:
        if kwargs.get("session") == "lent":
            kwargs["session"] = session
        with pytest.raises(ConfigurationError) as info:
            VerifyClient(ACCOUNT_SID, AUTH_TOKEN, **kwargs)  # type: ignore[arg-type]
    assert info.value.setting == setting
    assert PROXY_SECRET not in str(info.value)
    assert PROXY_SECRET not in repr(info.value)


def test_trust_env_reads_the_variable_of_the_base_urls_scheme(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://plain.example:3128")
    monkeypatch.setenv("HTTPS_PROXY", f"http://u:{PROXY_SECRET}@corp.example:3128")
    client = VerifyClient(ACCOUNT_SID, AUTH_TOKEN, trust_env=True)
    assert client.proxy == "http://corp.example:3128"
    assert PROXY_SECRET not in repr(client)
    monkeypatch.setenv("NO_PROXY", ".twilio.com")
    assert VerifyClient(ACCOUNT_SID, AUTH_TOKEN, trust_env=True).proxy is None
    # An explicit proxy wins over the environment.
    explicit = VerifyClient(ACCOUNT_SID, AUTH_TOKEN, trust_env=True, proxy="http://p.example:1")
    assert explicit.proxy == "http://p.example:1"


def test_lower_case_variables_come_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.example:3128")
    monkeypatch.setenv("https_proxy", "http://lower.example:3128")
    monkeypatch.setenv("NO_PROXY", "verify.twilio.com")
    monkeypatch.setenv("no_proxy", "other.example")
    assert VerifyClient(ACCOUNT_SID, AUTH_TOKEN, trust_env=True).proxy == (
        "http://lower.example:3128"
    )


CONNECT_SCRIPT = """
import asyncio, base64, json, os, ssl, sys
sys.path.insert(0, sys.argv[1])
from aiohttp import web
from helpers.forward_proxy import ForwardProxy
from verify_access_tokens import VerifyClient
from verify_access_tokens.emulator import VerifyEmulator

async def main():
    emulator = VerifyEmulator()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[2], sys.argv[3])
    runner = web.AppRunner(emulator.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    origin = "https://127.0.0.1:%d" % runner.addresses[0][1]
    secret = base64.b64encode(b"alice:s3cret").decode()
    async with ForwardProxy(credentials="Basic " + secret) as proxy:
        os.environ["HTTPS_PROXY"] = "http://alice:s3cret@127.0.0.1:%d" % proxy.port
        explicit = {"proxy": proxy.url, "proxy_auth": ("alice", "s3cret")}
        for kwargs in (explicit, {"trust_env": True}):
            async with VerifyClient(
                emulator.account_sid, emulator.auth_token, base_url=origin, **kwargs
            ) as client:
                token = await client.access_tokens.create(
                    emulator.service_sid, identity="0123456789abcdef"
                )
                await client.access_tokens.fetch(token.service_sid, token.sid)
    await runner.cleanup()
    print(json.dumps({
        "connects": proxy.counters.connects,
        "forwarded": proxy.counters.forwarded,
        "lines": proxy.request_lines,
        "proxy_authorizations": proxy.proxy_authorizations,
        "created": emulator.counters.tokens_created,
        "fetches": emulator.counters.fetches,
        "unauthorized": emulator.counters.unauthorized,
        "origin": origin,
    }))

asyncio.run(main())
"""


def test_https_goes_through_a_connect_tunnel() -> None:
    """An https origin (the emulator behind TLS, its test CA trusted through SSL_CERT_FILE in a
    fresh process) is reached through a CONNECT tunnel, by ``proxy=`` and by ``HTTPS_PROXY``."""
    cert, key = TLS / "server.pem", TLS / "server-key.pem"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["SSL_CERT_FILE"] = str(TLS / "ca.pem")
    done = subprocess.run(
        [sys.executable, "-c", CONNECT_SCRIPT, str(TESTS), str(cert), str(key)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    host_port = seen["origin"].removeprefix("https://")
    assert seen["connects"] == 2  # one tunnel per client, pooled for its create and fetch
    assert seen["lines"] == [f"CONNECT {host_port} HTTP/1.1"] * 2
    assert seen["proxy_authorizations"] == [basic("alice", "s3cret")] * 2
    assert seen["forwarded"] == 0
    assert (seen["created"], seen["fetches"], seen["unauthorized"]) == (2, 2, 0)


async def test_a_refused_tunnel_sent_nothing_and_does_not_leak_the_proxy_secret() -> None:
    """aiohttp's error for a refused CONNECT quotes the proxy URL with its password; a create
    that never got past the proxy is not an unknown outcome."""
    async with ForwardProxy(credentials=basic("alice", "right")) as proxy:
        client = VerifyClient(
            ACCOUNT_SID,
            AUTH_TOKEN,
            base_url="https://127.0.0.1:9",  # never reached: the proxy says no first
            proxy=f"http://alice:{PROXY_SECRET}@127.0.0.1:{proxy.port}",
            max_retries=0,
        )
        async with client:
            with pytest.raises(APIConnectionError) as info:
                await client.access_tokens.create("VA" + "0" * 32, identity=IDENTITY)
    assert type(info.value) is APIConnectionError  # not OutcomeUnknownError
    assert info.value.request_sent is False
    assert "407" in str(info.value)
    assert proxy.request_lines == ["CONNECT 127.0.0.1:9 HTTP/1.1"]
    for text in (str(info.value), repr(info.value), repr(info.value.__cause__)):
        assert PROXY_SECRET not in text


@pytest.mark.parametrize("via", ["forwarded (plain http)", "CONNECT tunnel (https)"])
@pytest.mark.parametrize("style", ["in the URL", "proxy_auth"])
async def test_a_proxy_echoing_its_credentials_is_scrubbed(
    verify_emulator: VerifyEmulator, via: str, style: str
) -> None:
    """A hostile proxy quotes the Proxy-Authorization it got, in its JSON 407 body (forwarded
    request) or its CONNECT reason phrase: the proxy password and its Basic value are redacted
    like the client's own credentials."""
    sent = basic("alice", PROXY_SECRET)
    async with ForwardProxy(credentials=basic("alice", "right"), echo=True) as proxy:
        if style == "in the URL":
            kwargs: dict[str, object] = {
                "proxy": f"http://alice:{PROXY_SECRET}@127.0.0.1:{proxy.port}"
            }
        else:
            kwargs = {"proxy": proxy.url, "proxy_auth": ("alice", PROXY_SECRET)}
        base_url = (
            verify_emulator.base_url if via.startswith("forwarded") else "https://127.0.0.1:9"
        )
        client = VerifyClient(ACCOUNT_SID, AUTH_TOKEN, base_url=base_url, max_retries=0, **kwargs)  # type: ignore[arg-type]
        async with client:
            with pytest.raises((APIStatusError, APIConnectionError)) as info:
                await client.access_tokens.fetch("VA" + "0" * 32, "YK" + "0" * 32)
    assert proxy.proxy_authorizations == [sent]  # the proxy did get, and quote, the secret
    assert "<redacted>" in str(info.value)
    text = str(info.value) + repr(info.value)
    for leaked in (PROXY_SECRET, sent, sent.split(" ")[1]):
        assert leaked not in text
