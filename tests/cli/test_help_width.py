"""Every command's `--help` reads well in an 80-column terminal (issue 25 item 4).

A docstring's own line breaks are not kept (paragraphs are folded to the width), nothing is
wider than the terminal, and no word of a command's help, nor any choice it offers, is
broken across two lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from reconciler.cli.app import app

WIDTH = 80


# typer's own (vendored) click: its commands are not the click package's.
Command = Any


def command_paths() -> Iterator[tuple[list[str], Command]]:
    def walk(path: list[str], command: Command) -> Iterator[tuple[list[str], Command]]:
        yield path, command
        if isinstance(command, TyperGroup):
            for name, sub in sorted(command.commands.items()):
                yield from walk([*path, name], sub)

    yield from walk([], typer.main.get_command(app))


COMMANDS = list(command_paths())


def words_of(command: Command) -> set[str]:
    """The words a person reads in the command's help: its text, its options' help and
    the choices they offer (an audit event's name is one word)."""
    texts = [command.help or ""]
    texts += [p.help or "" for p in command.params if isinstance(p, TyperOption)]
    words = {w.strip("`.,;:()") for text in texts for w in text.split()}
    words |= {
        str(getattr(choice, "value", choice))
        for p in command.params
        for choice in p.type_descriptor.choices or ()
    }
    return {w for w in words if len(w) > 3 and re.fullmatch(r"[\w/@=.*-]+", w)}


def help_at(path: list[str], width: int) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "setpoint" for p, _ in COMMANDS]
)
def test_help_fits_80_columns_without_breaking_a_word(path: list[str], command: Command) -> None:
    shown = help_at(path, WIDTH)
    assert max(len(line) for line in shown.splitlines()) <= WIDTH
    flat = " ".join(shown.split())
    broken = sorted(w for w in words_of(command) if w not in flat)
    assert broken == [], f"broken across lines or lost: {broken}"


def test_a_docstring_paragraph_is_folded_to_the_width_not_to_its_source_lines() -> None:
    """`serve`'s docstring is wrapped at 88 columns in the source; at 80 columns a source
    line break must not leave a short line in the middle of its paragraph."""
    shown = help_at(["serve"], WIDTH)
    paragraph = shown.split("Needs SETPOINT_DATABASE_URL")[1].split("╭")[0]
    lines = [line.strip() for line in paragraph.strip().splitlines() if line.strip()]
    assert all(len(line) > WIDTH // 2 for line in lines[:-1]), lines
