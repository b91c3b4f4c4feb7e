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


def track_shards(shards, total: int | None, enabled: bool = True, desc: str | None = None, unit: str = "vectors"):
    """Yield the (ids, matrix) shards of an embedding set, advancing one bar by each shard's rows — one
    continuous bar over a pass, however many shards."""
    with progress_bar(total or 0, unit, enabled=enabled and bool(total), desc=desc) as bar:
        for item in shards:
            yield item
            bar.update(len(item[1]) if isinstance(item, tuple) else len(item))
