"""Embeddings to files: any image or caption source → sharded Parquet (`id`, `embedding` as a fixed-size list of
float16/float32, L2-normalized) + meta.json (model identity, preprocessing, dimension). Resumable per shard
(a shard is written atomically and skipped when present), reusing the Embedder and its content-keyed cache.
Several processes split the shards with `--shard-range i/n` and write into the same directory: the result is
the same set of files as one process writes."""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from clipcomp.errors import ClipcompError
from clipcomp.io import atomic_output, write_parquet

SHARD = "part-{:05d}.parquet"
NORM_TOLERANCE = 1e-2  # |‖v‖ − 1| beyond float16 round-off: the vector is normalized on read


@dataclass
class Items:
    """What to embed: ids and, per id, an image path / in-memory bytes / a caption."""

    ids: list[str]
    values: list  # image paths (str), image bytes, or captions
    modality: str  # image | text
    source: str


def collect_items(inp: str, modality: str = "image", images: str | None = None, image_column: str | None = None,
                  text_column: str | None = None) -> Items:
    """Image folders (recursive), manifests (image/text columns), COCO captions JSON, WebDataset shards."""
    from clipcomp.datasets.common import IMAGE_EXTENSIONS
    from clipcomp.datasets.webdataset import sample_image, sample_text

    if modality not in ("image", "text"):
        raise ClipcompError(f"--modality {modality!r}: expected image or text")
    low = inp.lower()
    if os.path.isdir(inp) and not glob.glob(os.path.join(inp, "*.tar")):
        if modality == "text":
            raise ClipcompError(f"{inp}: an image folder has no captions; use --modality image")
        paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(inp) for f in fs if f.lower().endswith(
            IMAGE_EXTENSIONS))
        if not paths:
            raise ClipcompError(f"{inp}: no images found")
        return Items(paths, paths, modality, inp)
    if low.endswith(".tar") or "{" in inp or os.path.isdir(inp) or "*" in inp:
        from webdataset.tariterators import tarfile_samples

        from clipcomp.datasets.webdataset import expand_shards

        ids, values = [], []
        for url in expand_shards(inp):
            try:
                for s in tarfile_samples(iter([{"url": url}])):
                    key = f"{os.path.basename(url)}/{s['__key__']}"
                    v = sample_image(s) if modality == "image" else sample_text(s)
                    if v is None:
                        continue
                    ids.append(key)
                    values.append(v[1] if modality == "image" else v)
            except Exception as exc:  # noqa: BLE001 - a corrupt tar
                raise ClipcompError(f"{url}: unreadable shard ({type(exc).__name__}: {exc})") from None
        if not ids:
            raise ClipcompError(f"{inp}: no {modality} samples in the shards")
        return Items(ids, values, modality, inp)
    if low.endswith(".json"):
        from clipcomp.datasets.coco import load_coco_captions

        data = load_coco_captions(inp, images)
        if modality == "image":
            return Items(list(data.paths), list(data.paths), modality, inp)
        return Items(list(data.captions), list(data.captions), modality, inp)
    from clipcomp.datasets.image_text import CAPTION_COLUMNS, IMAGE_COLUMNS
    from clipcomp.io import read_table

    table = read_table(inp)
    names = table.column_names
    cands = (image_column,) if image_column else IMAGE_COLUMNS
    if modality == "text":
        cands = (text_column,) if text_column else CAPTION_COLUMNS
    col = next((c for c in cands if c in names), None)
    if col is None:
        raise ClipcompError(f"{inp}: no {'image path' if modality == 'image' else 'text'} column; name it with "
                            f"{'--image-column' if modality == 'image' else '--text-column'} "
                            f"(columns: {', '.join(names)})")
    root = images or os.path.dirname(os.path.abspath(inp))
    vals = [str(v) for v in table.column(col).to_pylist()]
    if modality == "image":
        vals = [v if os.path.isabs(v) else os.path.join(root, v) for v in vals]
    return Items(vals, vals, modality, inp)


