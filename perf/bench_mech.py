"""Benchmark mechanistic similarity: activation capture (hooks on every ViT block, streamed per-(domain, class)
sums) + CKA for a ViT-B-32-sized model, and integrated-gradient attributions per 100 images, on this CPU.
Images: the miniature domain dataset (clipcomp synth domains), resized to the model's 224 px by its preprocessing.

    python perf/bench_mech.py --model ViT-B-32 --images 500 --attr 20
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--attr", type=int, default=20, help="images for the attribution timing")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    import torch
    from PIL import Image

    from clipcomp.models import load_model
    from clipcomp.similarity.mechanistic import (
        capture_class_means,
        domain_cka,
        get_layer,
        list_layers,
        unit_attributions,
    )
    from clipcomp.synth.domains import DomainSpec, generate_domains

    tmp = tempfile.mkdtemp(prefix="clipcomp-bench-mech-")
    per_cell = max(2, args.images // 40)
    man = generate_domains(DomainSpec(out=os.path.join(tmp, "d"), per_cell=per_cell), workers=2)
    import pyarrow.parquet as pq

    t = pq.read_table(man)
    paths = [os.path.join(tmp, "d", p) for p in t.column("image").to_pylist()][: args.images]
    classes = sorted(set(t.column("class").to_pylist()))
    domains = sorted(set(t.column("domain").to_pylist()))
    c_idx = np.array([classes.index(c) for c in t.column("class").to_pylist()])[: len(paths)]
    d_idx = np.array([domains.index(d) for d in t.column("domain").to_pylist()])[: len(paths)]
    lm = load_model(args.model)
    layers = list_layers(lm.model)

    def load(rows):
        return torch.stack([lm.preprocess(Image.open(paths[i]).convert("RGB")) for i in rows])

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t0 = time.perf_counter()
    means = capture_class_means(lm.model, load, len(paths), d_idx, c_idx, layers, domains, classes, args.batch_size)
    t_cap = time.perf_counter() - t0
    t0 = time.perf_counter()
    domain_cka(means, "linear", unbiased=True)
    domain_cka(means, "rbf", unbiased=False)
    t_cka = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{args.model}: {len(layers)} layers; {len(paths)} images ({len(domains)} domains × {len(classes)} classes);"
          f" cores {os.cpu_count()}, torch threads {torch.get_num_threads()}")
    print(f"activation capture: {t_cap:.1f} s ({len(paths) / t_cap:.1f} images/s) → 10k images ≈ "
          f"{10_000 / (len(paths) / t_cap) / 60:.1f} min; CKA (linear unbiased + RBF, all layers): {t_cka:.2f} s")
    print(f"peak RSS {rss:.2f} GiB (after model load {rss0:.2f} GiB); the sums held: "
          f"{sum(v.nbytes for v in means.sums.values()) / 2**20:.1f} MiB")
    w = torch.nn.functional.normalize(torch.randn(len(classes), lm.info["embed_dim"]), dim=-1)

    def forward(x):
        return torch.nn.functional.normalize(lm.model.encode_image(x), dim=-1) @ w.T

    rows = np.arange(min(args.attr, len(paths)))
    x = load(rows)
    t0 = time.perf_counter()
    unit_attributions(forward, get_layer(lm.model, layers[len(layers) // 2]), x, c_idx[rows], n_steps=16,
                      batch_size=8)
    t_attr = time.perf_counter() - t0
    print(f"integrated gradients (16 steps, one layer): {t_attr:.1f} s for {len(rows)} images → "
          f"{100 * t_attr / len(rows) / 60:.1f} min per 100 images")


if __name__ == "__main__":
    main()
