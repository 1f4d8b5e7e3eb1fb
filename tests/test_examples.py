"""Every example runs in the test suite, and every README code block runs as pasted or is a
marked, verbatim copy of a tested example."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from types import ModuleType

import aiohttp
import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from helpers.paths import EXAMPLES, ROOT
from helpers.readme import JQ_RUN_BY_TEST, Block, bash_commands, readme_blocks

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


# --- README code blocks run as pasted -----------------------------------------------------------
# Every fenced block of README.md is one of two kinds, told apart by the line before it.
#
# A fragment: the last non-blank line before the opening fence is exactly
#     From [`examples/NAME`](examples/NAME), which the test suite runs:
# Its text must be a verbatim run of whole lines of examples/NAME (give or take the indentation of
# the function the lines come from), and examples/NAME must be in TESTED_EXAMPLES: one of the
# tests above runs it.
#
# Anything else is complete, and a reader can paste it as it is:
# - python: a program, run in a fresh interpreter (60 s at most) whose only settings are the
#   `export` lines `verify-access-tokens emulator` prints, for an emulator of this test: no
#   credentials, no network. It must exit 0, reach the emulator and print no secret.
# - bash: each command (`&&`-separated, comments dropped) must pass a rule: CLI invocations
#   (`verify-access-tokens ...`, `python3 -m verify_access_tokens ...`) parse with the CLI's own
#   parser; `python3 -m pip install [-e] .[EXTRAS]` names extras pyproject.toml defines;
#   `bash .ci/run` exists; `jq` commands are run by a test (JQ_RUN_BY_TEST); a pipeline passes
#   when each of its commands does; other tools are run by .ci/run as written. A block of only
#   `export`s and `create`/`fetch` commands (the emulator's printout) is run in bash against an
#   emulator, each exported value replaced by the emulator's own.
# - toml: pytest settings for a user's pyproject.toml. It must parse, and a fresh project with it
#   and examples/test_mocking.py must pass with no pytest-asyncio configuration warning.
# - text: not code (a diagram, a file tree, sample output); there is nothing to run.
# Another language, or a command no rule knows, fails: add a rule here rather than skip a block.

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
# The jq commands of README, run by cli/test_enroll_journal.py::test_readme_jq_commands_run.
RUN_TIMEOUT = 60


def block_id(block: Block) -> str:
    return f"README.md:{block.line}:{block.lang or 'plain'}"


def emulator_exports(emulator: VerifyEmulator) -> dict[str, str]:
    """What `verify-access-tokens emulator` tells a user to paste, for this emulator."""
    from verify_access_tokens.cli._output import emulator_printout

    exports = {}
    for line in emulator_printout(emulator).splitlines():
        if line.startswith("export "):
            name, _, value = shlex.split(line)[1].partition("=")
            exports[name] = value
    return exports


async def run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """In a child process, while this test's event loop keeps serving the emulator."""
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode()


def assert_no_secret(out: str, emulator: VerifyEmulator) -> None:
    assert emulator.auth_token not in out
    assert all(token.token not in out for token in emulator.tokens.values())


def check_fragment(block: Block) -> None:
    assert block.fragment_of in TESTED_EXAMPLES, f"{block.fragment_of} is not run by a test"
    source = "\n" + (ROOT / block.fragment_of).read_text()
    copies = ("\n" + textwrap.indent(block.text, " " * width) for width in range(0, 17, 4))
    assert any(copy in source for copy in copies), f"not in {block.fragment_of}:\n{block.text}"


async def run_python(block: Block, emulator: VerifyEmulator, tmp_path: Path) -> None:
    program = tmp_path / "pasted.py"
    program.write_text(block.text)
    env = {**os.environ, **emulator_exports(emulator)}
    code, out = await run([sys.executable, str(program)], env, tmp_path)
    assert code == 0, out
    assert emulator.counters.requests > 0, "the program never reached the emulator"
    assert_no_secret(out, emulator)


def cli_args(argv: list[str]) -> list[str] | None:
    """The arguments of a CLI invocation, or None when `argv` is not one."""
    if argv[0] == "verify-access-tokens":
        return argv[1:]
    if argv[:3] == ["python3", "-m", "verify_access_tokens"]:
        return argv[3:]
    return None


def check_command(argv: list[str]) -> None:
    from verify_access_tokens.cli._main import build_parser

    line = shlex.join(argv)
    if "|" in argv:  # a pipeline: each command passes its own rule
        cut = argv.index("|")
        check_command(argv[:cut])
        check_command(argv[cut + 1 :])
    elif argv[0] == "jq":  # run on a real journal by tests/test_enroll_journal.py
        assert line in JQ_RUN_BY_TEST, f"no test runs `{line}`"
    elif (args := cli_args(argv)) is not None:
        try:
            parsed = build_parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"the CLI refuses: {line}")
        assert callable(parsed.handler)
    elif argv[:4] == ["python3", "-m", "pip", "install"]:
        options, spec = argv[4:-1], argv[-1]
        assert options in ([], ["-e"]), line
        wanted = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", spec)
        assert wanted is not None, line
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        defined = pyproject["project"]["optional-dependencies"]
        assert set((wanted[1] or "").split(",")) - {""} <= set(defined), line
    elif argv == ["bash", ".ci/run"]:
        assert (ROOT / ".ci" / "run").is_file()
    else:
        assert line in (ROOT / ".ci" / "run").read_text(), f"no rule for `{line}`"


