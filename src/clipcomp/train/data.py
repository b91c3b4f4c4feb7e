"""Training data: any source (synthetic lab dataset, COCO captions JSON + images, a manifest table, WebDataset
shards) → batch dicts `{"image", "text", <fields the loss declares>, "bad"}` built in DataLoader workers.

Decoding, the model's preprocessing (optionally its training augmentation) and tokenization run in the workers.
Map-style sources draw the rows of step s from (seed, s) alone, so a resumed run sees the same batches; the
WebDataset stream is deterministic too (see `clipcomp.datasets.webdataset`). A bad image is a one-line error
naming it, or with `skip_bad` it is replaced (deterministically, by the next readable item) and listed in the
batch's "bad" entry, which the trainer counts in the run's metadata. Errors travel inside the batch ("error")
so that a worker's failure is reported as one line, never as a worker traceback or a hang.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from clipcomp.datasets.formats import TRAIN_FORMATS
from clipcomp.datasets.formats import train_format as detect_format
from clipcomp.errors import ClipcompError

FORMATS = TRAIN_FORMATS  # kept under its old name
# Fields a synthetic dataset provides under canonical names (field -> manifest column).
SYNTH_FIELDS = {"hard_negatives": "negative_caption"}


@dataclass
class DataSpec:
    """Where the training pairs come from and how they are read."""

    data: str
    data_format: str = "auto"
    images: str | None = None
    image_column: str | None = None
    caption_column: str | None = None
    field_columns: dict[str, str] = field(default_factory=dict)
    augment: bool = False
    skip_bad: bool = False
    shuffle_buffer: int = 1000



def _identity(batch):
    return batch


def _tokenize_field(tokenizer, values: list, name: str):
    """Captions of one text field: one per item (B×L) or a fixed number per item (B·K×L, item-major)."""
    if values and isinstance(values[0], (list, tuple)):
        k = {len(v) for v in values}
        if len(k) != 1 or 0 in k:
            raise ClipcompError(f"field {name!r}: every item needs the same (non-zero) number of captions, got {k}")
        flat = [str(t) for v in values for t in v]
        return tokenizer(flat)
    return tokenizer([str(v) for v in values])


class _BatchMaker:
    """Shared by all sources: images + captions + declared fields → one batch dict."""

    def __init__(self, tokenizer, text_fields: tuple[str, ...], num_fields: tuple[str, ...]) -> None:
        self.tokenizer, self.text_fields, self.num_fields = tokenizer, text_fields, num_fields

    def make(self, images, captions: list[str], values: dict[str, list], bad: list[str]) -> dict:
        batch = {"image": images, "text": self.tokenizer([str(c) for c in captions]), "bad": bad}
        for f in self.text_fields:
            batch[f] = _tokenize_field(self.tokenizer, values[f], f)
        for f in self.num_fields:
            try:
                vals = values[f]
                if vals and isinstance(vals[0], (list, tuple)):  # K values per item → B·K, item-major
                    vals = [v for item in vals for v in item]
                batch[f] = torch.tensor([float("nan") if v is None else float(v) for v in vals],
                                        dtype=torch.float32)
            except (TypeError, ValueError):
                raise ClipcompError(f"field {f!r} must be numeric (got e.g. {values[f][0]!r})") from None
        return batch


def _decode(data: bytes | str, transform):
    """Bytes or a path → preprocessed tensor (the caller handles failures)."""
    from PIL import Image

    img = Image.open(io.BytesIO(data)) if isinstance(data, bytes) else Image.open(data)
    return transform(img.convert("RGB"))


def _seed_item(seed: int, step: int, pos: int) -> None:
    torch.manual_seed(int(np.random.default_rng([seed, step, pos]).integers(2**62)))


class MapTrainSet(Dataset):
    """Map-style source of image files + captions (+ fields); `__getitems__` builds a whole batch."""

    def __init__(self, data, transform, maker: _BatchMaker, field_columns: dict[str, str], skip_bad: bool,
                 augment: bool, seed: int) -> None:
        self.data, self.transform, self.maker = data, transform, maker
        self.columns = field_columns
        self.skip_bad, self.augment, self.seed = skip_bad, augment, seed

    def __len__(self) -> int:
        return len(self.data)

    def __getitems__(self, items: list[tuple[int, int]]) -> dict:
        images, caps, bad = [], [], []
        values: dict[str, list] = {f: [] for f in self.columns}
        n = len(self.data)
        for pos, (idx, step) in enumerate(items):
            i = idx
            for _tries in range(n):
                if self.augment:
                    _seed_item(self.seed, step, pos)
                try:
                    images.append(_decode(self.data.paths[i], self.transform))
                    break
                except Exception as exc:  # noqa: BLE001 - PIL raises many types for a bad file
                    why = f"{self.data.paths[i]}: cannot read image ({_reason(exc)})"
                    if not self.skip_bad:
                        return {"error": why}
                    bad.append(why)
                    i = (i + 1) % n
            else:
                return {"error": f"{self.data.source}: no readable image at all"}
            caps.append(self.data.captions[i])
            for f, col in self.columns.items():
                values[f].append(self.data.fields[col][i])
        try:
            return self.maker.make(torch.stack(images), caps, values, bad)
        except ClipcompError as exc:
            return {"error": f"{self.data.source}: {exc}"}


class SynthTrainSet(Dataset):
    """The synthetic lab's dataset: uint8 images from memory-mapped shards, normalized per batch."""

    def __init__(self, ds, size: int, mean, std, maker: _BatchMaker, field_columns: dict[str, str]) -> None:
        self.ds, self.size, self.mean, self.std, self.maker = ds, size, mean, std, maker
        self.columns = field_columns
        self._cols = {f: ds.table.column(c).to_pylist() for f, c in field_columns.items()}

    def __len__(self) -> int:
        return len(self.ds)

    def __getitems__(self, items: list[tuple[int, int]]) -> dict:
        import torch.nn.functional as F

        rows = np.array([i for i, _ in items], np.int64)
        x = torch.from_numpy(np.ascontiguousarray(self.ds.images(rows))).permute(0, 3, 1, 2).float() / 255.0
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        values = {f: [col[i] for i in rows] for f, col in self._cols.items()}
        return self.maker.make((x - mean) / std, [self.ds.captions[i] for i in rows], values, [])


