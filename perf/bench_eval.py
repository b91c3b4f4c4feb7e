"""Benchmark the Embedder against a bare open_clip forward loop, and the fully cached second run.

Same model, same images, same batch size, in one run:
  1. bare loop: PIL open → preprocess → stack → model.encode_image, batch by batch (no cache, no hashing);
  2. Embedder, cold cache (hashing, DataLoader, forward, cache writes);
  3. Embedder, warm cache (everything cached: hashing and lookups only).

    python perf/bench_eval.py --model ViT-B-32 --batch-size 32 [--images DIR] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "coco_mini"
SAMPLE = HERE.parent / "tests" / "data" / "coco_sample" / "images"


def image_paths(folder: str | None, repeat: int) -> list[str]:
    if folder:
        roots = [Path(folder)]
    elif SHARED.exists():
        roots = [SHARED / "train2017", SHARED / "val2017"]
    else:
        roots = [SAMPLE]
    paths = sorted(str(p) for r in roots for p in r.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if repeat > 1:  # distinct files so that the content cache cannot shortcut the cold run
        tmp = Path(tempfile.mkdtemp(prefix="clipcomp-bench-img-"))
        out = []
        for r in range(repeat):
            for p in paths:
                q = tmp / f"{r}_{os.path.basename(p)}"
                data = Path(p).read_bytes() + r.to_bytes(4, "little")  # JPEG ignores trailing bytes
                q.write_bytes(data)
                out.append(str(q))
        paths = out
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--pretrained", default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--images", default=None)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--loader-workers", type=int, default=None)
    args = ap.parse_args()

    import torch

    from clipcomp.models import load_model
    from clipcomp.models.embed import Embedder

    paths = image_paths(args.images, args.repeat)
    lm = load_model(args.model, args.pretrained, device=args.device)
    print(f"model {args.model} ({args.pretrained or 'random init'}) on {lm.device}/{lm.precision}; "
          f"{len(paths)} images; batch {args.batch_size}; torch threads {torch.get_num_threads()}; "
          f"cores {os.cpu_count()}")

    from PIL import Image

    def bare() -> float:
        t0 = time.perf_counter()
        with torch.inference_mode():
            for s in range(0, len(paths), args.batch_size):
                x = torch.stack([lm.preprocess(Image.open(p).convert("RGB")) for p in paths[s:s + args.batch_size]])
                with lm.autocast():
                    f = lm.model.encode_image(x.to(lm.device))
                f = torch.nn.functional.normalize(f.float(), dim=-1).cpu()
        if lm.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    bare()  # warm-up (allocator, kernels), not timed
    t_bare = bare()
    cache = tempfile.mkdtemp(prefix="clipcomp-bench-cache-")
    try:
        emb = Embedder(lm, cache_dir=cache, batch_size=args.batch_size, num_workers=args.loader_workers,
                       progress=False)
        t0 = time.perf_counter()
        out = emb.images(paths)
        t_cold = time.perf_counter() - t0
        assert out.computed == len(paths)
        emb2 = Embedder(lm, cache_dir=cache, batch_size=args.batch_size, num_workers=args.loader_workers,
                        progress=False)
        t0 = time.perf_counter()
        out2 = emb2.images(paths)
        t_warm = time.perf_counter() - t0
        assert out2.computed == 0
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    n = len(paths)
    print(f"bare open_clip loop : {n / t_bare:8.1f} images/s ({t_bare:.2f} s)")
    print(f"Embedder, cold cache: {n / t_cold:8.1f} images/s ({t_cold:.2f} s)  "
          f"= {100 * (t_bare / t_cold):.0f}% of the bare loop's throughput "
          f"(loader workers: {emb.num_workers})")
    print(f"Embedder, warm cache: {n / t_warm:8.1f} images/s ({t_warm:.3f} s)  = {t_cold / t_warm:.0f}x the cold run")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
