"""Domain vs compositional generalization in miniature, with Kempf et al.'s (ICML 2025) exact mixtures.

Design (per seed):
  * the seed's pretrained stand-in (`clipcomp base`, natural shape world, gated) is the starting point of every arm;
  * a DomainNet-like world: 12 shape classes × 5 domains (natural, clipart, painting, sketch, doodle), `--per-cell`
    training and `--test-per-cell` test images per (domain, class); 2 extra shapes drawn only in the test domain
    (their ImageNet-Sketch images of non-DomainNet classes, for the class-overlap arms); captions from their
    templates with domain terms (`captions="kempf"`);
  * 3 held-out classes H (seeded); each arm is one `clipcomp.datasets.mixtures` setting, subsampled to the
    single-rendition size as their code does, plus `--natural-extra` images of the stand-in's own natural
    training data merged in full (their ImageNet-Captions part: the natural base kept in the mix);
  * each arm fine-tunes the stand-in for `--steps` steps with the stand-in's loss (UniCL, label-aware: the
    stand-in's recipe; Kempf train CLIP's InfoNCE from scratch — a stated difference), then is evaluated zero-shot
    (12-way, the gate templates) on every domain's seen and held-out test classes;
  * mechanics of every arm on the test images of natural and T: unbiased linear CKA of per-class means and the
    per-class shared units (top 10 % node-effect units, Jaccard per class, mean), each averaged over the 3 blocks.

Arms, test domain sketch: natural-only, leave-out-domain, cg-low, cg-low + clipart, cg-low + clipart + painting,
cg-high (= + doodle), cg-low with allow_pct 0.1 (their Fig. 13 interpolation), class-overlap 1.0 and 0.25 (T's items
kept for 100 % / 25 % of its classes, the rest replaced by the extra shapes; their mix_in_sketches.py).
Test domain doodle: leave-out-domain, cg-low, cg-high (natural-only is shared).

Every run is kept under OUT/<test domain>/<arm>-s<seed>/result.json and skipped when present (the script resumes).
Writes docs/results/dg_cg.md (tables only; the reading below the mark is written by a person after looking).

    python experiments/dg_cg.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXTRA = ["pentagon", "trapezoid"]  # the shapes outside the 12 default classes
SKETCH_ARMS = [
    ("natural-only", "natural-only", {}),
    ("leave-out-domain", "leave-out-domain", {}),
    ("cg-low", "cg-low", {}),
    ("cg-low+clipart", "cg-high", {"domains": ["clipart"]}),
    ("cg-low+clipart+painting", "cg-high", {"domains": ["clipart", "painting"]}),
    ("cg-high", "cg-high", {}),
    ("cg-low allow 0.1", "cg-low", {"allow_pct": 0.1}),
    ("overlap 1.0", "class-overlap", {"overlap": 1.0, "extra_classes": EXTRA}),
    ("overlap 0.25", "class-overlap", {"overlap": 0.25, "extra_classes": EXTRA}),
]
OTHER_ARMS = [("leave-out-domain", "leave-out-domain", {}), ("cg-low", "cg-low", {}), ("cg-high", "cg-high", {})]

# The paper's predicted directions, pre-registered: printed before any result.
PREDICTED = ("Held-out-class accuracy in T: natural-only < cg-low < cg-high; leave-out-domain (DG) above natural-"
             "only; CG below DG; the doodle domain low, with lower CKA and fewer shared units than sketch; less "
             "class overlap → better CG.")


def world(seed: int, per_cell: int, test_per_cell: int, extra_per_cell: int):
    """(images, manifest table) of the DomainNet-like world for one seed (items seeded apart from the stand-in's
    training and gate items)."""
    import pyarrow as pa

    from clipcomp.synth import shapeworld

    classes = list(shapeworld.DEFAULT_CLASSES)
    parts, rows = [], {k: [] for k in ("image", "caption", "class", "label", "domain", "split")}
    for domain in shapeworld.DOMAINS:
        for split, n in (("train", per_cell), ("test", test_per_cell)):
            imgs, r = shapeworld.generate(classes, domain, n * len(classes), seed=seed + 2_000_017,
                                          start=0 if split == "train" else 10_000_000)
            parts.append(imgs)
            for i in range(len(imgs)):
                rows["caption"].append(r["caption"][i])
                rows["class"].append(r["class"][i])
                rows["label"].append(r["label"][i])
                rows["domain"].append(domain)
                rows["split"].append(split)
    for split, n in (("train", extra_per_cell), ("test", 0)):
        if n:
            imgs, r = shapeworld.generate(EXTRA, "sketch", n * len(EXTRA), seed=seed + 3_000_017)
            parts.append(imgs)
            for i in range(len(imgs)):
                rows["caption"].append(r["caption"][i])
                rows["class"].append(r["class"][i])
                rows["label"].append(-1)
                rows["domain"].append("sketch")
                rows["split"].append(split)
    images = np.concatenate(parts)
    rows["image"] = [f"item#{i}" for i in range(len(images))]
    return images, pa.table(rows), classes


def natural_extra(base_dir: str, n: int):
    """The first `n` items of the stand-in's own natural training data (arrays layout)."""
    import pyarrow.parquet as pq

    data = os.path.join(base_dir, "data", "train")
    man = pq.read_table(os.path.join(data, "manifest.parquet")).slice(0, n)
    imgs = np.load(os.path.join(data, "images.npy"), mmap_mode="r")[:n]
    import pyarrow as pa

    t = pa.table({"image": [f"base#{i}" for i in range(n)], "caption": man.column("caption"),
                  "class": man.column("class"), "label": man.column("label")})
    return np.asarray(imgs), t


