"""Every snippet of the guide runs as pasted, and every page of it is shaped for reading.

The guide is README.md (the front door) and the task pages of docs/ (the source of truth; the
API reference is docs/reference/). Every fenced block is run or checked by its kind, as
docs/development.md ("Every snippet runs") tells contributors:

- python: a program runs in a fresh interpreter whose only settings are the `export` lines
  `verify-access-tokens emulator` prints, for an emulator of this test (no credentials, no
  network: 127.0.0.1 only). It must exit 0, print no secret, and reach the emulator unless it
  starts its own. A block whose preceding paragraph names `python -m asyncio` is pasted into
  `python -m asyncio` instead; a block with `test_` functions runs under pytest in a fresh
  directory; a module defining a FastAPI `app` is served through httpx's ASGI transport.
- bash: CLI invocations parse with the CLI's own parser; `pip install` names defined extras; a
  script's flags exist in it; `curl` runs against `serve --emulator`; `jq` runs on a results file
  `enroll` wrote; the emulator's printout runs in bash; other tools only where listed here.
- dockerfile, ini (a systemd unit), yaml (Kubernetes), nginx: the `serve` command inside parses,
  and ports and paths agree with it. toml: pytest settings, run in a fresh project. text: not
  code.

Another language, or a command no rule knows, fails: add a rule rather than skip a block.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.guide import Block, blocks_of, docs_tool, guide_pages
from helpers.network import free_port
from helpers.paths import ROOT

from verify_access_tokens.cli import build_parser
from verify_access_tokens.emulator import VerifyEmulator

DOCS = ROOT / "docs"
CI = (ROOT / ".ci" / "run").read_text()
BIN = Path(sys.executable).parent
RUN_TIMEOUT = 120
pytestmark = pytest.mark.sockets


page_shape = docs_tool("page_shape")
PAGES = guide_pages()  # README.md first, then docs/*.md


BLOCKS = [block for page in PAGES for block in blocks_of(page)]


def block_id(block: Block) -> str:
    return f"{block.page.relative_to(ROOT)}:{block.line}:{block.lang or 'plain'}"


def python_kind(block: Block) -> str:
    if "python -m asyncio" in block.before:
        return "repl"
    if re.search(r"^(async )?def test_", block.text, re.M):
        return "pytest"
    if re.search(r"^app = FastAPI\(", block.text, re.M):
        return "app"
    return "program"


def of_kind(lang: str, kind: str | None = None) -> list[Block]:
    return [
        b
        for b in BLOCKS
        if b.lang == lang and (kind is None or lang != "python" or python_kind(b) == kind)
    ]


# --- running things ----------------------------------------------------------------------------


def emulator_exports(emulator: VerifyEmulator) -> dict[str, str]:
    """What `verify-access-tokens emulator` tells a user to paste, for this emulator."""
    from verify_access_tokens.cli._output import emulator_printout

    exports = {}
    for line in emulator_printout(emulator).splitlines():
        if line.startswith("export "):
            name, _, value = shlex.split(line)[1].partition("=")
            exports[name] = value
    return exports


def shell_env(emulator: VerifyEmulator | None = None) -> dict[str, str]:
    """The test's environment (conftest cleared every TWILIO_*/VERIFY_* and proxy variable),
    the project's console script first on PATH, and the emulator's exports."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return {**env, **(emulator_exports(emulator) if emulator is not None else {})}