def is_emulator_session(commands: list[list[str]]) -> bool:
    """Only `export`s and `create`/`fetch` commands: what the emulator's printout suggests."""
    return any(argv[0] == "export" for argv in commands) and all(
        argv[0] == "export" or (cli_args(argv) or [""])[0] in ("create", "fetch")
        for argv in commands
    )


async def run_emulator_session(block: Block, emulator: VerifyEmulator, tmp_path: Path) -> None:
    exports = emulator_exports(emulator)
    lines, shown = [], set()
    for line in block.text.splitlines():
        if exported := re.match(r"export (\w+)=", line):
            name = exported[1]
            assert name in exports, f"the emulator does not print {name}"
            shown.add(name)
            line = f"export {name}={shlex.quote(exports[name])}"
        lines.append(line)
    assert shown == set(exports)
    cli = Path(sys.executable).parent / "verify-access-tokens"
    assert cli.is_file(), "install the project (pip install -e .) for its console script"
    env = {**os.environ, "PATH": f"{cli.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    script = "set -euo pipefail\n" + "\n".join(lines)
    code, out = await run(["bash", "-c", script], env, tmp_path)
    assert code == 0, out
    assert emulator.counters.requests > 0, "no command reached the emulator"
    assert_no_secret(out, emulator)


async def check_pytest_settings(block: Block, tmp_path: Path) -> None:
    assert tomllib.loads(block.text)["tool"]["pytest"]["ini_options"]
    (tmp_path / "pyproject.toml").write_text(block.text)
    (tmp_path / "test_mocking.py").write_text((EXAMPLES / "test_mocking.py").read_text())
    code, out = await run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], {**os.environ}, tmp_path
    )
    assert code == 0, out
    assert "4 passed" in out
    assert "warning" not in out.lower(), out  # pytest-asyncio's: 'asyncio_default_... is unset'


@pytest.mark.parametrize("block", readme_blocks(), ids=block_id)
async def test_readme_block_runs_as_pasted_or_is_a_tested_fragment(
    block: Block, verify_emulator: VerifyEmulator, tmp_path: Path
) -> None:
    if block.fragment_of is not None:
        check_fragment(block)
    elif block.lang == "python":
        await run_python(block, verify_emulator, tmp_path)
    elif block.lang == "bash":
        commands = bash_commands(block.text)
        assert commands, "a shell block without a command"
        for argv in commands:
            if argv[0] != "export":
                check_command(argv)
        if is_emulator_session(commands):
            await run_emulator_session(block, verify_emulator, tmp_path)
        else:
            assert all(argv[0] != "export" for argv in commands), "exports, but nothing runs"
    elif block.lang == "toml":
        await check_pytest_settings(block, tmp_path)
    elif block.lang != "text":
        pytest.fail(f"no rule for ```{block.lang} blocks")


def test_readme_blocks_include_every_kind() -> None:
    """So the walker above cannot pass by finding nothing to check."""
    blocks = readme_blocks()
    fragments = {b.fragment_of for b in blocks if b.fragment_of}
    programs = [b for b in blocks if b.lang == "python" and b.fragment_of is None]
    shell = [bash_commands(b.text) for b in blocks if b.lang == "bash"]
    sessions = [commands for commands in shell if is_emulator_session(commands)]
    parsed = [argv for commands in shell for argv in commands]
    assert len(fragments) >= 3
    assert programs
    assert sessions
    assert sum(cli_args(argv) is not None for argv in parsed) >= 5


def test_every_example_has_a_test() -> None:
    on_disk = {f"examples/{path.name}" for path in EXAMPLES.glob("*.py")}
    assert on_disk == set(TESTED_EXAMPLES)
    for test_name in TESTED_EXAMPLES.values():
        module, _, name = test_name.rpartition("::")
        if module:  # a test of another module, found by its definition
            assert f"\ndef {name}(" in (Path(__file__).parent / module).read_text()
        else:
            assert callable(globals()[test_name])


def test_a_fragment_marker_is_checked() -> None:
    """A changed copy, or a file no test runs, is caught."""
    copied = Block(1, "python", "    await enroll(client, emulator.service_sid)\n", None)
    check_fragment(copied._replace(fragment_of="examples/quickstart.py"))
    with pytest.raises(AssertionError, match=r"not in examples/quickstart\.py"):
        check_fragment(copied._replace(fragment_of="examples/quickstart.py", text="enrol()\n"))
    with pytest.raises(AssertionError, match="not run by a test"):
        check_fragment(copied._replace(fragment_of="examples/untested.py"))