def embed_to_files(inp: str, out: str, model: str | None = "clipcomp-tiny", pretrained: str | None = None,
                   modality: str = "image", images: str | None = None, image_column: str | None = None,
                   text_column: str | None = None, shard_size: int = 8192, dtype: str = "float16",
                   batch_size: int = 64, device: str = "auto", cache_dir: str | None = "default",
                   shard_range: tuple[int, int] = (0, 1), seed: int = 0, force: bool = False,
                   progress: bool = True, engine=None) -> dict:
    """Embed `inp` into OUT/part-NNNNN.parquet + OUT/meta.json; returns the meta. One task per output shard:
    in this process (`engine` local, the default), or on a Dask cluster (EngineOptions engine="dask"), each
    worker loading the model once and writing its shards itself; a shard on disk is complete, so an interrupted
    or partly failed run resumes where it stopped."""
    from clipcomp.io import atomic_write_json, check_output_path, prepare_output
    from clipcomp.models import ModelSpec
    from clipcomp.models.embed import make_embedder
    from clipcomp.procs import EngineOptions

    check_output_path(out)
    engine = engine or EngineOptions()
    engine.validate()
    if dtype not in ("float16", "float32"):
        raise ClipcompError(f"--dtype {dtype!r}: expected float16 or float32")
    if shard_size < 1:
        raise ClipcompError(f"--shard-size must be ≥ 1 (got {shard_size})")
    part, parts = shard_range
    if not 0 <= part < parts:
        raise ClipcompError(f"--shard-range {part}/{parts}: expected i/n with 0 ≤ i < n")
    items = collect_items(inp, modality, images, image_column, text_column)
    spec = ModelSpec(model, pretrained, device, "auto", batch_size, None, cache_dir, seed)
    emb, info = make_embedder(spec, progress=progress)
    n_shards = (len(items.ids) + shard_size - 1) // shard_size
    settings = {"input": os.path.abspath(inp), "modality": modality, "model_identity": info["identity"],
                "shard_size": shard_size, "dtype": dtype, "n_items": len(items.ids)}
    if part == 0 or not os.path.exists(os.path.join(out, ".clipcomp")):
        prepare_output(out, "embed", settings, force=force and part == 0, markers=("meta.json",))
    from clipcomp.progress import progress_bar

    todo = [s for s in range(part, n_shards, parts) if not os.path.exists(os.path.join(out, SHARD.format(s)))]
    n_todo = sum(len(items.ids[s * shard_size:(s + 1) * shard_size]) for s in todo)
    if engine.engine == "dask":
        dim = _embed_on_dask(items, todo, out, spec, modality, shard_size, dtype, engine, n_todo, progress)
    else:
        with progress_bar(n_todo, "items", enabled=progress, desc="embed") as bar:
            emb.shared_bar = bar  # one bar across the shards, not one per shard
            try:
                dim = _embed_shards(items, todo, out, emb, modality, shard_size, dtype, bar)
            finally:
                emb.shared_bar = None
    meta = {"model": info["model"], "pretrained": info["pretrained"], "model_identity": info["identity"],
            "modality": modality, "dim": dim or _dim_of(out), "dtype": dtype, "n_items": len(items.ids),
            "n_shards": n_shards, "shard_size": shard_size, "source": os.path.abspath(inp),
            "preprocess": repr(emb.loaded.preprocess) if modality == "image" else None}
    if all(os.path.exists(os.path.join(out, SHARD.format(s))) for s in range(n_shards)):
        atomic_write_json(os.path.join(out, "meta.json"), meta)
    return meta


def _embed_shards(items: Items, shards: list[int], out: str, emb, modality: str, shard_size: int, dtype: str,
                  bar) -> int | None:
    """Embed and write each shard (atomically: a shard on disk is complete); returns the dimension."""
    dim = None
    for s in shards:
        dim = _embed_one(items.ids[s * shard_size:(s + 1) * shard_size],
                         items.values[s * shard_size:(s + 1) * shard_size],
                         os.path.join(out, SHARD.format(s)), emb, modality, dtype, bar)
    return dim


_WORKER_EMBEDDERS: dict = {}  # per Dask worker process: one loaded model per spec


class _Counter:
    """A stand-in progress bar inside a worker (the parent's bar advances per finished shard)."""

    def update(self, n: int = 1) -> None:
        pass