def run_arm(out: Path, name: str, setting: str, opts: dict, test_domain: str, seed: int, args, data, base) -> dict:
    from clipcomp.datasets.mixtures import MixSpec, build_mixture
    from clipcomp.models import load_model
    from clipcomp.models.embed import Embedder
    from clipcomp.pipelines.base import TEMPLATES, zero_shot_predictions
    from clipcomp.similarity.mechanistic import arrays_mechanics
    from clipcomp.synth.shapeworld import write_arrays
    from clipcomp.train import TrainConfig, train

    d = out / test_domain / f"{name.replace(' ', '_').replace('+', '-')}-s{seed}"
    result = d / "result.json"
    if result.exists():
        return json.loads(result.read_text())
    images, table, classes, extra_images, extra_table = data
    spec = MixSpec(setting=setting, test_domain=test_domain, natural_domain="natural", n_held_out=3, seed=seed,
                   captions="kempf", caption_seed=42 + seed, **{"extra_classes": EXTRA, **opts})
    train_t, tests, meta = build_mixture(table, spec, f"world seed {seed}", natural_extra=extra_table)
    keys = train_t.column("image").to_pylist()
    src = np.array([int(k.split("#")[1]) if k.startswith("item#") else -1 for k in keys])
    ext = np.array([int(k.split("#")[1]) if k.startswith("base#") else -1 for k in keys])
    imgs = np.empty((len(keys), *images.shape[1:]), np.uint8)
    imgs[src >= 0] = images[src[src >= 0]]
    imgs[ext >= 0] = extra_images[ext[ext >= 0]]
    held_codes = {classes.index(c) for c in meta["held_out_classes"]}
    # the extra shapes are two more classes for the label-aware loss; natural-extra rows keep their labels
    cls_names = train_t.column("class").to_pylist()
    labels = [len(classes) + EXTRA.index(c) if c in EXTRA else classes.index(c) for c in cls_names]
    data_dir = d / "data"
    write_arrays(str(data_dir), imgs, {"caption": train_t.column("caption").to_pylist(), "label": labels,
                                       "class": cls_names, "domain": train_t.column("domain").to_pylist()})
    t0 = time.perf_counter()
    train(TrainConfig(data=str(data_dir), out=str(d / "model"), model=base["settings"]["model"],
                      pretrained=base["weights"], steps=args.steps, batch_size=128, lr=args.lr,
                      warmup=min(25, args.steps), seed=seed, loss=base["settings"]["loss"],
                      fields={"labels": "label"}, threads=args.threads, log_every=50, checkpoint_every=10_000),
          progress=False)
    train_s = time.perf_counter() - t0
    lm = load_model(base["settings"]["model"], str(d / "model" / "final.pt"))
    emb = Embedder(lm, cache_dir=None, progress=False)
    acc, preds_by = {}, {}
    for key, t in tests.items():
        rows = np.array([int(k.split("#")[1]) for k in t.column("image").to_pylist()])
        lab = np.array([classes.index(c) for c in t.column("class").to_pylist()])
        pred = zero_shot_predictions(emb, classes, images[rows])
        acc[key] = {"acc": float(np.mean(pred == lab)), "n": int(lab.size)}
        preds_by[key] = (rows, lab, pred)
    _, _, p_held = preds_by[f"test_{test_domain}_unseen"]
    collapse = {"top_share": float(np.bincount(p_held, minlength=len(classes)).max() / p_held.size),
                "names_held_out": float(np.mean([p in held_codes for p in p_held]))}
    by_domain = {}
    for dom in ("natural", test_domain):
        rows = np.concatenate([preds_by[f"test_{dom}_seen"][0], preds_by[f"test_{dom}_unseen"][0]])
        lab = np.concatenate([preds_by[f"test_{dom}_seen"][1], preds_by[f"test_{dom}_unseen"][1]])
        by_domain[dom] = (images[rows], lab)
    t1 = time.perf_counter()
    mech = arrays_mechanics(lm, by_domain, classes, TEMPLATES, attr_per_class=args.attr_per_class, seed=seed)
    cka = float(np.mean([m[0][1] for m in mech["cka"].values()]))
    units = float(np.mean([m[0][1] for m in mech["units"].values()]))
    per_class_units = {c: float(np.mean([mech["units_per_class"][layer][c][0][1] for layer in mech["layers"]]))
                       for c in classes}
    res = {"arm": name, "setting": setting, "options": opts, "test_domain": test_domain, "seed": seed,
           "held_out": meta["held_out_classes"], "n_train": meta["n_train"], "subsampling": meta["subsampling"],
           "train_counts": meta["train_counts"], "overlap_classes": meta["overlap_classes"], "acc": acc,
           "collapse": collapse, "cka": cka, "units": units, "units_per_class": per_class_units,
           "train_seconds": train_s, "mech_seconds": time.perf_counter() - t1}
    d.mkdir(parents=True, exist_ok=True)
    result.write_text(json.dumps(res, indent=2))
    import shutil

    shutil.rmtree(data_dir, ignore_errors=True)  # the mixture is rebuilt from the seed in a second
    return res


