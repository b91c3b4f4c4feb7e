"""`clipcomp slipform`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from clipcomp.cli.options import OverridesArg

console = Console()


def slipform_cmd(
    config: Annotated[str, typer.Argument(help="Recipe (YAML/TOML): data, images, model, pretrained, train, "
                                               "negatives, suites — see examples/slipform.yaml.")],
    overrides: OverridesArg = None,
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")] = "runs/slipform",
    force: Annotated[bool, typer.Option(help="Replace other results in OUT.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bars.")] = False,
) -> None:
    """Slipform: ConcretePlant negatives + Cement fine-tuning, suites before/after. → slipform.run_slipform"""
    from clipcomp.pipelines.slipform import run_slipform

    res = run_slipform(config, out, force, not quiet, overrides or ())
    console.print(f"{res['n_with_negative']:,} of {res['n_pairs']:,} pairs trained with a negative "
                  f"({res['n_without']:,} had nothing perturbable); weights: {res['weights']}")
    if res["table"]:
        console.print(f"before/after table: {res['table']} (and table.md)")