async def run(
    argv: list[str], env: dict[str, str], cwd: Path, stdin: bytes | None = None
) -> tuple[int, str]:
    """In a child process, while this test's event loop keeps serving the emulator."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(stdin), RUN_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode()


def assert_no_secret(out: str, emulator: VerifyEmulator) -> None:
    assert emulator.auth_token not in out
    assert all(token.token not in out for token in emulator.tokens.values())


def needs_the_emulator(text: str) -> bool:
    """A snippet that takes its settings from the environment must reach the emulator."""
    return "VerifyClient" in text and "VerifyEmulator" not in text


# --- python ------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", of_kind("python", "program"), ids=block_id)
async def test_a_program_runs_as_pasted(
    block: Block, verify_emulator: VerifyEmulator, tmp_path: Path
) -> None:
    program = tmp_path / "pasted.py"
    program.write_text(block.text)
    code, out = await run([sys.executable, str(program)], shell_env(verify_emulator), tmp_path)
    assert code == 0, out
    assert "Traceback" not in out, out
    if needs_the_emulator(block.text):
        assert verify_emulator.counters.requests > 0, "the program never reached the emulator"
    assert_no_secret(out, verify_emulator)


@pytest.mark.parametrize("block", of_kind("python", "repl"), ids=block_id)
async def test_a_repl_snippet_runs_in_python_m_asyncio(
    block: Block, verify_emulator: VerifyEmulator, tmp_path: Path
) -> None:
    pasted = (block.text + "\n").encode()
    env = shell_env(verify_emulator)
    code, out = await run([sys.executable, "-m", "asyncio"], env, tmp_path, stdin=pasted)
    assert code == 0, out
    assert "Traceback" not in out, out
    if needs_the_emulator(block.text):
        assert verify_emulator.counters.requests > 0
    assert_no_secret(out, verify_emulator)


@pytest.mark.parametrize("block", of_kind("python", "pytest"), ids=block_id)
async def test_a_test_file_passes_under_pytest(
    block: Block, verify_emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """In a fresh directory, as a user's project: no conftest, no settings; the shell holds an
    emulator's variables, which a test that mocks HTTP must not depend on."""
    (tmp_path / "test_pasted.py").write_text(block.text)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_pasted.py"]
    code, out = await run(argv, shell_env(verify_emulator), tmp_path)
    assert code == 0, out
    expected = len(re.findall(r"^(?:async )?def test_", block.text, re.M))
    assert f"{expected} passed" in out, out


_SERVE_APP = """
import asyncio, importlib.util, json, sys

import httpx

spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
app = module.app


async def main():
    transport = httpx.ASGITransport(app=app)
    alice = {"Authorization": "Bearer demo-session-alice"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as http,
    ):
        own = await http.post("/access-token", data={"identity": "alice"}, headers=alice)
        no_body = await http.post("/access-token", headers=alice)
        other = await http.post("/access-token", json={"identity": "bob"}, headers=alice)
        anonymous = await http.post("/access-token", data={"identity": "alice"})
    print(json.dumps({"own": [own.status_code, own.json()], "no_body": no_body.status_code,
                      "other": other.status_code, "anonymous": anonymous.status_code}))


asyncio.run(main())
"""


@pytest.mark.parametrize("block", of_kind("python", "app"), ids=block_id)
async def test_an_app_serves_tokens_through_asgi(
    block: Block, verify_emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """Served as uvicorn would serve it, through its lifespan; the requests are the mobile
    app's, signed in with the page's stand-in session of alice."""
    assert '"demo-session-alice": "alice"' in block.text, "the harness signs in as alice"
    (tmp_path / "app.py").write_text(block.text)
    (tmp_path / "harness.py").write_text(_SERVE_APP)
    argv = [sys.executable, "harness.py", "app.py"]
    code, out = await run(argv, shell_env(verify_emulator), tmp_path)
    assert code == 0, out
    answers = json.loads(out.strip().splitlines()[-1])
    status, body = answers["own"]
    assert status == 200, body
    assert set(body) == {"token", "serviceSid", "identity", "factorType"}
    assert verify_emulator.decode_token(body["token"])["identity"] == body["identity"]
    assert answers["no_body"] == 200  # the identity comes from the login
    assert answers["other"] == 403
    assert answers["anonymous"] == 401
    assert_no_secret(out.replace(body["token"], ""), verify_emulator)


# --- shell -------------------------------------------------------------------------------------

JQ = "jq"


def bash_commands(text: str) -> list[list[str]]:
    """Each command of a block: lines, split at `&&`, comments dropped."""
    commands = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            commands.append(words[:cut])
            words = words[cut + 1 :]
    return commands


def cli_args(argv: list[str]) -> list[str] | None:
    """The arguments of a `verify-access-tokens` invocation, or None when `argv` is not one."""
    if Path(argv[0]).name == "verify-access-tokens":
        return argv[1:]
    if argv[0] in ("python", "python3") and argv[1:3] == ["-m", "verify_access_tokens"]:
        return argv[3:]
    return None


def check_cli(args: list[str]) -> None:
    try:
        parsed = build_parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"the CLI refuses: verify-access-tokens {shlex.join(args)}")
    assert callable(parsed.handler)


def check_pip_install(argv: list[str]) -> None:
    *options, spec = argv
    assert set(options) <= {"-e", "--no-cache-dir", "--quiet"}, argv
    wanted = re.fullmatch(r"(?:\.|/src)(?:\[([\w,-]+)\])?", spec)
    assert wanted is not None, f"installs something else than this project: {spec}"
    defined = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = set((wanted[1] or "").split(",")) - {""}
    assert extras <= set(defined["optional-dependencies"]), spec


