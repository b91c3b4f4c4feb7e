"""WebDataset tar shards as img2dataset writes them (`KEY.jpg`/`.png`/`.webp` + `KEY.txt` [+ `KEY.json`]), read
with the `webdataset` library as a deterministic stream.

Order: epoch e visits the shards in a seeded permutation; the stream is cut into `units` = processes × loader
workers parts, by shard when there are enough shards, else by sample. Each unit's raw (undecoded) samples pass a
seeded shuffle buffer; a unit forms whole batches, and DataLoader takes batches from its workers in turn, so
batch k of a rank is the (k // W)-th batch of worker k % W. Resuming at step s therefore skips exactly the raw
samples already used, without decoding them: the resumed run sees the same batches as an uninterrupted one
(given the same number of processes and loader workers; with another number it resumes at the same step with a
different order, and says so).
"""

from __future__ import annotations

import glob
import os

from clipcomp.errors import ClipcompError

IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")
TEXT_KEYS = ("txt", "text", "caption")


def expand_shards(spec: str) -> list[str]:
    """Shard URLs from a brace pattern (`shards/{00000..00099}.tar`), a glob, a directory, a file or a list
    separated by '::' (webdataset's convention). Local paths must exist; remote URLs are kept as they are."""
    from braceexpand import braceexpand

    urls: list[str] = []
    for part in spec.split("::"):
        for item in braceexpand(part):
            if "://" in item or item.startswith("pipe:"):
                urls.append(item)
            elif os.path.isdir(item):
                urls.extend(sorted(glob.glob(os.path.join(item, "*.tar"))))
            elif any(ch in item for ch in "*?["):
                urls.extend(sorted(glob.glob(item)))
            else:
                urls.append(item)
    if not urls:
        raise ClipcompError(f"{spec}: no .tar shards found")
    for u in urls:
        if "://" not in u and not u.startswith("pipe:"):
            if not os.path.exists(u):
                raise ClipcompError(f"{u}: shard not found")
            if os.path.isdir(u):
                raise ClipcompError(f"{u}: is a directory, expected a .tar shard")
    return urls


def raw_samples(urls: list[str], unit: int, units: int, seed: int, shuffle_buffer: int, on_bad):
    """Endless stream of raw samples (dicts of bytes) for one unit; `on_bad(url, exc)` decides about bad shards."""
    import numpy as np
    from webdataset.tariterators import tarfile_samples

    epoch = 0
    while True:
        order = np.random.default_rng([seed, 7_777_777, epoch]).permutation(len(urls))
        if len(urls) >= units:
            mine, stride = [urls[i] for i in order[unit::units]], 1
        else:
            mine, stride = [urls[i] for i in order], units

        def handler(exc):
            on_bad(getattr(exc, "url", "?"), exc)
            return True

        produced = 0
        buf: list = []
        rng = np.random.default_rng([seed, 8_888_888, epoch, unit])
        for n, sample in enumerate(_samples_with_errors(mine, handler, tarfile_samples)):
            if stride > 1 and n % stride != unit:
                continue
            produced += 1
            sample["__epoch__"] = epoch  # consumers can tell a full pass without one usable sample
            if shuffle_buffer <= 1:
                yield sample
                continue
            buf.append(sample)
            if len(buf) >= shuffle_buffer:
                j = int(rng.integers(len(buf)))
                buf[j], buf[-1] = buf[-1], buf[j]
                yield buf.pop()
        while buf:
            j = int(rng.integers(len(buf)))
            buf[j], buf[-1] = buf[-1], buf[j]
            yield buf.pop()
        if produced == 0:
            raise ClipcompError(f"{', '.join(mine[:3])}{' ...' if len(mine) > 3 else ''}: no readable samples "
                                "in these shards")
        epoch += 1


def _samples_with_errors(urls: list[str], handler, tarfile_samples):
    """Samples of `urls` in order; a shard that fails to open or to expand is reported with its name."""
    for url in urls:
        def named(exc, url=url):
            exc.url = url
            return handler(exc)

        try:
            yield from tarfile_samples(iter([{"url": url}]), handler=named)
        except ClipcompError:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt tar surfaces here as tarfile/OS errors
            exc.url = url
            handler(exc)


def sample_image(sample: dict) -> tuple[str, bytes] | None:
    for k in IMAGE_KEYS:
        if k in sample:
            return k, sample[k]
    return None


def sample_text(sample: dict) -> str | None:
    for k in TEXT_KEYS:
        if k in sample:
            v = sample[k]
            return v.decode("utf-8") if isinstance(v, bytes) else str(v)
    return None