def embed_shard_task(task: tuple[int, list, list], job: dict) -> dict:
    """A Dask worker's share of `embed`: one output shard, with the worker's own model (loaded on its first task,
    on its GPU when it has one); the file is written by the worker, not sent back."""
    from clipcomp.models.embed import make_embedder

    s, ids, vals = task
    key = repr(job["spec"])
    emb = _WORKER_EMBEDDERS.get(key)
    if emb is None:
        emb = _WORKER_EMBEDDERS[key] = make_embedder(job["spec"], progress=False)[0]
        emb.num_workers = 0  # decode in the worker's thread: a Dask worker is a daemon and cannot fork loaders
    dim = _embed_one(ids, vals, os.path.join(job["out"], SHARD.format(s)), emb, job["modality"], job["dtype"],
                     _Counter())
    return {"shard": s, "n": len(ids), "dim": dim}


def _embed_on_dask(items: Items, todo: list[int], out: str, spec, modality: str, shard_size: int, dtype: str,
                   engine, n_todo: int, progress: bool) -> int | None:
    """The shards of `todo` as Dask tasks. Workers that declare a GPU resource (`dask worker --resources GPU=1`)
    get one task — one model — per GPU; `--device cuda` on a cluster without GPUs stops in one line."""
    from clipcomp.procs import Engine
    from clipcomp.progress import progress_bar

    with Engine(engine) as eng:
        resources = None
        if spec.device.startswith("cuda") or spec.device == "auto":
            has = [r.get("GPU", 0) > 0 for r in eng.worker_resources()]
            if spec.device.startswith("cuda") and not any(has):
                from clipcomp.models import torch_has_cuda

                if not any(eng.run_on_workers(torch_has_cuda).values()):
                    raise ClipcompError(f"--device {spec.device}: no Dask worker has a CUDA GPU")
            if has and all(has):
                resources = {"GPU": 1}
        tasks = [(s, items.ids[s * shard_size:(s + 1) * shard_size], items.values[s * shard_size:(s + 1) * shard_size])
                 for s in todo]
        job = eng.share({"spec": spec, "out": out, "modality": modality, "dtype": dtype})
        dim = None
        with progress_bar(n_todo, "items", enabled=progress, desc="embed") as bar:
            for _, r in eng.map(embed_shard_task, tasks, job, resources=resources):
                dim = r["dim"] or dim
                bar.update(r["n"])
    return dim


def _embed_one(ids: list, vals: list, path: str, emb, modality: str, dtype: str, bar) -> int:
    """Embed one shard's items and write them atomically; returns the dimension."""
    import io

    from PIL import Image

    if modality == "text":
        vecs = emb.texts(vals)
        bar.update(len(vals))
    elif isinstance(vals[0], bytes):
        arr = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB").resize(
            (emb.loaded.info.get("image_size") or 224,) * 2)) for b in vals])
        vecs = emb.arrays(arr)
        bar.update(len(vals))
    else:  # the embedder advances the shared bar image by image
        emb.skip_bad_hint = "; fix or remove it (every id gets a vector, so embed cannot skip one)"
        res = emb.images(vals)
        vecs = res.embeddings
        bar.update(len(vals) - res.computed)  # cached images advance it here
    dim = vecs.shape[1]
    vecs = vecs.astype(dtype)
    table = pa.table({"id": pa.array(ids, pa.string()),
                      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), dim)})
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp)
    return dim


def read_shard(path: str, dim: int, with_ids: bool = True) -> tuple[list[str] | None, np.ndarray, bool]:
    """(ids, float32 matrix, normalized) of one shard file, checked at the boundary: a non-finite value or an
    all-zero vector stops with one line naming the shard; vectors off unit length (beyond float16 round-off) are
    L2-normalized — every consumer computes cosines. A module function, so a Dask worker reads its own shard."""
    try:
        t = pq.read_table(path, columns=["id", "embedding"] if with_ids else ["embedding"])
        vec = t.column("embedding").combine_chunks()
        mat = np.asarray(vec.values.to_numpy(zero_copy_only=False), np.float32).reshape(len(t), dim)
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        raise ClipcompError(f"{path}: unreadable embedding shard ({str(exc).splitlines()[0]})") from None
    if not np.isfinite(mat).all():
        bad = int((~np.isfinite(mat)).any(axis=1).sum())
        raise ClipcompError(f"{path}: {bad} vector(s) with NaN or infinite values")
    norms = np.linalg.norm(mat, axis=1)
    if (norms == 0).any():
        raise ClipcompError(f"{path}: {int((norms == 0).sum())} all-zero vector(s) (no direction, no cosine)")
    normalized = bool(len(norms) and np.abs(norms - 1).max() > NORM_TOLERANCE)
    if normalized:
        mat = mat / norms[:, None]
    return (t.column("id").to_pylist() if with_ids else None), mat, normalized