def check_script(script: str, args: list[str]) -> None:
    """A script of the repository, and only flags its own parser defines."""
    path = ROOT / script
    assert path.is_file(), f"no {script} in the repository"
    source = path.read_text()
    for flag in (a.split("=")[0] for a in args if a.startswith("--")):
        assert f'"{flag}"' in source, f"{script} has no {flag}"


# Tools the guide shows but this test does not run, and what is checked of their lines.
SHOWN_NOT_RUN = {"docker", "systemctl", "journalctl", "kubectl"}


def check_command(argv: list[str], block: Block) -> None:
    line = shlex.join(argv)
    if "|" in argv:  # a pipeline: each command passes its own rule
        cut = argv.index("|")
        check_command(argv[:cut], block)
        check_command(argv[cut + 1 :], block)
    elif (args := cli_args(argv)) is not None:
        check_cli(args)
    elif argv[:4] in (["python3", "-m", "pip", "install"], ["python", "-m", "pip", "install"]):
        check_pip_install(argv[4:])
    elif argv[0] in ("python", "python3") and argv[1].endswith(".py"):
        check_script(argv[1], argv[2:])
    elif argv[0] in (JQ, "curl"):
        pass  # run by test_jq_lines_run_on_a_results_file / test_curl_lines_get_a_token
    elif argv == ["bash", ".ci/run"]:
        assert (ROOT / ".ci" / "run").is_file()
    elif argv[0] == "docker":
        built = re.findall(r"docker build -t (\S+)", block.text)
        assert argv[1] in ("build", "run", "stop"), line
        if argv[1] == "run":
            assert argv[-1] in built, "runs an image the block does not build"
    elif argv[0] in SHOWN_NOT_RUN:
        pass
    else:
        assert line in CI, f"no rule for `{line}` (nor is it run by .ci/run)"


def is_emulator_session(commands: list[list[str]]) -> bool:
    """Only `export`s and `create`/`fetch` commands: what the emulator's printout suggests."""
    return any(argv[0] == "export" for argv in commands) and all(
        argv[0] == "export" or (cli_args(argv) or [""])[0] in ("create", "fetch")
        for argv in commands
    )


@pytest.mark.parametrize("block", of_kind("bash"), ids=block_id)
async def test_a_shell_block_passes_its_rules(
    block: Block, verify_emulator: VerifyEmulator, tmp_path: Path
) -> None:
    commands = bash_commands(block.text)
    assert commands, "a shell block without a command"
    for argv in commands:
        if argv[0] != "export":
            check_command(argv, block)
    if not is_emulator_session(commands):
        assert all(argv[0] != "export" for argv in commands), "exports, but nothing runs"
        return
    # The emulator's printout, pasted into bash: each exported value is this emulator's.
    exports = emulator_exports(verify_emulator)
    lines, shown = [], set()
    for line in block.text.splitlines():
        if exported := re.match(r"export (\w+)=", line):
            assert exported[1] in exports, f"the emulator does not print {exported[1]}"
            shown.add(exported[1])
            line = f"export {exported[1]}={shlex.quote(exports[exported[1]])}"
        lines.append(line)
    assert shown == set(exports)
    script = "set -euo pipefail\n" + "\n".join(lines)
    code, out = await run(["bash", "-c", script], shell_env(), tmp_path)
    assert code == 0, out
    assert verify_emulator.counters.requests > 0, "no command reached the emulator"
    assert_no_secret(out, verify_emulator)


def lines_running(tool: str) -> list[str]:
    return sorted(
        {
            line
            for block in of_kind("bash")
            for line in block.text.splitlines()
            if any(tool in argv[:1] for argv in _pipeline_parts(line))
        }
    )


def _pipeline_parts(line: str) -> list[list[str]]:
    words = shlex.split(line, comments=True)
    parts, current = [], []
    for word in words:
        if word in ("|", "&&"):
            parts.append(current)
            current = []
        else:
            current.append(word)
    return [*parts, current]


