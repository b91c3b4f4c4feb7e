"""Throughput of the miniature foundation: shape-world generation, and training of the 32-px models beside
clipcomp-micro (64 px, patch 16) in the same run — `train()` on the memory-mapped `arrays` data vs a bare loop over
the same images already in memory as a normalized tensor (forward + CLIP loss + backward + AdamW), interleaved.

    python perf/bench_miniature.py --steps 30 --repeats 2
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def bare_loop(model_name: str, images: np.ndarray, captions: list[str], batch: int, steps: int) -> float:
    import torch
    import torch.nn.functional as F

    from clipcomp.models import load_model

    lm = load_model(model_name, seed=0)
    m = lm.model
    m.train()
    size = lm.info["image_size"]
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    labels = torch.arange(batch)
    t = None
    for s in range(steps + 2):
        if s == 2:
            t = time.perf_counter()
        idx = np.random.default_rng(s).choice(len(x), batch, replace=False)
        img, txt, scale = m(x[idx], lm.tokenizer([captions[i] for i in idx]))[:3]
        logits = scale * img @ txt.T
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
    return batch * steps / (time.perf_counter() - t)


def trainer(model_name: str, data: str, out: str, batch: int, steps: int) -> float:
    import json
    import os

    from clipcomp.train.trainer import TrainConfig, train

    train(TrainConfig(data=data, out=out, model=model_name, steps=steps + 2, batch_size=batch, log_every=1,
                      checkpoint_every=10 ** 6), progress=False, force=True)
    # steady state, like the bare loop: from the end of step 2 to the last step (start-up excluded)
    with open(os.path.join(out, "metrics.jsonl"), encoding="utf-8") as f:
        lines = [json.loads(x) for x in f if x.strip()]
    a, b = lines[1], lines[-1]
    return batch * (b["step"] - a["step"]) / (b["elapsed_s"] - a["elapsed_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["clipcomp-micro", "clipcomp-micro32", "clipcomp-tiny32"])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from clipcomp.synth import shapeworld as sw

    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    images, rows = sw.generate(sw.DEFAULT_CLASSES, "natural", 4000, seed=0)
    gen = 4000 / (time.perf_counter() - t)
    per_domain = {}
    for d in sw.RENDITIONS:
        t = time.perf_counter()
        sw.generate(sw.DEFAULT_CLASSES, d, 1000, seed=0)
        per_domain[d] = 1000 / (time.perf_counter() - t)
    print(f"shape world generation (1 process, 32 px): natural {gen:,.0f} images/s; "
          + ", ".join(f"{d} {v:,.0f}" for d, v in per_domain.items()))
    with tempfile.TemporaryDirectory() as tmp:
        sw.write_arrays(f"{tmp}/data", images, rows)
        results: dict[str, dict[str, list[float]]] = {m: {"train": [], "bare": []} for m in args.models}
        for _ in range(args.repeats):
            for m in args.models:  # interleaved: every model once per round
                results[m]["train"].append(trainer(m, f"{tmp}/data", f"{tmp}/run-{m}", args.batch_size, args.steps))
                results[m]["bare"].append(bare_loop(m, images, rows["caption"], args.batch_size, args.steps))
    print(f"\ntraining, batch {args.batch_size}, {args.steps} steps, {args.threads} threads, median of "
          f"{args.repeats} interleaved rounds (images/s):")
    print(f"{'model':<18} {'tokens':>6} {'train()':>9} {'bare loop':>10} {'train/bare':>10}")
    from clipcomp.models import load_model

    for m in args.models:
        info = load_model(m).info
        cfg_tokens = (info["image_size"] // (16 if m == "clipcomp-micro" else 4)) ** 2
        tr, bare = float(np.median(results[m]["train"])), float(np.median(results[m]["bare"]))
        print(f"{m:<18} {cfg_tokens:>6} {tr:>9,.0f} {bare:>10,.0f} {tr / bare:>10.2f}")


if __name__ == "__main__":
    main()
