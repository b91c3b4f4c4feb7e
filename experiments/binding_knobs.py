"""Run the binding-knob sweep (experiments/binding_knobs.yaml) and write docs/results/binding.md.

    python experiments/binding_knobs.py [--config experiments/binding_knobs.yaml]

Cells: (a) dense, complete, unbiased captions; (b) low attribute density; (c) incomplete captions with
saliency bias; (d) (c) with 4x the batch size; (e) (c) with hard-negative captions (NegCLIP loss).
Finished runs are reused, so an interrupted sweep continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "experiments" / "binding_knobs.yaml"))
    ap.add_argument("--report", default=str(ROOT / "docs" / "results" / "binding.md"))
    args = ap.parse_args()

    from clipcomp.pipelines.lab import load_sections, sweep

    t0 = time.perf_counter()
    os.chdir(ROOT)
    res = sweep(args.config, progress=False)
    minutes = (time.perf_counter() - t0) / 60
    raw = load_sections(args.config)
    out = Path(raw["sweep"]["out"])
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "binding.png", report.parent / "binding.png")
    rows = res["rows"]
    per_seed = "\n".join(f"| {r['cell']} | {r['seed']} | {r['binding_accuracy']:.3f} | "
                         f"{r['replace_attribute_acc']:.3f} | {r['replace_object_acc']:.3f} | "
                         f"{r['t2i_swap_attribute_acc']:.3f} | {r['train_seconds'] / 60:.1f} |" for r in rows)
    text = f"""# Binding vs data knobs (reproduction of Gurung, Hoffmann & Brox 2025)

Command: `python experiments/binding_knobs.py` (config `experiments/binding_knobs.yaml`), on the project's
CPU machine ({os.cpu_count()} cores, Python {platform.python_version()}); the sweep took {minutes:.0f} minutes
(runs finished earlier are reused).

World: 3–4 objects per 64×64 scene, 8 shapes × 8 colours × 2 sizes, distinct shapes and colours per scene.
Model `clipcomp-micro` (ViT 64 px / patch 16, width 96, 3+3 layers) trained from scratch with InfoNCE,
{raw['train']['steps']} steps in every cell, AdamW + cosine, seeds {raw['sweep']['seeds']} (the seed sets
both the data and the training). Probes on {raw['sweep']['eval_scenes']} held-out scenes per run; every
probe is a two-way choice (chance = 0.5); "binding" is image→text with the colours of two objects swapped.
Values are means over seeds ± the half-width of a 95% t-interval.

{res['table']}
![binding accuracy per cell](binding.png)

Per run:

| cell | seed | binding (swap, i→t) | replace attr. | replace object | swap, t→i | train min |
|---|---:|---:|---:|---:|---:|---:|
{per_seed}

Cells: (a) dense, complete, unbiased captions; (b) attribute density 0.25 (each attribute named with p = 0.25);
(c) incomplete captions (each non-anchor object named with p = 0.2) with saliency bias 1.0 (the always-named
object is a largest one); (d) = (c) with 4× the batch size (512); (e) = (c) with one hard-negative caption
per item in the batch (NegCLIP loss): two named colours swapped, or, when the caption names fewer than two
colours (most captions in (c)), a named colour replaced.

Raw rows: `{out}/results.parquet`; per-run metrics, checkpoints and `metrics.jsonl` under `{out}/runs/`.
"""
    from clipcomp.analysis.report import write_report_keeping_reading

    write_report_keeping_reading(str(report), text + "\n" + interpretation(res["summary"]) + "\n")
    print(report.read_text())
    print(json.dumps(res["summary"], indent=1)[:2000])


def interpretation(summary: list[dict]) -> str:
    by = {e["cell"][0]: e for e in summary}
    if not all(k in by for k in "abcde"):
        return ""

    def v(k):
        return by[k]["binding_accuracy"]

    lines = ["## What we measured", ""]
    lines.append(f"- (a) dense, complete captions: binding {v('a'):.3f}.")
    lines.append(f"- (b) low attribute density: {v('b'):.3f} ({v('b') - v('a'):+.3f} vs (a)).")
    lines.append(f"- (c) incomplete + salient: {v('c'):.3f} ({v('c') - v('a'):+.3f} vs (a)).")
    lines.append(f"- (d) (c) with 4× batch: {v('d'):.3f} ({v('d') - v('c'):+.3f} vs (c)).")
    lines.append(f"- (e) (c) with hard negatives: {v('e'):.3f} ({v('e') - v('c'):+.3f} vs (c)).")
    agree = v("a") > max(v("b"), v("c")) and v("d") < v("a") and v("e") < v("a")
    lines.append("")
    lines.append(f"Paper's predicted ordering ((a) above (b) and (c); (d) and (e) below (a)) met by these means: "
                 f"{'yes' if agree else 'no'}.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
