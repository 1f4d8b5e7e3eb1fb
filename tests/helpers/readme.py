"""README.md's fenced code blocks as a reader pastes them, and the commands of its shell blocks."""

from __future__ import annotations

import re
import shlex
from typing import NamedTuple

from helpers.paths import README

# The jq commands of README, run by cli/test_enroll_journal.py::test_readme_jq_commands_run.
JQ_RUN_BY_TEST = {
    """jq -r 'select(.status == "created") | [.identity, .token] | @tsv' results.jsonl""",
    """jq -r 'select(.error_class == "RequestValidationError") | .identity'""",
}
FRAGMENT_MARKER = re.compile(r"From \[`(examples/[^`]+)`\]\(\1\), which the test suite runs:")


class Block(NamedTuple):
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    fragment_of: str | None  # the file named by the marker


def readme_blocks() -> list[Block]:
    lines = README.read_text().splitlines(keepends=True)
    blocks, prose = [], ""
    index = 0
    while index < len(lines):
        fence = re.fullmatch(r"```(\S*)\s*", lines[index])
        if fence is None:
            prose = lines[index].strip() or prose
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].rstrip() == "```")
        marker = FRAGMENT_MARKER.fullmatch(prose)
        text = "".join(lines[index + 1 : end])
        blocks.append(Block(index + 1, fence[1], text, marker[1] if marker else None))
        prose = ""
        index = end + 1
    return blocks


def bash_commands(text: str) -> list[list[str]]:
    """The commands of a shell block: each line's ``&&``-separated commands, comments dropped."""
    commands = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            commands.append(words[:cut])
            words = words[cut + 1 :]
    return commands
