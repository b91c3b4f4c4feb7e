"""Synthetic datasets on disk: image shards (`images/<split>-NNNNN.npy`, uint8 N×H×W×3) plus a Parquet
manifest with captions and every scene's ground truth. Shards are generated in parallel, each from its own
seed, and streamed to disk, so 1M scenes never sit in memory; a shard already on disk is not redone.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from dataclasses import asdict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from clipcomp.config import typed
from clipcomp.errors import ClipcompError
from clipcomp.io import atomic_output, atomic_write_json
from clipcomp.synth.captions import (
    CaptionKnobs,
    caption_scene,
    full_caption,
    join,
    phrase,
)
from clipcomp.synth.negatives import hard_negative
from clipcomp.synth.render import render_scene
from clipcomp.synth.world import Obj, Scene, WorldConfig, sample_scene

_SPLIT_CODE = {"train": 0, "test": 1, "val": 2}
OBJ_TYPE = pa.struct([("shape", pa.string()), ("colour", pa.string()), ("size", pa.string()),
                      ("x", pa.int32()), ("y", pa.int32()), ("extent", pa.int32())])


@typed
class DatasetSpec:
    out: str = "runs/synth"
    n_train: int = 20_000
    n_test: int = 1_000
    seed: int = 0
    shard_size: int = 10_000
    workers: int = 1

    def validate(self, where: str = "dataset") -> None:
        if self.n_train < 0 or self.n_test < 0 or self.n_train + self.n_test == 0:
            raise ClipcompError(f"{where}: n_train and n_test must be ≥ 0 and not both 0")
        if self.shard_size < 1:
            raise ClipcompError(f"{where}.shard_size must be ≥ 1")
        if self.workers < 1:
            raise ClipcompError(f"{where}.workers must be ≥ 1")




def _shard(job: tuple) -> dict:
    out, split, idx, count, seed, world, knobs = job
    part_path = os.path.join(out, "images", f"{split}-{idx:05d}.parquet")
    if os.path.exists(part_path):
        return {"split": split, "idx": idx, "skipped": True}
    rng = np.random.default_rng([seed, _SPLIT_CODE[split], idx])
    images = np.empty((count, world.resolution, world.resolution, 3), np.uint8)
    rows: dict[str, list] = {k: [] for k in ("image", "shard", "index", "split", "caption", "full_caption",
                                             "negative_caption", "negative_kind", "objects", "n_objects",
                                             "mentioned", "mentioned_attributes", "anchor", "style")}
    shard_name = f"images/{split}-{idx:05d}.npy"
    for n in range(count):
        scene = sample_scene(world, rng)
        style = "flat"
        if world.styles:
            names = sorted(world.styles)
            p = np.array([world.styles[k] for k in names], float)
            style = names[int(np.random.default_rng([seed, _SPLIT_CODE[split], idx, n, 77]).choice(len(names),
                                                                                                  p=p / p.sum()))]
        if style == "flat":
            images[n] = render_scene(scene)
        else:
            from clipcomp.synth.styles import render_scene_styled

            images[n] = render_scene_styled([(o.shape, o.colour, (o.x, o.y, o.extent)) for o in scene.objects],
                                            world.resolution, style, np.random.default_rng([seed, idx, n, 78]))
        truth = caption_scene(scene, knobs, rng)
        objects_text = join([phrase(scene.objects[m], a) for m, a in zip(truth.mentioned, truth.attributes,
                                                                             strict=True)])
        neg, kind = hard_negative(scene, truth.mentioned, truth.attributes, rng, truth.caption, objects_text,
                                  world.colours, world.shapes)
        rows["image"].append(f"{shard_name}#{n}")
        rows["shard"].append(shard_name)
        rows["index"].append(n)
        rows["split"].append(split)
        rows["caption"].append(truth.caption)
        rows["full_caption"].append(full_caption(scene))
        rows["negative_caption"].append(neg)
        rows["negative_kind"].append(kind)
        rows["objects"].append([o.as_dict() for o in scene.objects])
        rows["n_objects"].append(len(scene.objects))
        rows["mentioned"].append(truth.mentioned)
        rows["mentioned_attributes"].append(truth.attributes)
        rows["anchor"].append(truth.anchor)
        rows["style"].append(style)
    npy = os.path.join(out, shard_name)
    with atomic_output(npy) as tmp:
        np.save(tmp, images)
    table = pa.table(rows).cast(manifest_schema())
    with atomic_output(part_path) as tmp:  # the manifest part last: the shard counts as done
        pq.write_table(table, tmp)
    return {"split": split, "idx": idx, "skipped": False}


def manifest_schema() -> pa.Schema:
    return pa.schema([("image", pa.string()), ("shard", pa.string()), ("index", pa.int32()),
                      ("split", pa.string()), ("caption", pa.string()), ("full_caption", pa.string()),
                      ("negative_caption", pa.string()), ("negative_kind", pa.string()),
                      ("objects", pa.list_(OBJ_TYPE)), ("n_objects", pa.int32()), ("mentioned", pa.list_(pa.int32())),
                      ("mentioned_attributes", pa.list_(pa.list_(pa.string()))), ("anchor", pa.int32()),
                      ("style", pa.string())])


def generate(world: WorldConfig, knobs: CaptionKnobs, spec: DatasetSpec, progress: bool = True,
             force: bool = False) -> dict:
    """Write the dataset (shards already on disk under the same settings are kept); returns its meta.json.
    A directory holding another dataset or other results is refused, or replaced with `force`."""
    world.validate()
    knobs.validate()
    spec.validate()
    meta_path = os.path.join(spec.out, "meta.json")
    settings = {"world": asdict(world), "captions": asdict(knobs),
                "dataset": {k: v for k, v in asdict(spec).items() if k not in ("out", "workers")}}
    from clipcomp.io import prepare_output

    state = prepare_output(spec.out, "synth generate", settings, force=force, markers=("manifest.parquet",))
    os.makedirs(os.path.join(spec.out, "images"), exist_ok=True)
    if state.reuse and os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            return json.load(f)
    jobs = []
    for split, n in (("train", spec.n_train), ("test", spec.n_test)):
        for idx, start in enumerate(range(0, n, spec.shard_size)):
            jobs.append((spec.out, split, idx, min(spec.shard_size, n - start), spec.seed, world, knobs))
    t0 = time.perf_counter()
    from clipcomp.progress import progress_bar

    with progress_bar(len(jobs), "shards", enabled=progress) as bar:
        if spec.workers > 1 and len(jobs) > 1:
            from clipcomp.procs import die_with_parent

            with mp.get_context("fork" if os.name == "posix" else "spawn").Pool(
                    spec.workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
                for _ in pool.imap_unordered(_shard, jobs):
                    bar.update(1)
        else:
            for job in jobs:
                _shard(job)
                bar.update(1)
    seconds = time.perf_counter() - t0
    with atomic_output(os.path.join(spec.out, "manifest.parquet")) as tmp, \
            pq.ParquetWriter(tmp, manifest_schema()) as writer:
        for _, split, idx, *_ in jobs:
            writer.write_table(pq.read_table(os.path.join(spec.out, "images", f"{split}-{idx:05d}.parquet")))
    meta = {"settings": settings, "n_train": spec.n_train, "n_test": spec.n_test, "n_shards": len(jobs),
            "seconds": seconds, "images_per_second": (spec.n_train + spec.n_test) / seconds if seconds else None}
    atomic_write_json(meta_path, meta)
    return meta


class SynthDataset:
    """Read side: manifest rows of one split, images gathered from memory-mapped shards."""

    def __init__(self, root: str, split: str = "train") -> None:
        path = os.path.join(root, "manifest.parquet")
        if not os.path.exists(path):
            raise ClipcompError(f"{root}: not a synthetic dataset (no manifest.parquet; run `clipcomp synth generate`)")
        table = pq.read_table(path)
        import pyarrow.compute as pc

        self.table = table.filter(pc.equal(table.column("split"), split))
        if self.table.num_rows == 0:
            raise ClipcompError(f"{root}: no '{split}' scenes")
        self.root = root
        self.split = split
        with open(os.path.join(root, "meta.json"), encoding="utf-8") as f:
            self.meta = json.load(f)
        shards = self.table.column("shard").to_pylist()
        self.shard_names = sorted(set(shards))
        sid = {s: i for i, s in enumerate(self.shard_names)}
        self.shard_of = np.array([sid[s] for s in shards], np.int64)
        self.index_in = self.table.column("index").to_numpy().astype(np.int64)
        self._maps = [np.load(os.path.join(root, s), mmap_mode="r") for s in self.shard_names]
        self.captions = self.table.column("caption").to_pylist()
        self.negatives = self.table.column("negative_caption").to_pylist()

    def __len__(self) -> int:
        return self.table.num_rows

    def images(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        out = np.empty((rows.size, *self._maps[0].shape[1:]), np.uint8)
        for s in np.unique(self.shard_of[rows]):
            m = self.shard_of[rows] == s
            out[m] = self._maps[s][self.index_in[rows[m]]]
        return out

    def scenes(self) -> list[Scene]:
        res = self.meta["settings"]["world"]["resolution"]
        return [Scene(tuple(Obj(**o) for o in objs), res) for objs in self.table.column("objects").to_pylist()]
