"""`clipcomp lab`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from clipcomp.cli.options import OverridesArg

console = Console()


lab_app = typer.Typer(rich_markup_mode=None, help="Experiments: sweeps over data knobs.", no_args_is_help=True)


@lab_app.command("sweep")
def lab_sweep(config: Annotated[str, typer.Argument(help="YAML/TOML with world/captions/dataset/train + sweep.")],
              overrides: OverridesArg = None,
              quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bars.")] = False,
              force: Annotated[bool, typer.Option(help="Recompute cells whose settings changed.")] = False) -> None:
    """Run a knob grid (or named cells) × seeds with the same step budget; results table + plot."""
    from clipcomp.pipelines.lab import sweep

    res = sweep(config, progress=not quiet, force=force, overrides=overrides or ())
    if res.get("gates"):
        from clipcomp.analysis.gates import require

        console.print("Gates: did every run learn the base task?\n" + res["gates_md"])
        require(res["gates"], "a sweep run")  # a failed gate: one line, exit 2 — no effect table
    console.print(res["table"])
