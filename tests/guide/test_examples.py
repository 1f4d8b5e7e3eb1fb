"""Every example runs in the test suite, and a copy of one in README or the guide is verbatim."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import aiohttp
import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from helpers.guide import Block, blocks_of, guide_pages
from helpers.paths import EXAMPLES, README, ROOT, TESTS

from verify_access_tokens import VerifyClient
from verify_access_tokens.emulator import Faults, VerifyEmulator

pytestmark = pytest.mark.sockets


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_quickstart_example(capsys: pytest.CaptureFixture[str]) -> None:
    await load("quickstart").main()
    out = capsys.readouterr().out
    assert "AccessToken(sid='YK" in out
    assert "entity_identity='ff483d1ff591898a9942916050d2ca3f'" in out
    assert "ttl=300" in out
    assert "characters, masked" in out
    assert "eyJ" not in out  # the JWT is never printed
    assert "Ana's phone" not in out


async def test_batch_enroll_example(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    example = load("batch_enroll")
    ids = tmp_path / "ids.txt"
    ids.write_text("user-000000001\n\nnot valid!\nuser-000000002\n")
    assert await example.main(str(ids)) == 1
    out = capsys.readouterr().out
    assert "not valid!: RequestValidationError" in out
    assert "enrolled 2, failed 1" in out
    assert await example.main(None) == 0
    assert "enrolled 200, failed 0" in capsys.readouterr().out


def test_plugin_example_runs_under_pytest() -> None:
    """Run as a user would: a separate pytest process with the entry-point plugin auto-loaded."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLES / "test_my_app.py"), "-q",
         "-o", "addopts=", "-p", "no:cacheprovider"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_mocking_example_runs_under_pytest() -> None:
    """aioresponses through the public shim, and unittest.mock at the application's seam, in a
    shell holding an emulator's and a region's variables: the mocks do not depend on them."""
    shell = {
        **os.environ,
        "VERIFY_ACCESS_TOKENS_BASE_URL": "http://127.0.0.1:9",
        "TWILIO_REGION": "ie1",
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "from-the-shell",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLES / "test_mocking.py"), "-q",
         "-o", "addopts=", "-p", "no:cacheprovider"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, env=shell,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def test_readme_commands_are_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = 'python3 -m pip install -e ".[test]" && python3 -m pytest'
    assert test_command in readme
    assert test_command in ci
    assert "python3 -m pip install . && python3 -m verify_access_tokens demo" in readme
    assert "python3 -m verify_access_tokens demo" in ci


def android_accepts(body: dict[str, str]) -> bool:
    """The Android sample's rule: all four fields non-blank, and factorType is push."""
    fields = ("token", "serviceSid", "identity", "factorType")
    return all(str(body.get(f) or "").strip() for f in fields) and body["factorType"] == "push"


async def test_fastapi_example_against_an_emulator(
    verify_emulator: VerifyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", verify_emulator.account_sid)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", verify_emulator.auth_token)
    monkeypatch.setenv("VERIFY_SERVICE_SID", verify_emulator.service_sid)
    monkeypatch.setenv("VERIFY_ACCESS_TOKENS_BASE_URL", verify_emulator.base_url)
    app = load("fastapi_app").app  # reads VERIFY_SERVICE_SID at import, as an app would
    transport = httpx.ASGITransport(app=app)
    alice = {"Authorization": "Bearer demo-session-alice"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as http,
    ):
        client = app.state.verify
        own = await http.post("/access-token", data={"identity": "alice"}, headers=alice)
        other = await http.post("/access-token", data={"identity": "bob"}, headers=alice)
        anonymous = await http.post("/access-token", data={"identity": "alice"})
        verify_emulator.set_faults(Faults(error_rate=1.0))
        unknown = await http.post("/access-token", json={"identity": "alice"}, headers=alice)
    assert own.status_code == 200
    body = own.json()
    assert android_accepts(body)
    assert body["serviceSid"] == verify_emulator.service_sid
    assert verify_emulator.decode_token(body["token"])["identity"] == body["identity"]
    assert body["identity"] == hashlib.sha256(b"alice").hexdigest()
    (token,) = verify_emulator.tokens.values()
    assert token.ttl == 300
    assert other.status_code == 403
    assert anonymous.status_code == 401
    assert anonymous.json() == {"error": {"message": "sign in first", "moreInfo": None}}
    assert unknown.status_code == 502
    for response in (other, anonymous, unknown):
        assert verify_emulator.auth_token not in response.text
    assert client.closed  # the lifespan closed the client on shutdown


async def test_fastapi_example_starts_its_own_emulator_by_default() -> None:
    app = load("fastapi_app").app
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as http,
    ):
        created = await http.post(
            "/access-token",
            content=b"identity=bob",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "Bearer demo-session-bob",
            },
        )
    assert created.status_code == 200
    assert android_accepts(created.json())