def pq_rows(path: str) -> int:
    """Rows of one shard file, from its Parquet footer (no data read)."""
    return pq.ParquetFile(path).metadata.num_rows


def read_ids(path: str) -> list[str]:
    """The ids of one shard file (no vectors read)."""
    try:
        return pq.read_table(path, columns=["id"]).column("id").to_pylist()
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        raise ClipcompError(f"{path}: unreadable embedding shard ({str(exc).splitlines()[0]})") from None


def _dim_of(out: str) -> int | None:
    files = sorted(glob.glob(os.path.join(out, "part-*.parquet")))
    return pq.read_schema(files[0]).field("embedding").type.list_size if files else None


@dataclass
class EmbeddingSet:
    """A directory of embedding shards: meta + the shard files (read lazily, one shard at a time)."""

    path: str
    meta: dict
    files: list[str]

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    normalized: bool = False  # set when a shard's vectors were not unit-length and were L2-normalized on read

    def shards(self):
        """Yields (ids, float32 matrix) per shard, checked at the boundary (`read_shard`); `normalized` records
        whether a shard's vectors were off unit length and were L2-normalized."""
        for f in self.files:
            ids, mat, normalized = read_shard(f, self.dim)
            self.normalized |= normalized
            yield ids, mat

    def load(self) -> tuple[list[str], np.ndarray]:
        ids, mats = [], []
        for i, m in self.shards():
            ids += i
            mats.append(m)
        return ids, (np.concatenate(mats) if mats else np.zeros((0, self.dim), np.float32))


def open_embeddings(path: str, allow_empty: bool = False) -> EmbeddingSet:
    if not os.path.isdir(path):
        raise ClipcompError(f"{path}: not an embedding directory (run `clipcomp embed`)")
    meta_path = os.path.join(path, "meta.json")
    if not os.path.exists(meta_path):
        raise ClipcompError(f"{path}: no meta.json (an unfinished `clipcomp embed`? rerun it to finish)")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClipcompError(f"{meta_path}: unreadable ({exc})") from None
    files = sorted(glob.glob(os.path.join(path, "part-*.parquet")))
    if len(files) != meta.get("n_shards", len(files)):
        raise ClipcompError(f"{path}: {len(files)} shards on disk, meta.json says {meta.get('n_shards')}")
    if not isinstance(meta.get("dim"), int) or meta["dim"] < 1:
        raise ClipcompError(f"{meta_path}: no valid 'dim' (got {meta.get('dim')!r})")
    if not allow_empty and (not files or meta.get("n_items") == 0):
        raise ClipcompError(f"{path}: an empty embedding set (no vectors)")
    return EmbeddingSet(path, meta, files)


def write_embeddings(out: str, ids: list[str], vecs: np.ndarray, meta: dict, shard_size: int = 8192,
                     dtype: str = "float16") -> EmbeddingSet:
    """Write in-memory vectors in the same layout (tests, derived sets)."""
    from clipcomp.io import atomic_write_json

    os.makedirs(out, exist_ok=True)
    vecs = np.asarray(vecs, np.float32)
    n_shards = max(1, (len(ids) + shard_size - 1) // shard_size)
    for s in range(n_shards):
        sl = slice(s * shard_size, (s + 1) * shard_size)
        v = vecs[sl].astype(dtype)
        write_parquet(pa.table({"id": pa.array(ids[sl], pa.string()),
                                 "embedding": pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)),
                                                                                vecs.shape[1])}),
                       os.path.join(out, SHARD.format(s)))
    full = {"dim": int(vecs.shape[1]), "dtype": dtype, "n_items": len(ids), "n_shards": n_shards,
            "shard_size": shard_size, **meta}
    atomic_write_json(os.path.join(out, "meta.json"), full)
    return open_embeddings(out, allow_empty=True)