def batch_indices(step: int, n: int, batch: int, seed: int) -> np.ndarray:
    """The rows of step `step`: consecutive slices of per-epoch seeded permutations."""
    start = step * batch
    out = []
    while len(out) < batch:
        epoch, offset = divmod(start + len(out), n)
        perm = np.random.default_rng([seed, 1_000_003, epoch]).permutation(n)
        out.extend(perm[offset:offset + batch - len(out)].tolist())
    return np.array(out, np.int64)


class StepBatchSampler:
    """Yields, for steps start..end-1, this rank's share of the step's seeded rows as (row, step) pairs."""

    def __init__(self, n: int, global_batch: int, seed: int, start: int, end: int, rank: int, world: int) -> None:
        self.n, self.batch, self.seed, self.start, self.end = n, global_batch, seed, start, end
        self.rank, self.local = rank, global_batch // world

    def __len__(self) -> int:
        return max(0, self.end - self.start)

    def __iter__(self):

        for step in range(self.start, self.end):
            rows = batch_indices(step, self.n, self.batch, self.seed)
            rows = rows[self.rank * self.local:(self.rank + 1) * self.local]
            yield [(int(r), step) for r in rows]


class ShardStream(IterableDataset):
    """WebDataset shards as a deterministic, resumable stream of batch dicts (an IterableDataset)."""

    def __init__(self, urls: list[str], transform, maker: _BatchMaker, field_columns: dict[str, str],
                 local_batch: int, seed: int, rank: int, world: int, start_step: int, skip_bad: bool,
                 augment: bool, shuffle_buffer: int) -> None:
        self.urls, self.transform, self.maker, self.columns = urls, transform, maker, field_columns
        self.local_batch, self.seed, self.rank, self.world = local_batch, seed, rank, world
        self.start_step, self.skip_bad, self.augment, self.shuffle_buffer = start_step, skip_bad, augment, \
            shuffle_buffer

    def __iter__(self):
        from clipcomp.datasets.webdataset import raw_samples, sample_image, sample_text

        info = torch.utils.data.get_worker_info()
        n_workers, loader_wid = (info.num_workers, info.id) if info else (1, 0)
        # DataLoader hands out batches from its workers in turn starting at worker 0, so after resuming at step s
        # loader worker w produces global steps s + w, s + w + W, ...: it plays stream part (s + w) mod W.
        wid = (self.start_step + loader_wid) % n_workers
        unit, units = self.rank * n_workers + wid, self.world * n_workers
        done_by_me = (self.start_step - wid + n_workers - 1) // n_workers if self.start_step > wid else 0
        bad: list[str] = []
        errors: list[str] = []

        def on_bad(url, exc):
            why = str(exc) if isinstance(exc, ClipcompError) else f"{url}: unreadable shard ({_reason(exc)})"
            if not self.skip_bad:
                raise ClipcompError(why)
            bad.append(why)

        stream = raw_samples(self.urls, unit, units, self.seed, self.shuffle_buffer, on_bad)
        try:
            for _ in range(done_by_me * self.local_batch):
                next(stream)
            k = done_by_me
            usable, first_epoch, n_skipped, first_skip = 0, None, 0, "?"
            while True:
                images, caps = [], []
                values: dict[str, list] = {f: [] for f in self.columns}
                while len(images) < self.local_batch:
                    s = next(stream)
                    first_epoch = s.get("__epoch__", 0) if first_epoch is None else first_epoch
                    if not usable and s.get("__epoch__", 0) > first_epoch:  # a whole pass, nothing usable
                        raise ClipcompError(f"{', '.join(self.urls[:3])}{' ...' if len(self.urls) > 3 else ''}: no "
                                            f"usable sample in a full pass over the shards ({n_skipped:,} "
                                            f"skipped; first: {first_skip})")
                    where = f"{s.get('__url__', '?')}:{s.get('__key__', '?')}"
                    img, text = sample_image(s), sample_text(s)
                    if img is None or text is None:
                        why = f"{where}: sample without {'an image' if img is None else 'a caption'} (.jpg/.png + .txt)"
                        if not self.skip_bad:
                            raise ClipcompError(why)
                        bad.append(why)
                        n_skipped, first_skip = n_skipped + 1, first_skip if n_skipped else why
                        continue
                    try:
                        row = self._fields(s, where)
                        if self.augment:
                            _seed_item(self.seed, k * n_workers + wid, len(images))
                        tensor = _decode(img[1], self.transform)
                    except ClipcompError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - PIL raises many types for a bad image
                        why = f"{where}: cannot decode image ({_reason(exc)})"
                        if not self.skip_bad:
                            raise ClipcompError(why) from None
                        bad.append(why)
                        n_skipped, first_skip = n_skipped + 1, first_skip if n_skipped else why
                        continue
                    usable += 1
                    images.append(tensor)
                    caps.append(text)
                    for f in self.columns:
                        values[f].append(row[f])
                batch = self.maker.make(torch.stack(images), caps, values, bad)
                bad = []
                k += 1
                yield batch
        except ClipcompError as exc:
            errors.append(str(exc))
        if errors:
            yield {"error": errors[0]}

    def _fields(self, sample: dict, where: str) -> dict:
        if not self.columns:
            return {}
        meta = {}
        if "json" in sample:
            try:
                meta = json.loads(sample["json"])
            except ValueError:
                raise ClipcompError(f"{where}: .json is not valid JSON") from None
        out = {}
        for f, col in self.columns.items():
            if col in meta:
                out[f] = meta[col]
            elif f"{col}.txt" in sample or col in sample:
                v = sample.get(f"{col}.txt", sample.get(col))
                out[f] = v.decode("utf-8") if isinstance(v, bytes) else v
            else:
                raise ClipcompError(f"{where}: no {col!r} in the sample's .json or as a '.{col}' file (needed for "
                                    f"field {f!r})")
        return out


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@dataclass
class TrainData:
    """An opened training source: `loader(start, end)` yields the batch dicts of those steps."""

    format: str
    name: str
    n_items: int | None  # None for streams
    make_loader: object
    resume: str  # how resuming works for this source
    fields: dict[str, str]

    def loader(self, start: int, end: int):
        return self.make_loader(start, end)


