"""One progress bar helper for long loops (tqdm: works in terminals and notebooks, silent when disabled)."""

from __future__ import annotations

import sys
from contextlib import contextmanager


@contextmanager
def progress_bar(total: int, unit: str, enabled: bool = True, desc: str | None = None):
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit=f" {unit}", desc=desc, disable=not enabled or not sys.stderr.isatty(),
               leave=False, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()
