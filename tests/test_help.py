"""`--help` of every command at 80 columns shows allowed values in full (nothing cut to "…")."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from clipcomp.cli import app


def _commands(cmd, path: tuple[str, ...] = ()):
    if hasattr(cmd, "commands"):  # a group (typer vendors its own click)
        for name, sub in cmd.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield path


COMMANDS = list(_commands(typer.main.get_command(app)))


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_help_is_not_cut_at_80_columns(path):
    res = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"},
                             terminal_width=80)
    assert res.exit_code == 0, res.output
    assert "…" not in res.output, f"clipcomp {' '.join(path)} --help cuts text:\n{res.output}"
