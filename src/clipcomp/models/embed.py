"""Embedder: batched image and text embeddings with an on-disk cache keyed by model identity and content.

Every finished batch is appended to the cache before the next starts, so an interrupted run resumes where it
stopped and a second run over the same images costs only hashing. Embeddings are L2-normalized float32.

Cache layout: ``CACHE/<model identity>/{img,txt}-<n>.keys.npy`` (content hashes) + ``.emb.npy`` (vectors).
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from clipcomp.errors import ClipcompError
from clipcomp.io import atomic_output
from clipcomp.models import LoadedModel, ModelSpec

KEY_DTYPE = "S32"
FLUSH_ROWS = 2048  # rows per cache shard: the resume granularity


def default_cache_dir() -> str:
    """The embedding cache: $CLIPCOMP_CACHE (as it always was) or ~/.cache/clipcomp/embeddings."""
    return os.environ.get("CLIPCOMP_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "clipcomp", "embeddings"))


def _hash_bytes(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).hexdigest().encode()


def _hash_file(path: str) -> bytes | Exception:
    try:
        with open(path, "rb") as f:
            return _hash_bytes(f.read())
    except OSError as exc:
        return exc


class _Store:
    """Append-only key → vector store for one model and one modality."""

    def __init__(self, root: str | None, kind: str) -> None:
        self.root, self.kind = root, kind
        self.index: dict[bytes, tuple[int, int]] = {}
        self.shards: list[np.ndarray] = []
        self.memory: dict[bytes, np.ndarray] = {}
        if root:
            os.makedirs(root, exist_ok=True)
            for keys_path in sorted(glob.glob(os.path.join(root, f"{kind}-*.keys.npy"))):
                emb_path = keys_path[: -len(".keys.npy")] + ".emb.npy"
                if not os.path.exists(emb_path):
                    continue
                keys = np.load(keys_path)
                emb = np.load(emb_path, mmap_mode="r")
                if len(keys) != len(emb):
                    continue  # a torn pair from a crash: ignore it, those items are recomputed
                s = len(self.shards)
                self.shards.append(emb)
                for i, k in enumerate(keys.tolist()):
                    self.index[k] = (s, i)

    def __contains__(self, key: bytes) -> bool:
        return key in self.index or key in self.memory

    def get(self, key: bytes) -> np.ndarray:
        if key in self.memory:
            return self.memory[key]
        s, i = self.index[key]
        return np.asarray(self.shards[s][i])

    def add(self, keys: list[bytes], emb: np.ndarray) -> None:
        if not self.root:
            for k, e in zip(keys, emb, strict=True):
                self.memory[k] = e
            return
        n = len(glob.glob(os.path.join(self.root, f"{self.kind}-*.keys.npy")))
        while True:
            base = os.path.join(self.root, f"{self.kind}-{n:06d}-{os.getpid()}")
            if not os.path.exists(base + ".keys.npy"):
                break
            n += 1
        with atomic_output(base + ".emb.npy") as tmp:
            np.save(tmp, emb.astype(np.float32))
        with atomic_output(base + ".keys.npy") as tmp:  # keys last: a shard counts once both exist
            np.save(tmp, np.array(keys, dtype=KEY_DTYPE))
        s = len(self.shards)
        self.shards.append(emb.astype(np.float32))
        for i, k in enumerate(keys):
            self.index[k] = (s, i)


@dataclass
class ImageEmbeddings:
    embeddings: np.ndarray  # (n_ok, D), rows for the paths in `paths` order where ok
    ok: np.ndarray  # bool mask over the requested paths
    errors: list[dict] = field(default_factory=list)  # {"path", "reason"} for skipped images
    computed: int = 0  # how many were embedded now (the rest came from the cache)


class _ImageDataset:
    def __init__(self, paths: Sequence[str], preprocess) -> None:
        self.paths, self.preprocess = paths, preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        try:
            with Image.open(self.paths[i]) as img:
                return i, self.preprocess(img.convert("RGB")), ""
        except Exception as exc:  # noqa: BLE001 - any decoding failure is reported per image
            return i, None, f"{type(exc).__name__}: {exc}"


def _collate(batch):
    import torch

    good = [(i, x) for i, x, _ in batch if x is not None]
    bad = [(i, err) for i, x, err in batch if x is None]
    idx = [i for i, _ in good]
    tensor = torch.stack([x for _, x in good]) if good else None
    return idx, tensor, bad


@runtime_checkable
class EmbedderLike(Protocol):
    """What every task needs from a model: L2-normalized embeddings of image files, in-memory images and texts.
    `Embedder` is the implementation; a test or another backend only has to provide these three methods."""

    def images(self, paths: Sequence[str], skip_bad: bool = False) -> ImageEmbeddings: ...

    def arrays(self, images: np.ndarray) -> np.ndarray: ...

    def texts(self, texts: Sequence[str]) -> np.ndarray: ...


class Embedder:
    """Embed images and texts with a loaded model, caching by content."""

    def __init__(self, loaded: LoadedModel, cache_dir: str | None = "default", batch_size: int = 64,
                 num_workers: int | None = None, progress: bool = True) -> None:
        self.loaded = loaded
        root = default_cache_dir() if cache_dir == "default" else cache_dir
        self.cache_root = os.path.join(root, loaded.identity) if root else None
        self.batch_size = batch_size
        self.num_workers = min(4, max(0, (os.cpu_count() or 1) - 1)) if num_workers is None else num_workers
        self.progress = progress
        self._img = _Store(self.cache_root, "img")
        self._txt = _Store(self.cache_root, "txt")

    # ------------------------------------------------------------------------------------------- images
    skip_bad_hint = "; use --skip-bad to record and skip it"  # callers without that option replace the advice
    shared_bar = None  # a caller's progress bar (one bar across many calls, e.g. embed's shards)

    def images(self, paths: Sequence[str], skip_bad: bool = False) -> ImageEmbeddings:
        paths = [os.fspath(p) for p in paths]
        with ThreadPoolExecutor(max_workers=8) as pool:
            hashed = list(pool.map(_hash_file, paths))
        errors: list[dict] = []
        keys: list[bytes | None] = []
        for p, h in zip(paths, hashed, strict=True):
            if isinstance(h, Exception):
                reason = "not found" if isinstance(h, FileNotFoundError) else f"unreadable ({h})"
                if not skip_bad:
                    raise ClipcompError(f"{p}: image {reason}{self.skip_bad_hint}")
                errors.append({"path": p, "reason": reason})
                keys.append(None)
            else:
                keys.append(h)
        todo: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            if k is not None and k not in self._img and k not in todo:
                todo[k] = i
        computed, bad = self._embed_images([paths[i] for i in todo.values()], list(todo))
        bad_keys = set()
        for path, key, reason in bad:
            bad_keys.add(key)
            if not skip_bad:
                raise ClipcompError(f"{path}: cannot decode image ({reason}); embeddings of the other images are "
                                    f"cached{self.skip_bad_hint}")
            errors.append({"path": path, "reason": f"cannot decode ({reason})"})
        ok = np.array([k is not None and k not in bad_keys for k in keys], dtype=bool)
        if skip_bad and bad_keys:  # identical bad content may appear under several paths
            seen = {e["path"] for e in errors}
            for p, k in zip(paths, keys, strict=True):
                if k in bad_keys and p not in seen:
                    errors.append({"path": p, "reason": "cannot decode"})
        dim = self.loaded.info.get("embed_dim") or 0
        emb = np.stack([self._img.get(k) for k, good in zip(keys, ok, strict=True) if good]) if ok.any() else \
            np.zeros((0, dim), np.float32)
        return ImageEmbeddings(emb, ok, errors, computed)

    def _embed_images(self, paths: list[str], keys: list[bytes]) -> tuple[int, list[tuple[str, bytes, str]]]:
        if not paths:
            return 0, []
        from contextlib import nullcontext

        import torch
        from torch.utils.data import DataLoader

        from clipcomp.progress import progress_bar

        lm = self.loaded
        loader = DataLoader(_ImageDataset(paths, lm.preprocess), batch_size=self.batch_size, shuffle=False,
                            num_workers=self.num_workers, collate_fn=_collate,
                            pin_memory=lm.device.startswith("cuda"))
        bad: list[tuple[str, bytes, str]] = []
        done = 0
        pending_keys: list[bytes] = []
        pending: list[np.ndarray] = []

        def flush():
            if pending:
                self._img.add(list(pending_keys), np.concatenate(pending))
                pending_keys.clear()
                pending.clear()

        try:
            with (nullcontext(self.shared_bar) if self.shared_bar is not None else
                  progress_bar(len(paths), "images", enabled=self.progress)) as bar, torch.inference_mode():
                for idx, batch, batch_bad in loader:
                    bad.extend((paths[i], keys[i], err) for i, err in batch_bad)
                    if batch is not None:
                        x = batch.to(lm.device, dtype=lm.input_dtype, non_blocking=True)
                        with lm.autocast():
                            feats = lm.model.encode_image(x)
                        pending.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy())
                        pending_keys.extend(keys[i] for i in idx)
                        done += len(idx)
                        if len(pending_keys) >= FLUSH_ROWS:
                            flush()
                    bar.update(len(idx) + len(batch_bad))
        finally:
            flush()  # whatever was computed is kept, also when interrupted
        return done, bad

    # ------------------------------------------------------------------------------------------- arrays
    def arrays(self, images: np.ndarray) -> np.ndarray:
        """Embed in-memory uint8 images (N×H×W×3), cached by pixel content; same preprocessing as files."""
        images = np.ascontiguousarray(images, dtype=np.uint8)
        shape = repr(images.shape[1:]).encode()
        keys = [_hash_bytes(shape + img.tobytes()) for img in images]
        todo: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            if k not in self._img and k not in todo:
                todo[k] = i
        if todo:
            import torch
            from PIL import Image

            lm = self.loaded
            idx = list(todo.values())
            with torch.inference_mode():
                for s in range(0, len(idx), self.batch_size):
                    part = idx[s:s + self.batch_size]
                    x = torch.stack([lm.preprocess(Image.fromarray(images[i])) for i in part])
                    with lm.autocast():
                        f = lm.model.encode_image(x.to(lm.device, dtype=lm.input_dtype))
                    f = torch.nn.functional.normalize(f.float(), dim=-1).cpu().numpy()
                    self._img.add([keys[i] for i in part], f)
        if not keys:
            return np.zeros((0, self.loaded.info.get("embed_dim") or 0), np.float32)
        return np.stack([self._img.get(k) for k in keys])

    # -------------------------------------------------------------------------------------------- texts
    def texts(self, texts: Sequence[str]) -> np.ndarray:
        keys = [_hash_bytes(t.encode("utf-8")) for t in texts]
        todo: dict[bytes, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in self._txt and k not in todo:
                todo[k] = t
        if todo:
            self._embed_texts(list(todo.values()), list(todo))
        if not keys:
            return np.zeros((0, self.loaded.info.get("embed_dim") or 0), np.float32)
        return np.stack([self._txt.get(k) for k in keys])

    def _embed_texts(self, texts: list[str], keys: list[bytes]) -> None:
        import torch

        from clipcomp.progress import progress_bar

        lm = self.loaded
        bs = max(self.batch_size, 256)
        show = self.progress and self.shared_bar is None and len(texts) > bs  # a caller's bar counts them instead
        with progress_bar(len(texts), "texts", enabled=show) as bar, torch.inference_mode():
            for s in range(0, len(texts), bs):
                tokens = lm.tokenizer(texts[s:s + bs]).to(lm.device)
                with lm.autocast():
                    feats = lm.model.encode_text(tokens)
                feats = torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy()
                self._txt.add(keys[s:s + bs], feats)
                bar.update(len(feats))


def make_embedder(spec: ModelSpec, progress: bool = True) -> tuple[Embedder, dict]:
    """(Embedder, model info) for a model spec; the info goes into every summary."""
    from clipcomp.models import load_model

    if spec.batch_size < 1:
        raise ClipcompError(f"--batch-size must be ≥ 1 (got {spec.batch_size})")
    model = spec.model
    if model is None:  # the architecture a training checkpoint records, else the default small model
        from clipcomp.models import checkpoint_model_name

        model = checkpoint_model_name(spec.pretrained) or "clipcomp-tiny"
    lm = load_model(model, spec.pretrained, device=spec.device, precision=spec.precision, seed=spec.seed)
    cache = None if spec.cache_dir in (None, "none") else (default_cache_dir() if spec.cache_dir == "default"
                                                           else spec.cache_dir)
    emb = Embedder(lm, cache_dir=cache, batch_size=spec.batch_size, num_workers=spec.loader_workers,
                   progress=progress)
    info = {"model": lm.name, "pretrained": lm.pretrained, "identity": lm.identity, "device": lm.device,
            "precision": lm.precision, "seed": spec.seed}
    return emb, info
