"""Benchmark the trainer against a bare training loop, and scene generation with N workers.

Same model, same batch size, same number of steps, in one run:
  1. bare loop: images already as a normalized float tensor in memory, captions pre-tokenized; forward,
     ClipLoss, backward, AdamW step — nothing else;
  2. clipcomp's trainer (`train()`): batches gathered from memory-mapped shards, tokenized per step,
     cosine schedule, logging, checkpoints at the end.
Then `synth generate` throughput (images/s) with 1 and N workers.

    python benchmarks/bench_train.py --model clipcomp-micro --batch-size 128 --steps 60 --workers 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="clipcomp-micro")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n-generate", type=int, default=20_000)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    import numpy as np
    import torch

    from clipcomp.models import load_model
    from clipcomp.synth import CaptionKnobs, WorldConfig
    from clipcomp.synth.dataset import DatasetSpec, SynthDataset, generate
    from clipcomp.train.trainer import ImageBatcher, TrainConfig, batch_indices, train

    tmp = tempfile.mkdtemp(prefix="clipcomp-bench-train-")
    try:
        n_data = max(4 * args.batch_size, 2048)
        data_dir = os.path.join(tmp, "data")
        generate(WorldConfig(), CaptionKnobs(), DatasetSpec(out=data_dir, n_train=n_data, n_test=0, shard_size=n_data),
                 progress=False)
        ds = SynthDataset(data_dir)
        lm = load_model(args.model, device=args.device, seed=0)
        print(f"model {args.model} on {lm.device}; batch {args.batch_size}; {args.steps} steps; torch threads "
              f"{torch.get_num_threads()}; cores {os.cpu_count()}")

        # 1. bare loop, data in memory
        from open_clip.loss import ClipLoss

        model = lm.model.train()
        batcher = ImageBatcher(model, lm.device, torch.float32)
        images = batcher(ds.images(np.arange(n_data)))
        tokens = lm.tokenizer(ds.captions).to(lm.device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        loss_fn = ClipLoss()

        def step(i):
            rows = torch.from_numpy(batch_indices(i, n_data, args.batch_size, 0))
            f_img, f_txt, scale = model(images[rows], tokens[rows])
            loss = loss_fn(f_img, f_txt, scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for i in range(3):
            step(i)  # warm-up
        if lm.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(args.steps):
            step(i)
        if lm.device.startswith("cuda"):
            torch.cuda.synchronize()
        bare = args.steps * args.batch_size / (time.perf_counter() - t0)

        # 2. the trainer
        cfg = TrainConfig(data=data_dir, out=os.path.join(tmp, "run"), model=args.model, steps=args.steps + 3,
                          batch_size=args.batch_size, warmup=1, checkpoint_every=10**9, log_every=10**9,
                          device=args.device)
        t0 = time.perf_counter()
        res = train(cfg, progress=False)
        ours = res["images_per_s"]
        print(f"bare training loop : {bare:8.1f} images/s")
        print(f"clipcomp trainer   : {ours:8.1f} images/s = {100 * ours / bare:.0f}% of the bare loop "
              f"(whole call incl. model load and final checkpoint: {time.perf_counter() - t0:.1f} s)")

        # 3. generation
        for w in sorted({1, args.workers}):
            out = os.path.join(tmp, f"gen{w}")
            t0 = time.perf_counter()
            generate(WorldConfig(), CaptionKnobs(), DatasetSpec(out=out, n_train=args.n_generate, n_test=0,
                                                                shard_size=max(1, args.n_generate // 8), workers=w),
                     progress=False)
            print(f"scene generation, {w} worker(s): {args.n_generate / (time.perf_counter() - t0):8.0f} images/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