def open_train_data(spec: DataSpec, lm, text_fields: tuple[str, ...], num_fields: tuple[str, ...], batch_size: int,
                    seed: int, rank: int = 0, world: int = 1, workers: int = 0) -> TrainData:
    """Open `spec` for the model `lm` and check that it provides every field the loss declares."""
    from clipcomp.models import import_open_clip

    oc = import_open_clip()
    fmt = detect_format(spec.data) if spec.data_format == "auto" else spec.data_format
    if fmt not in FORMATS[1:]:
        raise ClipcompError(f"--data-format {fmt!r}: expected one of {', '.join(FORMATS)}")
    visual = lm.model.visual
    cfg = getattr(visual, "preprocess_cfg", {}) or {}
    size = visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    mean = cfg.get("mean") or oc.constants.OPENAI_DATASET_MEAN
    std = cfg.get("std") or oc.constants.OPENAI_DATASET_STD
    transform = oc.image_transform(size, is_train=spec.augment, mean=mean, std=std,
                                   interpolation=cfg.get("interpolation"), resize_mode=cfg.get("resize_mode"))
    wanted = tuple(text_fields) + tuple(num_fields)
    maker = _BatchMaker(lm.tokenizer, tuple(text_fields), tuple(num_fields))
    local = batch_size // world
    loader_kw = {"num_workers": workers, "collate_fn": _identity, "pin_memory": lm.device.startswith("cuda")}
    if workers > 0:
        loader_kw["prefetch_factor"] = 2

    def columns_for(available: list[str], where: str, defaults: dict[str, str]) -> dict[str, str]:
        cols = {}
        for f in wanted:
            col = spec.field_columns.get(f) or defaults.get(f) or f
            if available is not None and col not in available:
                raise ClipcompError(f"{where}: the loss needs batch field {f!r} but there is no column {col!r} "
                                    f"(columns: {', '.join(available)}); map one with --field {f}=COLUMN")
            cols[f] = col
        return cols

    if fmt == "synthetic":
        from clipcomp.synth.dataset import SynthDataset

        ds = SynthDataset(spec.data, "train")
        cols = columns_for(ds.table.column_names, spec.data, SYNTH_FIELDS)
        dataset = SynthTrainSet(ds, size, mean, std, maker, cols)
        name, n = os.path.basename(os.path.normpath(spec.data)), len(ds)
    elif fmt == "arrays":
        from clipcomp.datasets.arrays import ArraysDataset

        ds = ArraysDataset(spec.data, spec.caption_column or "caption")
        cols = columns_for(ds.table.column_names, spec.data, {})
        dataset = SynthTrainSet(ds, size, mean, std, maker, cols)
        name, n = os.path.basename(os.path.normpath(spec.data)), len(ds)
    elif fmt in ("coco", "manifest"):
        from clipcomp.datasets.image_text import load_coco_pairs, load_pairs_manifest

        # the format is already decided (auto-detected or named with --data-format)
        data = load_coco_pairs(spec.data, spec.images) if fmt == "coco" else \
            load_pairs_manifest(spec.data, spec.images, spec.image_column, spec.caption_column)
        cols = columns_for(list(data.fields), spec.data, {})
        dataset = MapTrainSet(data, transform, maker, cols, spec.skip_bad, spec.augment, seed)
        name, n = data.name, len(data)
    else:
        from clipcomp.datasets.webdataset import expand_shards

        urls = expand_shards(spec.data)
        cols = columns_for(None, spec.data, {})

        def make_stream(start: int, end: int):
            stream = ShardStream(urls, transform, maker, cols, local, seed, rank, world, start, spec.skip_bad,
                                 spec.augment, spec.shuffle_buffer)
            dl = torch.utils.data.DataLoader(stream, batch_size=None, **loader_kw)
            return _take(dl, end - start)

        return TrainData("webdataset", os.path.basename(urls[0]) + (f" (+{len(urls) - 1} shards)" if len(urls) > 1
                                                                    else ""), None, make_stream,
                         f"exact, by skipping the raw samples already used ({len(urls)} shards; same process and "
                         "loader-worker counts needed for the same order)", cols)

    if n < local:
        raise ClipcompError(f"{spec.data}: {n} training items, fewer than one batch of {local}")

    def make_map(start: int, end: int):
        sampler = StepBatchSampler(n, batch_size, seed, start, end, rank, world)
        return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, **loader_kw)

    return TrainData(fmt, name, n, make_map, "exact (rows of step s are drawn from the seed and s)", cols)


def _take(iterable, n: int):
    it = iter(iterable)
    for _ in range(n):
        yield next(it)