async def test_jq_lines_run_on_a_results_file(
    verify_emulator: VerifyEmulator, tmp_path: Path
) -> None:
    pasted = lines_running(JQ)
    assert len(pasted) >= 2
    (tmp_path / "ids.txt").write_text("user-000001\nnot valid!\n")
    env = shell_env(verify_emulator)
    enroll = ["verify-access-tokens", "enroll", "ids.txt", "--out", "results.jsonl", "--quiet"]
    code, out = await run(enroll, env, tmp_path)
    assert code == 0, out
    (token,) = (t.token for t in verify_emulator.tokens.values())
    for line in pasted:
        code, out = await run(["bash", "-o", "pipefail", "-c", line], env, tmp_path)
        assert code == 0, f"{line}\n{out}"
        assert out in (f"user-000001\t{token}\n", "not valid!\n"), f"{line}\n{out}"


@contextlib.contextmanager
def serving_emulator() -> Iterator[int]:
    """`serve --emulator` on a free loopback port, until the block ends."""
    port = free_port()
    argv = ["verify-access-tokens", "serve", "--emulator", "--port", str(port)]
    process = subprocess.Popen(
        argv,
        env=shell_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert process.poll() is None, "serve --emulator exited"
            assert time.monotonic() < deadline, "serve --emulator did not listen"
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_curl_lines_get_a_token() -> None:
    pasted = lines_running("curl")
    assert pasted
    with serving_emulator() as port:
        for line in pasted:
            assert "127.0.0.1:8000" in line, "the curl lines ask serve's default address"
            here = line.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            done = subprocess.run(
                ["bash", "-c", here], capture_output=True, text=True, timeout=60, check=False
            )
            assert done.returncode == 0, done.stderr
            assert set(json.loads(done.stdout)) == {"token", "serviceSid", "identity", "factorType"}


# --- deployment files --------------------------------------------------------------------------


def serve_options(args: list[str]) -> dict[str, str]:
    """`serve`'s options as parsed, with the defaults, as strings."""
    assert args[0] == "serve", args
    check_cli(args)
    parsed = build_parser().parse_args(args)
    return {"port": str(parsed.port), "path": parsed.path, "health": str(parsed.health_path)}


@pytest.mark.parametrize("block", of_kind("dockerfile"), ids=block_id)
def test_a_dockerfile_installs_the_project_and_serves(block: Block) -> None:
    instructions = [line.split(" ", 1) for line in block.text.splitlines() if line.strip()]
    (image,) = (rest for word, rest in instructions if word == "FROM")
    version = re.fullmatch(r"python:3\.(\d+)(?:-\w+)?", image)
    assert version is not None
    assert int(version[1]) >= 11
    for word, rest in instructions:
        if word == "RUN":
            for part in rest.split("&&"):
                argv = shlex.split(part)
                if argv[:4] == ["python3", "-m", "pip", "install"]:
                    check_pip_install(argv[4:])
    (cmd,) = (json.loads(rest) for word, rest in instructions if word == "CMD")
    args = cli_args(cmd)
    assert args is not None
    options = serve_options(args)
    assert ("EXPOSE", options["port"]) in [tuple(i) for i in instructions]


@pytest.mark.parametrize("block", of_kind("ini"), ids=block_id)
def test_a_systemd_unit_runs_serve(block: Block) -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(block.text)
    assert unit.sections() == ["Unit", "Service", "Install"]
    args = cli_args(shlex.split(unit["Service"]["ExecStart"]))
    assert args is not None
    serve_options(args)
    stop = int(unit["Service"]["TimeoutStopSec"])
    assert stop > build_parser().parse_args(args).shutdown_timeout  # systemd lets it drain


@pytest.mark.parametrize("block", of_kind("yaml"), ids=block_id)
def test_kubernetes_probes_ask_serve(block: Block) -> None:
    """Read without a YAML library (the flow sequences are JSON): the probes' paths and ports
    are those of the `serve` command the container runs."""
    (args,) = (json.loads(m) for m in re.findall(r"^\s*args: (\[.*\])$", block.text, re.M))
    options = serve_options(cli_args(args) or [])
    readiness = re.search(
        r"readinessProbe:\s*\n\s*httpGet: \{path: (\S+), port: (\d+)\}", block.text
    )
    liveness = re.search(r"livenessProbe:\s*\n\s*tcpSocket: \{port: (\d+)\}", block.text)
    assert readiness is not None
    assert liveness is not None
    assert readiness[1] == options["health"]
    assert readiness[2] == liveness[1] == options["port"]
    assert f"containerPort: {options['port']}" in block.text
    grace = re.search(r"terminationGracePeriodSeconds: (\d+)", block.text)
    assert grace is not None
    assert int(grace[1]) > build_parser().parse_args(cli_args(args) or []).shutdown_timeout


@pytest.mark.parametrize("block", of_kind("nginx"), ids=block_id)
def test_the_proxy_forwards_the_endpoint_to_serve(block: Block) -> None:
    assert block.text.count("{") == block.text.count("}")
    page = block.page.read_text()
    ports = {
        serve_options(args)["port"]
        for b in blocks_of(block.page)
        if b.lang == "bash"
        for argv in bash_commands(b.text)
        if (args := cli_args(argv)) is not None and args[:1] == ["serve"]
    }
    (target,) = re.findall(r"proxy_pass http://127\.0\.0\.1:(\d+);", block.text)
    assert target in ports, f"no serve command of {block.page.name} listens on {target}"
    (location,) = re.findall(r"location = (\S+) \{", block.text)
    assert location == build_parser().parse_args(["serve"]).path
    assert "X-Forwarded-For" in block.text
    assert "FORWARDED_ALLOW_IPS" in page  # the page says how serve trusts those headers


@pytest.mark.parametrize("block", of_kind("toml"), ids=block_id)
async def test_pytest_settings_silence_the_warning(block: Block, tmp_path: Path) -> None:
    assert tomllib.loads(block.text)["tool"]["pytest"]["ini_options"]
    (tmp_path / "pyproject.toml").write_text(block.text)
    (tests,) = of_kind("python", "pytest")[:1]
    (tmp_path / "test_pasted.py").write_text(tests.text)
    code, out = await run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], shell_env(), tmp_path
    )
    assert code == 0, out
    assert "warning" not in out.lower(), out


