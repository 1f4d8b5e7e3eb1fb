"""Every example runs in the test suite, and every README code block is copied from one."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from verify_access_tokens.emulator import Faults, VerifyEmulator

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
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


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("block", readme_python_blocks())
def test_readme_python_blocks_are_copied_from_examples(block: str) -> None:
    """Verbatim, give or take the indentation of the function the lines come from."""
    sources = [path.read_text() for path in EXAMPLES.glob("*.py")]
    candidates = [textwrap.indent(block, " " * width) for width in range(0, 17, 4)]
    assert any(c in source for c in candidates for source in sources), f"not copied:\n{block}"


def test_readme_has_the_python_blocks_we_expect() -> None:
    assert len(readme_python_blocks()) >= 5


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


def readme_cli_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command.startswith("verify-access-tokens "):
                lines.append(command)
    return lines


@pytest.mark.parametrize("line", readme_cli_lines())
def test_readme_cli_lines_parse(line: str) -> None:
    """The shell examples in README are valid invocations of the current CLI."""
    from verify_access_tokens.cli._main import build_parser

    args = build_parser().parse_args(shlex.split(line)[1:])
    assert callable(args.handler)


def test_readme_has_cli_lines() -> None:
    assert len(readme_cli_lines()) >= 2