@pytest.mark.sockets
async def test_aiohttp_web_example_answers_tokens_and_failures(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    example = load("aiohttp_web_app")
    app = example.make_app(verify_client, verify_emulator.service_sid)
    async with TestClient(TestServer(app)) as http:
        ok = await http.post("/access-token", headers={"X-User-Id": "user-00000001"})
        assert ok.status == 200
        assert (await ok.json())["token"]
        bad = await http.post("/access-token", headers={"X-User-Id": "x"})
        assert bad.status == 400
        assert "identity" in (await bad.json())["error"]["message"]
        verify_emulator.set_faults(Faults(rate_limit=0.001))
        await http.post("/access-token", headers={"X-User-Id": "user-00000002"})
        limited = await http.post("/access-token", headers={"X-User-Id": "user-00000003"})
        assert limited.status == 429
        assert limited.headers["Retry-After"].isdigit()
        assert limited.headers["Content-Type"].startswith("application/json")


@pytest.mark.sockets
async def test_aiohttp_web_example_runs_against_its_own_emulator() -> None:
    example = load("aiohttp_web_app")
    app = await example.main()
    async with TestClient(TestServer(app)) as http:
        answer = await http.post("/access-token", headers={"X-User-Id": "user-00000001"})
        assert answer.status == 200
    assert isinstance(app, aiohttp.web.Application)


# --- copies of the examples in README and the guide ---------------------------------------------
# A block whose paragraph before it is exactly
#     From [`examples/NAME`](examples/NAME), which the test suite runs:
# must be a verbatim run of whole lines of examples/NAME (give or take the indentation of the
# function the lines come from), and examples/NAME must be in TESTED_EXAMPLES: one of the tests
# above runs it. Every block is also run as pasted by tests/guide/test_guide.py.

TESTED_EXAMPLES = {
    "examples/quickstart.py": "test_quickstart_example",
    "examples/batch_enroll.py": "test_batch_enroll_example",
    "examples/fastapi_app.py": "test_fastapi_example_against_an_emulator",
    "examples/test_my_app.py": "test_plugin_example_runs_under_pytest",
    "examples/test_mocking.py": "test_mocking_example_runs_under_pytest",
    "examples/aiohttp_web_app.py": "test_aiohttp_web_example_answers_tokens_and_failures",
    "examples/serve_authorize.py": "endpoint/test_serve_deploy.py::"
    "test_an_authorize_hook_from_the_operators_module_mints_for_the_logged_in_user",
}
FRAGMENT_MARKER = re.compile(r"From \[`(examples/[^`]+)`\]\(\1\), which the test suite runs:")
COPIES = [
    block
    for page in guide_pages()
    for block in blocks_of(page)
    if FRAGMENT_MARKER.fullmatch(block.before)
]


def check_fragment(block: Block) -> None:
    marker = FRAGMENT_MARKER.fullmatch(block.before)
    assert marker is not None
    assert marker[1] in TESTED_EXAMPLES, f"{marker[1]} is not run by a test"
    source = "\n" + (ROOT / marker[1]).read_text()
    copies = ("\n" + textwrap.indent(block.text, " " * width) for width in range(0, 17, 4))
    assert any(copy in source for copy in copies), f"not in {marker[1]}:\n{block.text}"


@pytest.mark.parametrize("block", COPIES, ids=lambda b: f"{b.page.name}:{b.line}")
def test_a_copy_of_an_example_is_verbatim(block: Block) -> None:
    check_fragment(block)


def test_readme_shows_the_examples_it_names() -> None:
    """So the check above cannot pass by finding nothing to check."""
    assert len({FRAGMENT_MARKER.fullmatch(b.before)[1] for b in COPIES if b.page == README}) >= 3


def test_every_example_has_a_test() -> None:
    on_disk = {f"examples/{path.name}" for path in EXAMPLES.glob("*.py")}
    assert on_disk == set(TESTED_EXAMPLES)
    for test_name in TESTED_EXAMPLES.values():
        module, _, name = test_name.rpartition("::")
        if module:  # a test of another module, found by its definition
            assert f"\ndef {name}(" in (TESTS / module).read_text()
        else:
            assert callable(globals()[test_name])


def test_a_fragment_marker_is_checked() -> None:
    """A changed copy, or a file no test runs, is caught."""
    marker = "From [`examples/{0}`](examples/{0}), which the test suite runs:"
    copied = Block(README, 1, "python", "    await enroll(client, emulator.service_sid)\n", "")
    check_fragment(copied._replace(before=marker.format("quickstart.py")))
    with pytest.raises(AssertionError, match=r"not in examples/quickstart\.py"):
        check_fragment(copied._replace(before=marker.format("quickstart.py"), text="enrol()\n"))
    with pytest.raises(AssertionError, match="not run by a test"):
        check_fragment(copied._replace(before=marker.format("untested.py")))
