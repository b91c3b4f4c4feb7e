"""`clipcomp models`: the architectures and pretrained tags open_clip offers, plus clipcomp's small models."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

console = Console()


def models_cmd(
    pretrained: Annotated[bool, typer.Option("--pretrained", help="List (model, tag) pairs.")] = False,
    filter_: Annotated[str | None, typer.Option("--filter", help="Only names containing this.")] = None,
) -> None:
    """List the architectures (and pretrained tags) open_clip offers, plus clipcomp's small CPU models."""
    from clipcomp.models import SMALL_MODELS, import_open_clip

    oc = import_open_clip()
    rows = oc.list_pretrained() if pretrained else [(m, "") for m in oc.list_models()]
    for m, tag in rows:
        if filter_ and filter_.lower() not in m.lower():
            continue
        note = "  (clipcomp: small, trains on a CPU)" if m in SMALL_MODELS else ""
        console.print(f"{m}{' ' + tag if tag else ''}{note}", highlight=False)
