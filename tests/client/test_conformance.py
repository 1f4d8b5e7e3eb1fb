"""Conformance with Twilio's OpenAPI extract (data/twilio_verify_v2_access_tokens.openapi.json).

Requests the client builds are captured by a real server on 127.0.0.1 and checked against the
operations; the extract's response examples and the emulator's answers are checked against the
response schema.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from helpers.constants import ACCOUNT_SID, AUTH_TOKEN
from helpers.paths import OPENAPI

from verify_access_tokens import AccessToken, FactorType, VerifyClient
from verify_access_tokens._serde import structure
from verify_access_tokens.emulator import VerifyEmulator

SPEC = json.loads(OPENAPI.read_text())
SCHEMAS = SPEC["components"]["schemas"]
TOKEN_SCHEMA = SCHEMAS["verify.v2.service.access_token"]
LIST_PATH = "/v2/Services/{ServiceSid}/AccessTokens"
ITEM_PATH = "/v2/Services/{ServiceSid}/AccessTokens/{Sid}"


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]  # type: ignore[no-any-return]
    return schema


def check_value(schema: dict[str, Any], value: Any, where: str) -> None:
    """The subset of JSON Schema the extract uses: type, nullable, pattern, length, enum, format."""
    schema = resolve(schema)
    if value is None:
        assert schema.get("nullable", False) or "enum" in schema, f"{where}: null not allowed"
        return
    kind = schema["type"]
    if kind == "integer":
        assert type(value) is int, f"{where}: expected integer"
        return
    assert kind == "string"
    assert isinstance(value, str), f"{where}: expected string"
    if "pattern" in schema:
        assert re.search(schema["pattern"], value), f"{where}: pattern"
    assert schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10**9), where
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: enum"
    if schema.get("format") == "date-time":
        assert dt.datetime.fromisoformat(value).tzinfo is not None, f"{where}: date-time"
    if schema.get("format") == "uri":
        assert urllib.parse.urlsplit(value).scheme in ("http", "https"), f"{where}: uri"


def check_token_body(body: dict[str, Any]) -> None:
    assert set(body) == set(TOKEN_SCHEMA["properties"])
    for name, prop in TOKEN_SCHEMA["properties"].items():
        check_value(prop, body[name], name)


def response_examples() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path, item in SPEC["paths"].items():
        for method in ("get", "post"):
            for status, response in item.get(method, {}).get("responses", {}).items():
                content = response.get("content", {}).get("application/json", {})
                for name, example in content.get("examples", {}).items():
                    found.append((f"{method} {path} {status} {name}", example["value"]))
    return found


@pytest.mark.parametrize(("name", "example"), response_examples())
def test_spec_examples_parse_into_access_token(name: str, example: dict[str, Any]) -> None:
    check_token_body(example)
    token = structure(example, AccessToken)
    assert token.factor_type is FactorType.PUSH
    assert isinstance(token.ttl, int)
    assert token.date_created == dt.datetime(2015, 7, 30, 20, tzinfo=dt.UTC)
    assert token.token == example["token"]


def test_spec_has_the_examples_we_rely_on() -> None:
    assert len(response_examples()) >= 3
    assert set(SPEC["paths"]) == {LIST_PATH, ITEM_PATH}


def operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The spec operation whose path template matches ``path``, with path params checked."""
    for template, item in SPEC["paths"].items():
        names = re.findall(r"{(\w+)}", template)
        pattern = "^" + re.sub(r"{\w+}", "([^/]+)", template) + "$"
        match = re.match(pattern, path)
        if match and method.lower() in item:
            op = item[method.lower()]
            params = {p["name"]: p for p in op.get("parameters", [])}
            for name, value in zip(names, match.groups(), strict=True):
                check_value(params[name]["schema"], value, name)
            return template, op
    raise AssertionError(f"no operation for {method} {path}")


@pytest.fixture
async def capture() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A server that records each request and answers with a spec example."""
    seen: list[dict[str, Any]] = []
    example = response_examples()[0][1]

    async def handler(request: web.Request) -> web.Response:
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "headers": dict(request.headers),
                "body": (await request.read()).decode(),
            }
        )
        status = 201 if request.method == "POST" else 200
        return web.json_response(example, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


@pytest.mark.sockets
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"ttl": 300},
        {"factor_friendly_name": "John Doe iPhone"},
        {"ttl": 60, "factor_friendly_name": "x" * 64, "factor_type": "push"},
    ],
)
async def test_create_requests_conform(
    capture: tuple[str, list[dict[str, Any]]], kwargs: dict[str, Any]
) -> None:
    base_url, seen = capture
    async with VerifyClient(ACCOUNT_SID, AUTH_TOKEN, base_url=base_url) as client:
        await client.access_tokens.create("VA" + "a" * 32, identity="ff483d1ff591898a", **kwargs)
    [request] = seen
    template, op = operation(request["method"], request["path"])
    assert template == LIST_PATH
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert request["headers"]["Accept"] == "application/json"
    assert request["headers"]["Authorization"].startswith("Basic ")
    form_schema = op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    form = dict(urllib.parse.parse_qsl(request["body"], strict_parsing=True))
    assert set(form) <= set(form_schema["properties"])
    assert set(form_schema["required"]) <= set(form)
    for name, value in form.items():
        prop = resolve(form_schema["properties"][name])
        check_value(prop, int(value) if prop["type"] == "integer" else value, name)
    assert ("Ttl" in form) == ("ttl" in kwargs)
    assert ("FactorFriendlyName" in form) == ("factor_friendly_name" in kwargs)


@pytest.mark.sockets
async def test_fetch_request_conforms(capture: tuple[str, list[dict[str, Any]]]) -> None:
    base_url, seen = capture
    async with VerifyClient(ACCOUNT_SID, AUTH_TOKEN, base_url=base_url) as client:
        await client.access_tokens.fetch("VA" + "a" * 32, "YK" + "b" * 32)
    [request] = seen
    template, op = operation(request["method"], request["path"])
    assert template == ITEM_PATH
    assert "requestBody" not in op
    assert request["body"] == ""


@pytest.mark.sockets
async def test_emulator_responses_match_the_schema(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    token = await verify_client.access_tokens.create(
        verify_emulator.service_sid, identity="ff483d1ff591898a", factor_friendly_name="Pixel"
    )
    plain = await verify_client.access_tokens.create(
        verify_emulator.service_sid, identity="ff483d1ff591898b"
    )
    session = verify_client._transport.session()
    headers = verify_client._transport._headers
    collection = (
        f"{verify_emulator.base_url}/v2/Services/{verify_emulator.service_sid}/AccessTokens"
    )
    for sid in (token.sid, plain.sid):
        url = f"{collection}/{sid}"
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 200
            assert resp.content_type == "application/json"
            check_token_body(await resp.json())