def test_every_block_has_a_rule() -> None:
    known = {"python", "bash", "text", "toml", "dockerfile", "ini", "yaml", "nginx"}
    assert {b.lang for b in BLOCKS} <= known, {block_id(b) for b in BLOCKS if b.lang not in known}
    kinds = {python_kind(b) for b in of_kind("python")}
    assert kinds == {"program", "repl", "pytest", "app"}  # the walker finds every kind


# --- the pages' shape --------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES[1:], ids=lambda p: p.name)
def test_a_page_leads_with_code(page: Path) -> None:
    shape = page_shape.shape(page.read_text())
    title, *rest = shape.first_heading_lines
    assert title == 1, "a page starts with its title"
    assert shape.first_code_line is not None
    assert shape.first_code_line < (rest[0] if rest else 10**6), "code before the first section"
    assert shape.first_code_line - title <= 12, "code on the first screen"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_page_has_short_paragraphs_and_frequent_headings(page: Path) -> None:
    shape = page_shape.shape(page.read_text())
    for paragraph in shape.paragraphs:
        assert page_shape.words(paragraph) <= page_shape.MAX_PARAGRAPH_WORDS, paragraph
    for section in shape.sections:
        assert section.prose_words <= page_shape.MAX_SECTION_WORDS, section.heading
        assert section.prose_words + section.table_words <= 500, section.heading


def test_readme_is_the_front_door() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    shape = page_shape.shape(readme)
    assert shape.first_code_line is not None
    assert shape.first_code_line <= 40, "the quickstart's code is on the first screen"
    assert 'python3 -m pip install -e ".[test]" && python3 -m pytest' in readme
    assert "python3 -m pip install . && python3 -m verify_access_tokens demo" in readme
    for page in PAGES[1:]:  # every task page is linked from it
        assert f"](docs/{page.name})" in readme, page.name


def test_the_removed_adaptive_rate_limit_is_not_taught() -> None:
    """`rate_limit="adaptive"` is refused now; the guide may only say so."""
    for page in PAGES:
        for line in page.read_text().splitlines():
            if re.search(r"rate_limit=.adaptive|--rate-limit.adaptive", line):
                assert "refused" in line, f"{page.name}: {line}"


@pytest.mark.parametrize("query", ["10000"])
def test_a_task_number_is_not_a_date(query: str) -> None:
    """Search finds "10000" on the batch page, not in a sentence about the year 10000."""
    for page in PAGES:
        text = page.read_text()
        if query in text:
            assert page.name in ("README.md", "batches.md", "index.md"), page.name
            assert "year 10000" not in text


def test_files_the_guide_names_exist() -> None:
    """A module or test the guide names by its path is there (layouts move)."""
    named = 0
    for page in PAGES:
        for path in re.findall(r"`([\w.-]+(?:/[\w.-]+)+\.py)`", page.read_text()):
            named += 1
            places = (ROOT / path, ROOT / "verify_access_tokens" / path)
            assert any(place.is_file() for place in places), f"{page.name}: no {path}"
    assert named >= 10
