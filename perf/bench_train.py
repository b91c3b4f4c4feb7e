"""Benchmark `clipcomp train` against a bare training loop on the same data, model, batch size and steps.

Rows (one run, interleaved, each timed over the same steps):
  synthetic  bare loop with the images already a normalized tensor in memory  vs  train() on the lab dataset;
  manifest   bare loop: a torch Dataset that opens each JPEG with PIL, applies the model's preprocessing and
             tokenizes, DataLoader with W workers, forward + ClipLoss + backward + AdamW  vs  train() on a CSV
             manifest of the same JPEGs with the same W loader workers;
  webdataset the same bare loop  vs  train() on WebDataset shards (img2dataset layout) of the same JPEGs.
Real JPEGs: the shared COCO images when ../shared is present, else the 18 bundled COCO images (repeated).

    python perf/bench_train.py --model clipcomp-micro --batch-size 64 --steps 30 --workers 2 --repeats 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def jpeg_pairs() -> list[tuple[str, str]]:
    shared = ROOT.parent / "shared" / "data" / "coco_mini"
    js = shared / "annotations" / "captions_val2017.json"
    if js.exists():
        root = shared / "val2017"
    else:
        js = ROOT / "tests" / "data" / "coco_sample" / "captions_val2017.json"
        root = ROOT / "tests" / "data" / "coco_sample" / "images"
    d = json.loads(js.read_text())
    files = {im["id"]: str(root / im["file_name"]) for im in d["images"]}
    return [(files[a["image_id"]], a["caption"].strip()) for a in d["annotations"]
            if os.path.exists(files[a["image_id"]])]


class BareSet:
    """What a user would write: PIL decode + preprocess + tokenize per item."""

    def __init__(self, pairs, preprocess, tokenizer):
        self.pairs, self.preprocess, self.tokenizer = pairs, preprocess, tokenizer

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        from PIL import Image

        path, cap = self.pairs[i]
        return self.preprocess(Image.open(path).convert("RGB")), self.tokenizer([cap])[0]


def bare_loop(lm, loader_factory, steps: int) -> float:
    import torch
    from open_clip.loss import ClipLoss

    model = lm.model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = ClipLoss()
    t0 = time.perf_counter()
    n = 0
    it = iter(loader_factory())
    for _ in range(steps):
        images, tokens = next(it)
        f_img, f_txt, scale = model(images.to(lm.device), tokens.to(lm.device))
        loss = loss_fn(f_img, f_txt, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(images)
    if lm.device.startswith("cuda"):
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="clipcomp-micro")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    import numpy as np
    import torch
    import webdataset as wds

    from clipcomp.models import load_model
    from clipcomp.synth import CaptionKnobs, WorldConfig
    from clipcomp.synth.dataset import DatasetSpec, SynthDataset, generate
    from clipcomp.train.trainer import TrainConfig, batch_indices, train

    tmp = Path(tempfile.mkdtemp(prefix="clipcomp-bench-train-"))
    try:
        pairs = jpeg_pairs()
        while len(pairs) < 8 * args.batch_size:
            pairs = pairs + pairs
        with open(tmp / "m.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["filepath", "title"])
            w.writerows(pairs)
        (tmp / "shards").mkdir()
        per = max(1, len(pairs) // 8)
        for s in range(8):
            with wds.TarWriter(str(tmp / "shards" / f"{s:05d}.tar")) as sink:
                for i, (p, c) in enumerate(pairs[s * per:(s + 1) * per]):
                    sink.write({"__key__": f"{s:05d}{i:05d}", "jpg": Path(p).read_bytes(), "txt": c})
        n_data = max(4 * args.batch_size, 2048)
        generate(WorldConfig(), CaptionKnobs(), DatasetSpec(out=str(tmp / "synth"), n_train=n_data, n_test=0,
                                                            shard_size=n_data), progress=False)
        lm = load_model(args.model, device=args.device, seed=0)
        print(f"model {args.model} on {lm.device}; batch {args.batch_size}; {args.steps} steps; loader workers "
              f"{args.workers}; torch threads {torch.get_num_threads()}; cores {os.cpu_count()}; "
              f"{len(set(p for p, _ in pairs))} distinct JPEGs, {len(pairs)} pairs")

        def trainer(data, workers, fmt):
            cfg = TrainConfig(data=data, out=str(tmp / f"run-{fmt}-{time.perf_counter_ns()}"), model=args.model,
                              steps=args.steps, batch_size=args.batch_size, warmup=1, checkpoint_every=10**9,
                              log_every=10**9, device=args.device, workers=workers)
            return train(cfg, progress=False)["images_per_s"]

        def jpeg_loader():
            g = torch.Generator().manual_seed(0)
            lm_local = load_model(args.model, device=args.device, seed=0)
            bare = BareSet(pairs, lm_local.preprocess, lm_local.tokenizer)
            sampler = torch.utils.data.RandomSampler(bare, num_samples=args.steps * args.batch_size, generator=g)
            return torch.utils.data.DataLoader(bare, batch_size=args.batch_size, sampler=sampler,
                                               num_workers=args.workers, drop_last=True)

        ds = SynthDataset(str(tmp / "synth"))
        mean = torch.tensor(lm.model.visual.preprocess_cfg["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(lm.model.visual.preprocess_cfg["std"]).view(1, 3, 1, 1)
        size = lm.model.visual.image_size[0]
        x = torch.from_numpy(ds.images(np.arange(n_data))).permute(0, 3, 1, 2).float() / 255
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
        mem_images, mem_tokens = (x - mean) / std, lm.tokenizer(ds.captions)

        def memory_loader():
            def gen():
                for i in range(10**9):
                    rows = torch.from_numpy(batch_indices(i, n_data, args.batch_size, 0))
                    yield mem_images[rows], mem_tokens[rows]
            return gen()

        rows = {"synthetic": [], "manifest": [], "webdataset": []}
        for _ in range(args.repeats):
            rows["synthetic"].append((bare_loop(load_model(args.model, device=args.device, seed=0), memory_loader,
                                                args.steps), trainer(str(tmp / "synth"), 0, "synth")))
            rows["manifest"].append((bare_loop(load_model(args.model, device=args.device, seed=0), jpeg_loader,
                                               args.steps), trainer(str(tmp / "m.csv"), args.workers, "manifest")))
            rows["webdataset"].append((bare_loop(load_model(args.model, device=args.device, seed=0), jpeg_loader,
                                                 args.steps), trainer(str(tmp / "shards"), args.workers, "wds")))
        print(f"{'data':12s} {'bare loop img/s':>16s} {'clipcomp img/s':>15s} {'ratio':>7s}   "
              f"(median of {args.repeats})")
        for name, vals in rows.items():
            bare = float(np.median([b for b, _ in vals]))
            ours = float(np.median([o for _, o in vals]))
            print(f"{name:12s} {bare:16.1f} {ours:15.1f} {ours / bare:7.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