def mean_ci(values):
    from clipcomp.pipelines.lab import mean_ci as mc

    return mc([v for v in values if v is not None and math.isfinite(v)])


def fmt(values) -> str:
    m, h = mean_ci(values)
    return f"{m:.3f}" + (f" ± {h:.3f}" if math.isfinite(h) else "")


def report(results: list[dict], gates_md: str, args, minutes: dict) -> str:
    from clipcomp.pipelines.base import failed_base_notes
    from clipcomp.pipelines.lab import paired_difference

    seeds = sorted({r["seed"] for r in results})
    lines = ["# Domain vs compositional generalization in miniature (Kempf et al., ICML 2025)", "",
             "Generated by `python experiments/dg_cg.py --seeds " + " ".join(map(str, args.seeds)) +
             f" --steps {args.steps}` (clipcomp.datasets.mixtures, Kempf-exact settings).", "",
             "## Predicted (pre-registered, from the paper)", "", PREDICTED, "", gates_md, "",
             *failed_base_notes(args.bases),
             "## Design", "",
             f"Per seed: the gated stand-in fine-tuned for {args.steps} steps (batch 128, lr {args.lr}, its own "
             "UniCL loss) on each mixture; 12 classes × 5 domains, "
             f"{args.per_cell} training and {args.test_per_cell} test images per (domain, class); 3 held-out classes "
             f"(seeded); {args.natural_extra:,} of the stand-in's natural training images merged in full; captions "
             "from Kempf's templates. Every setting but natural-only is subsampled to the single-rendition size "
             "(their code). Accuracy: 12-way zero-shot with the gate templates. ± = 95 % t-interval over seeds; "
             "p-values over seeds (paired).", ""]
    for test_domain in args.test_domains:
        rs = [r for r in results if r["test_domain"] == test_domain or r["setting"] == "natural-only"]
        arms = [a for a, _, _ in (SKETCH_ARMS if test_domain == "sketch" else [SKETCH_ARMS[0], *OTHER_ARMS])]
        lines += [f"## Test domain {test_domain}", "",
                  f"Time: {minutes.get(test_domain, float('nan')):.1f} minutes for {len(seeds)} seeds on this "
                  "machine (fine-tuning, evaluation, mechanics; the stand-ins not counted).", "",
                  "| arm | training rows | natural acc | T seen | T held-out | top-prediction share (T held-out) "
                  "| names a held-out class | CKA(natural, T) | shared units (natural, T) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for arm in arms:
            ar = [r for r in rs if r["arm"] == arm]
            if not ar:
                continue

            def get(r, key, td=test_domain):
                a = r["acc"]
                if key == "natural":
                    return (a["test_natural_seen"]["acc"] * a["test_natural_seen"]["n"]
                            + a["test_natural_unseen"]["acc"] * a["test_natural_unseen"]["n"]) / (
                        a["test_natural_seen"]["n"] + a["test_natural_unseen"]["n"])
                return a[f"test_{td}_{key}"]["acc"]

            natural_only_t = arm == "natural-only" and test_domain != "sketch"  # its mechanics were run on sketch
            lines.append(f"| {arm} | {int(np.mean([r['n_train'] for r in ar])):,} | "
                         f"{fmt([get(r, 'natural') for r in ar])} | {fmt([get(r, 'seen') for r in ar])} | "
                         f"{fmt([get(r, 'unseen') for r in ar])} | "
                         f"{fmt([r['collapse']['top_share'] for r in ar]) if not natural_only_t else '—'} | "
                         f"{fmt([r['collapse']['names_held_out'] for r in ar]) if not natural_only_t else '—'} | "
                         f"{fmt([r['cka'] for r in ar]) if not natural_only_t else '—'} | "
                         f"{fmt([r['units'] for r in ar]) if not natural_only_t else '—'} |")
        lines.append("")
        pairs = [("natural-only", "cg-low"), ("cg-low", "cg-high"), ("natural-only", "leave-out-domain"),
                 ("cg-high", "leave-out-domain"), ("cg-low", "cg-low+clipart"),
                 ("cg-low+clipart", "cg-low+clipart+painting"), ("cg-low+clipart+painting", "cg-high"),
                 ("cg-low", "cg-low allow 0.1"), ("overlap 1.0", "overlap 0.25")]
        lines += ["Paired differences in T held-out accuracy (second − first):", ""]
        for a, b in pairs:
            ra = {r["seed"]: r for r in rs if r["arm"] == a}
            rb = {r["seed"]: r for r in rs if r["arm"] == b}
            common = sorted(set(ra) & set(rb))
            if len(common) < 1:
                continue
            va = [ra[s]["acc"][f"test_{test_domain}_unseen"]["acc"] for s in common]
            vb = [rb[s]["acc"][f"test_{test_domain}_unseen"]["acc"] for s in common]
            lines.append(f"- {b} − {a}: {paired_difference(va, vb)}")
        lines.append("")
    if len(args.test_domains) > 1:
        lines += ["## Sketch vs doodle (same arms, paired by seed)", "",
                  "| arm | measure | sketch | doodle | doodle − sketch |", "|---|---|---:|---:|---|"]
        for arm in ("leave-out-domain", "cg-low", "cg-high"):
            for label, key in (("T held-out acc", "acc"), ("CKA", "cka"), ("shared units", "units")):
                s_ = {r["seed"]: r for r in results if r["arm"] == arm and r["test_domain"] == "sketch"}
                d_ = {r["seed"]: r for r in results if r["arm"] == arm and r["test_domain"] == "doodle"}
                common = sorted(set(s_) & set(d_))
                if not common:
                    continue

                def val(r, key=key):
                    return r["acc"][f"test_{r['test_domain']}_unseen"]["acc"] if key == "acc" else r[key]

                vs, vd = [val(s_[s]) for s in common], [val(d_[s]) for s in common]
                lines.append(f"| {arm} | {label} | {fmt(vs)} | {fmt(vd)} | {paired_difference(vs, vd)} |")
        lines.append("")
    lines += ["## Per-class shared units vs held-out accuracy", "",
              "Per test domain and arm (seed means), the held-out classes' mean shared units (natural, T) beside "
              "the seen classes', and the T held-out accuracy:", "",
              "| T | arm | shared units, held-out classes | shared units, seen classes | T held-out acc |",
              "|---|---|---:|---:|---:|"]
    for r_td in args.test_domains:
        for arm in dict.fromkeys(r["arm"] for r in results if r["test_domain"] == r_td):
            ar = [r for r in results if r["arm"] == arm and r["test_domain"] == r_td]
            if arm == "natural-only" and r_td != "sketch":
                continue
            hu = [np.mean([r["units_per_class"][c] for c in r["held_out"]]) for r in ar]
            su = [np.mean([v for c, v in r["units_per_class"].items() if c not in r["held_out"]]) for r in ar]
            ha = [r["acc"][f"test_{r_td}_unseen"]["acc"] for r in ar]
            lines.append(f"| {r_td} | {arm} | {fmt(hu)} | {fmt(su)} | {fmt(ha)} |")
    lines.append("")
    from scipy import stats

    lines += ["Across arms (arm means over seeds; Spearman ρ, no p-value: the arms share their stand-ins and test "
              "items, so they are not independent units):", ""]
    for r_td in args.test_domains:
        arms = [a for a in dict.fromkeys(r["arm"] for r in results if r["test_domain"] == r_td)]
        if len(arms) < 3:
            continue
        acc = [np.mean([r["acc"][f"test_{r_td}_unseen"]["acc"] for r in results
                        if r["arm"] == a and r["test_domain"] == r_td]) for a in arms]
        for label, key in (("CKA(natural, T)", "cka"), ("shared units (natural, T)", "units")):
            x = [np.mean([r[key] for r in results if r["arm"] == a and r["test_domain"] == r_td]) for a in arms]
            rho = stats.spearmanr(x, acc).statistic
            lines.append(f"- T = {r_td}: ρ({label}, T held-out accuracy) over {len(arms)} arms = {rho:.2f}")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--test-domains", nargs="+", default=["sketch", "doodle"])
    ap.add_argument("--arms", nargs="+", default=None, help="only these arms (names as in the tables)")
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--per-cell", type=int, default=150)
    ap.add_argument("--test-per-cell", type=int, default=100)
    ap.add_argument("--extra-per-cell", type=int, default=250)
    ap.add_argument("--natural-extra", type=int, default=4800)
    ap.add_argument("--attr-per-class", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bases", default=str(ROOT / "runs" / "bases"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "dg_cg"))
    ap.add_argument("--report", default=str(ROOT / "docs" / "results" / "dg_cg.md"))
    args = ap.parse_args()

    from clipcomp.analysis.report import write_report_keeping_reading
    from clipcomp.io import read_json
    from clipcomp.pipelines.base import gate_experiment

    print("Predicted (from the paper):", PREDICTED, flush=True)
    gates_md = gate_experiment(args.out, args.seeds, bases=args.bases)
    out = Path(args.out)
    results, minutes = [], dict.fromkeys(args.test_domains, 0.0)
    for seed in args.seeds:
        base_dir = os.path.join(args.bases, f"base-s{seed}")
        base = read_json(os.path.join(base_dir, "base.json"))
        images, table, classes = world(seed, args.per_cell, args.test_per_cell, args.extra_per_cell)
        extra_images, extra_table = natural_extra(base_dir, args.natural_extra)
        data = (images, table, classes, extra_images, extra_table)
        for test_domain in args.test_domains:
            t0 = time.perf_counter()
            arms = SKETCH_ARMS if test_domain == "sketch" else OTHER_ARMS
            arms = [a for a in arms if args.arms is None or a[0] in args.arms]
            for name, setting, opts in arms:
                s = time.perf_counter()
                r = run_arm(out, name, setting, opts, test_domain, seed, args, data, base)
                results.append(r)
                print(f"{test_domain} s{seed} {name}: natural-seen {r['acc']['test_natural_seen']['acc']:.3f}, "
                      f"T seen {r['acc'][f'test_{test_domain}_seen']['acc']:.3f}, T held-out "
                      f"{r['acc'][f'test_{test_domain}_unseen']['acc']:.3f} ({time.perf_counter() - s:.0f} s)",
                      flush=True)
            minutes[test_domain] += (time.perf_counter() - t0) / 60
    (out / "results.json").write_text(json.dumps(results, indent=2))
    timing_path = out / "minutes.json"
    if timing_path.exists():  # a resumed run keeps the first full timing of each test domain
        old = json.loads(timing_path.read_text())
        minutes = {k: max(v, old.get(k, 0.0)) for k, v in minutes.items()}
    timing_path.write_text(json.dumps(minutes))
    md = report(results, gates_md, args, minutes)
    write_report_keeping_reading(args.report, md)
    print(md)


if __name__ == "__main__":
    main()
