"""Where real caption corpora sit on the binding lab's knobs → docs/results/knobs.md (+ knobs.png).

    python experiments/knobs_real.py [--out runs/knobs-real] [--synthetic 2000] [--workers 2]

Measures COCO (the shared coco_mini captions with their instances: val and train) and the bundled CC3M sample
with `clipcomp stats knobs`, and the binding lab's own captions for the cells of docs/results/binding.md with the
same code, so every point lies on the same axes. Tables and the plot are computed from the measurements; the
reading is written by a person below the tables and kept across reruns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

# docs/results/binding.md, experiments/binding_knobs.yaml: the caption knobs of each cell ((d), (e) = (c)'s captions)
LAB_CELLS = {"lab (a) dense, complete": {},
             "lab (b) attribute density 0.25": {"attribute_density": 0.25},
             "lab (c)-(e) completeness 0.2, saliency 1.0": {"completeness": 0.2, "saliency_bias": 1.0}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "runs" / "knobs-real"))
    ap.add_argument("--synthetic", type=int, default=2000, help="lab captions per cell")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--report", default=str(ROOT / "docs" / "results" / "knobs.md"))
    args = ap.parse_args()

    from clipcomp.analysis.caption_knobs import knobs_table, measure_knobs, synthetic_knobs
    from clipcomp.synth.captions import CaptionKnobs

    t0 = time.perf_counter()
    corpora: dict[str, dict] = {}
    ann = SHARED / "coco_mini" / "annotations"
    for split in ("val2017", "train2017"):
        caps, inst = ann / f"captions_{split}.json", ann / f"instances_{split}.json"
        if caps.exists() and inst.exists():
            corpora[f"COCO {split} (coco_mini)"] = measure_knobs(str(caps), os.path.join(args.out, f"coco-{split}"),
                                                                 str(inst), workers=args.workers, progress=False)
    cc3m = ROOT / "src" / "clipcomp" / "data" / "cc3m_val_captions.txt"
    corpora["CC3M (bundled sample)"] = measure_knobs(str(cc3m), os.path.join(args.out, "cc3m"), workers=args.workers,
                                                     progress=False)
    lab = {name: synthetic_knobs(CaptionKnobs(**kw), n=args.synthetic, seed=0, workers=args.workers)
           for name, kw in LAB_CELLS.items()}
    minutes = (time.perf_counter() - t0) / 60
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with open(os.path.join(args.out, "knobs.json"), "w", encoding="utf-8") as f:
        json.dump({"corpora": corpora, "lab": lab}, f, indent=1, default=str)
    report = Path(args.report)
    plot(corpora, lab, report.parent / "knobs.png")
    text = f"""# Real captions on the binding lab's knobs

Command: `python experiments/knobs_real.py --synthetic {args.synthetic} --workers {args.workers}` on the
project's CPU machine ({os.cpu_count()} cores, Python {platform.python_version()}), {minutes:.1f} minutes.
Each value is a mean over the captions where the measurement applies, with a 95% t-interval and the number of
captions (`clipcomp stats knobs`; definitions in `clipcomp.analysis.caption_knobs`). The lab rows are the binding
lab's own captions (3–4 objects per scene, {args.synthetic:,} scenes per cell, the cells of
[binding.md](binding.md)) measured by the same code, so they sit on the same axes as the corpora.

- **attributes / object**: adjectival modifiers per named object (noun-chunk head, spaCy `en_core_web_sm`);
- **completeness**: share of the image's annotated object categories the caption names (COCO instances; a noun
  names a category by name, alias or WordNet hyponym — "man" → person);
- **a largest object named**: among captions naming some but not all categories, how often a largest object's
  category is named, beside **chance** (a random choice of as many categories) — the lab's saliency bias is the
  excess over chance;
- **named left to right**: captions naming ≥ 2 single-instance categories that mention them in left-to-right
  order (the lab's `order_shuffle` 0.5 puts half its captions left to right, the rest in random order).

{knobs_table({**corpora, **lab})}
![the corpora and the lab cells on each knob](knobs.png)

CC3M has no object annotations, so only the parser's measurements apply to it.
"""
    from clipcomp.analysis.report import write_report_keeping_reading

    write_report_keeping_reading(str(report), text)
    print(report.read_text())


def plot(corpora: dict, lab: dict, path: Path) -> None:
    from clipcomp.io import new_figure, save_figure

    knobs = [("attributes_per_object", "attributes / named object"), ("completeness", "completeness"),
             ("saliency", "a largest object named − chance"), ("left_to_right", "named left to right")]
    fig, axes = new_figure(1, len(knobs), figsize=(4 * len(knobs), 3.6))
    points = [(n, s, "C0" if not n.startswith("lab") else "C3") for n, s in {**corpora, **lab}.items()]
    for ax, (key, label) in zip(axes, knobs, strict=True):
        for y, (_name, s, colour) in enumerate(points):
            if key == "saliency":
                if s["largest_named"]["mean"] is None:
                    continue
                m = s["largest_named"]["mean"] - s["largest_chance"]["mean"]
                lo = hi = m
            else:
                if s[key]["mean"] is None:
                    continue
                m, (lo, hi) = s[key]["mean"], s[key]["ci"]
            ax.errorbar([m], [y], xerr=[[m - lo], [hi - m]], fmt="o", color=colour, capsize=3)
        ax.set_yticks(range(len(points)))
        ax.set_yticklabels([p[0] for p in points] if key == knobs[0][0] else [])
        ax.set_title(label, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    save_figure(fig, str(path), bbox_inches="tight")


if __name__ == "__main__":
    main()
