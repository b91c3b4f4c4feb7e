"""The prepared GPU check: one short run (≤ 8 minutes on a GPU machine) that measures what a LAION-scale study
needs from a GPU, writes one JSON of figures, and runs on a CPU machine too (GPU rows skipped, saying why).

Figures (every one named in the JSON, with its unit, device and settings, or `skipped` with the reason):

* ``embed_vit_b32_{fp32,fp16}``: ViT-B-32 image embedding, images/s, through clipcomp's Embedder (the code behind
  ``clipcomp embed``) beside ``bare_open_clip_{fp32,fp16}``, a bare open_clip loop a user would write (DataLoader
  + preprocess + encode_image), on the same JPEGs (the shared COCO images, else the bundled sample), same batch;
* ``train_vit_b32_negclip``: optimizer steps/s of ViT-B-32 with the NegCLIP loss (batch of images, captions and
  one hard negative each; clipcomp's registered loss), AdamW, mixed precision on GPU;
* ``faiss_knn_exact``: exact inner-product kNN, 10k × 1M × 512 (GPU: faiss.knn_gpu; CPU: a 1k × 100k reference
  through faiss.knn, labelled so);
* ``stats_build``: the concept-statistics build (``clipcomp stats build``) on a realistic corpus of N captions
  (10M on the GPU machine; smaller with --quick), captions/s, all cores.

    bash perf/gpu_check.sh                      # a fresh copy: install with the constraints, then run this
    python perf/gpu_check.py -o gpu_check.json  # an installed checkout
    python perf/gpu_check.py --quick            # CPU smoke run (a few minutes on 2 cores)

ViT-B-32 is randomly initialized (no weights are reachable offline): throughput does not depend on the weights.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def images(n: int, tmp: str) -> list[str]:
    """n distinct JPEG files: the shared COCO images (239 in ../shared/data/coco_mini), else the bundled sample;
    when there are fewer than n, shifted crops of them re-encoded into `tmp` — every file's content differs, so
    neither pipeline can reuse a decoded or embedded image (clipcomp's Embedder keys its cache by content)."""
    from PIL import Image

    pool = sorted(glob.glob(str(ROOT.parent / "shared" / "data" / "coco*" / "**" / "*.jpg"), recursive=True))
    if not pool:
        pool = sorted(glob.glob(str(ROOT / "tests" / "data" / "coco_sample" / "images" / "*.jpg")))
    if n <= len(pool):
        return pool[:n]
    out = []
    for i in range(n):
        src, k = pool[i % len(pool)], i // len(pool)
        with Image.open(src) as im:
            w, h = im.size
            crop = im.convert("RGB").crop((k % 17, k % 13, w - (k % 11), h - (k % 7)))
            path = os.path.join(tmp, f"{i:06d}.jpg")
            crop.save(path, quality=90)
        out.append(path)
    return out


def figure(name: str, value: float | None, unit: str, device: str, skipped: str | None = None, **settings) -> dict:
    row = {"name": name, "value": value, "unit": unit, "device": device, "skipped": skipped, "settings": settings}
    shown = f"{value:,.2f} {unit}" if value is not None else f"skipped: {skipped}"
    print(f"{name:34s} {shown}  [{device}] {settings}", flush=True)
    return row


def embed_rows(device: str, n: int, batch: int, workers: int, tmp: str) -> list[dict]:
    import torch

    from clipcomp.models import load_model
    from clipcomp.models.embed import Embedder

    out = []
    paths = images(n, tmp)
    for precision in ("fp32", "fp16"):
        if precision == "fp16" and device == "cpu":
            for name in ("embed_vit_b32_fp16", "bare_open_clip_fp16"):
                out.append(figure(name, None, "images/s", device, "fp16 inference needs a GPU (none here)"))
            continue
        lm = load_model("ViT-B-32", None, device=device, precision="fp16" if precision == "fp16" else "fp32")
        emb = Embedder(lm, cache_dir=None, batch_size=batch, num_workers=workers, progress=False)
        emb.images(paths[: batch * 2])  # warm-up: kernels, allocator, page cache
        emb = Embedder(lm, cache_dir=None, batch_size=batch, num_workers=workers, progress=False)  # empty cache
        t0 = time.perf_counter()
        emb.images(paths)
        clip_rate = n / (time.perf_counter() - t0)
        out.append(figure(f"embed_vit_b32_{precision}", clip_rate, "images/s", device, n_images=n, batch=batch,
                          loader_workers=workers))
        rate = bare_loop(lm.model, lm.preprocess, paths, batch, workers, device,
                         torch.float16 if precision == "fp16" else torch.float32)
        out.append(figure(f"bare_open_clip_{precision}", rate, "images/s", device, n_images=n, batch=batch,
                          loader_workers=workers, ratio_clipcomp_to_bare=round(clip_rate / rate, 3)))
    return out


def bare_loop(model, preprocess, paths, batch, workers, device, dtype) -> float:
    """What a user writes without clipcomp: a DataLoader over PIL + preprocess, encode_image, normalize."""
    import torch
    from PIL import Image

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            return preprocess(Image.open(paths[i]).convert("RGB"))

    def run(ps):
        dl = torch.utils.data.DataLoader(DS() if ps is paths else torch.utils.data.Subset(DS(), range(len(ps))),
                                         batch_size=batch, num_workers=workers)
        with torch.no_grad():
            for x in dl:
                f = model.encode_image(x.to(device, dtype))
                torch.nn.functional.normalize(f.float(), dim=-1).cpu()

    run(paths[: batch * 2])
    t0 = time.perf_counter()
    run(paths)
    return len(paths) / (time.perf_counter() - t0)


def train_row(device: str, batch: int, steps: int) -> dict:
    import torch

    from clipcomp.models import load_model
    from clipcomp.train.losses.base import make_loss

    lm = load_model("ViT-B-32", None, device=device, precision="fp32")
    model, tok = lm.model, lm.tokenizer
    model.train()
    loss_fn = make_loss("negclip")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    size = lm.info.get("image_size") or 224
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=gen).to(device)
    caps = tok([f"a photo of a red object number {i}" for i in range(batch)]).to(device)
    negs = tok([f"a photo of a blue object number {i}" for i in range(batch)]).to(device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else torch.autocast(
        "cpu", enabled=False)

    def step():
        opt.zero_grad(set_to_none=True)
        with amp:
            img = torch.nn.functional.normalize(model.encode_image(x), dim=-1)
            txt = model.encode_text(torch.cat([caps, negs]))
            txt = torch.nn.functional.normalize(txt, dim=-1)
            loss = loss_fn(img, txt[:batch], model.logit_scale.exp(), hard_negatives_features=txt[batch:])
        loss.backward()
        opt.step()

    step()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    rate = steps / (time.perf_counter() - t0)
    return figure("train_vit_b32_negclip", rate, "steps/s", device, batch=batch, steps=steps,
                  images_per_s=round(rate * batch, 1), precision="bf16 autocast" if device != "cpu" else "fp32")


def knn_rows(device: str) -> list[dict]:
    import faiss

    rng = np.random.default_rng(0)
    if device.startswith("cuda") and hasattr(faiss, "knn_gpu") and faiss.get_num_gpus() > 0:
        nq, nb = 10_000, 1_000_000
        res = faiss.StandardGpuResources()
        fn = lambda q, b: faiss.knn_gpu(res, q, b, 10, metric=faiss.METRIC_INNER_PRODUCT)  # noqa: E731
        name, where = "faiss_knn_exact", "gpu"
    else:
        nq, nb = 1_000, 100_000
        fn = lambda q, b: faiss.knn(q, b, 10, metric=faiss.METRIC_INNER_PRODUCT)  # noqa: E731
        name, where = "faiss_knn_exact_cpu_reference", "cpu"
    q = rng.standard_normal((nq, 512), dtype=np.float32)
    b = rng.standard_normal((nb, 512), dtype=np.float32)
    fn(q[:100], b[:10_000])
    t0 = time.perf_counter()
    fn(q, b)
    s = time.perf_counter() - t0
    rows = [figure(name, s, "s", where, queries=nq, base=nb, dim=512, k=10,
                   pairs_per_s=round(nq * nb / s / 1e9, 3))]
    if where == "cpu":
        rows.insert(0, figure("faiss_knn_exact", None, "s", "gpu", "faiss GPU search needs a GPU and faiss-gpu "
                                                                   "(none here); the CPU reference row stands in"))
    return rows


def stats_row(n: int) -> dict:
    import subprocess

    from clipcomp.cooccur.build import BuildOptions, build_stats

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        subprocess.run([sys.executable, str(ROOT / "perf" / "realistic_corpus.py"), str(n), "-o", f"{tmp}/corpus"],
                       check=True, stdout=subprocess.DEVNULL)
        files = [f"{tmp}/corpus/captions.txt"]
        workers = os.cpu_count() or 1
        t0 = time.perf_counter()
        res = build_stats(files, f"{tmp}/stats", BuildOptions(workers=workers))
        s = time.perf_counter() - t0
    return figure("stats_build", res.n_captions / s, "captions/s", "cpu", n_captions=res.n_captions,
                  seconds=round(s, 1), workers=workers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", default="gpu_check.json")
    ap.add_argument("--quick", action="store_true", help="small sizes (a CPU smoke run)")
    ap.add_argument("--stats-captions", type=int, default=None, help="captions of the statistics row "
                    "(default 10M on a GPU machine, 200k with --quick or on CPU)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from clipcomp.models.compat import ensure_torchvision

    ensure_torchvision()  # the project's compatibility step (PyPI's torchvision beside a CPU torch)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else None
    quick = args.quick or device == "cpu"
    t_start = time.perf_counter()
    rows: list[dict] = []
    n_img, batch = (96, 32) if quick else (2048, 256)
    workers = min(8, max(1, (os.cpu_count() or 2) - 1))
    with tempfile.TemporaryDirectory(prefix="gpu-check-img-") as tmp:
        rows += embed_rows(device, n_img, batch, workers, tmp)
    rows.append(train_row(device, 16 if quick else 256, 2 if quick else 20))
    rows += knn_rows(device)
    rows.append(stats_row(args.stats_captions or (200_000 if quick else 10_000_000)))
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "gpu": gpu,
                          "torch": torch.__version__, "python": platform.python_version()},
              "quick": quick, "seconds": round(time.perf_counter() - t_start, 1),
              "figures": {r["name"]: r for r in rows}}
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"{args.out}: {len(rows)} figures ({sum(r['skipped'] is not None for r in rows)} skipped) in "
          f"{report['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
