"""The commands the README and the docs show exist as written: every `make` target is in the Makefile, every
`guardrail` subcommand and flag is one the CLI accepts, and the README's test command is what CI runs."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

from bot.cli import build_parser

ROOT = Path(__file__).parent.parent.parent
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL_BLOCK = re.compile(r"^```(?:sh|bash|shell)\n(.*?)^```", re.MULTILINE | re.DOTALL)
ENV_ASSIGNMENT = re.compile(r"[A-Z_][A-Z0-9_]*=\S*")


def shell_lines(page: Path) -> list[str]:
    """Each command line of the page's shell blocks, comments and line continuations removed."""
    lines: list[str] = []
    for block in SHELL_BLOCK.findall(page.read_text()):
        pending = ""  # a quoted string (a JSON body) may span lines: one command until its quote closes
        for line in block.replace("\\\n", " ").splitlines():
            command = (pending + "\n" + line) if pending else re.sub(r"\s+#.*$", "", line).strip()
            if not command or command.startswith("#"):
                continue
            try:
                shlex.split(command)
            except ValueError:
                pending = command
                continue
            pending = ""
            lines.append(command)
        assert not pending, f"{page.name}: a shell block ends inside a quoted string: {pending!r}"
    return lines


def words(line: str) -> list[str]:
    """The line's words without leading VAR=value assignments (`DATABASE_URL=… guardrail audit verify`)."""
    tokens = shlex.split(line)
    while tokens and ENV_ASSIGNMENT.fullmatch(tokens[0]):
        tokens.pop(0)
    return tokens


def documented(program: str) -> list[tuple[Path, list[str]]]:
    found = []
    for page in PAGES:
        for line in shell_lines(page):
            tokens = words(line)
            if tokens and tokens[0] == program:
                found.append((page, tokens))
    return found


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_the_readme_shows_the_test_command_ci_runs() -> None:
    readme = [words(line) for line in shell_lines(ROOT / "README.md")]
    assert ["make", "test"] in readme and ["make", "run"] in readme  # the two commands
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "make test" in [re.sub(r"\s+#.*$", "", line).strip() for line in ci], (
        ".ci/run must run exactly the README's test command"
    )


def test_every_documented_make_target_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = {name for line in re.findall(r"^([\w .-]+):(?!=)", makefile, re.MULTILINE) for name in line.split()}
    uses = documented("make")
    assert len(uses) >= 5
    for page, tokens in uses:
        target = next((t for t in tokens[1:] if "=" not in t), None)
        assert target in targets, f"{page.relative_to(ROOT)}: `{' '.join(tokens)}`: no target {target!r}"


def test_every_documented_guardrail_command_and_flag_exists() -> None:
    uses = documented("guardrail")
    assert len(uses) >= 10
    for page, tokens in uses:
        parser = build_parser()
        path = ["guardrail"]
        rest = tokens[1:]
        while rest and subparsers(parser):
            choices = subparsers(parser)
            assert rest[0] in choices, (
                f"{page.relative_to(ROOT)}: `{' '.join(tokens)}`: no command {' '.join(path)} "
                f"{rest[0]} (one of {', '.join(choices)})"
            )
            path.append(rest[0])
            parser, rest = choices[rest[0]], rest[1:]
        options = {option for action in parser._actions for option in action.option_strings}
        for token in rest:
            flag = token.strip("[]").split("=")[0]
            if flag.startswith("--"):
                assert flag in options, (
                    f"{page.relative_to(ROOT)}: `{' '.join(tokens)}`: {' '.join(path)} has no "
                    f"{flag} (it has {', '.join(sorted(options))})"
                )
