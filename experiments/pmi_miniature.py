"""Run `clipcomp quickstart` (default settings) over several seeds and write docs/results/pmi_miniature.md.

    python experiments/pmi_miniature.py [--seeds 0 1 2] [--out runs/pmi-miniature]

Each seed changes the co-occurrence design's partner order, the training corpus, the test scenes and the model
initialization. Finished stages are reused, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREDICTED = ("in the world whose captions pair shapes with set co-occurrences, zero-shot accuracy on a class rises "
             "with the PMI of the class and the object beside it (r > 0; the top 5% of items by PMI above the bottom "
             "5%), and classes seen with a partner that never co-occurred in training are hardest; with uniform "
             "co-occurrence (the control) accuracy does not follow PMI (Qu & Xie 2025: r = 0.97 and a 14-point "
             "top-bottom gap for CLIP on LAION-400M).")


def mean_ci(values):
    from clipcomp.pipelines.lab import mean_ci as mc

    vals = [v for v in values if v is not None and math.isfinite(v)]
    return mc(vals) if vals else (float("nan"), float("nan"))


def paired(rows: list[dict], seeds: list[int]) -> list[str]:
    """PMI-world model minus control, paired by seed (each seed shares the test items and the design), with a 95%
    t-interval and a p-value over seeds — the independent units."""
    from clipcomp.pipelines.lab import paired_difference

    by = {(r["seed"], r["model"], r["benchmark"]): r for r in rows}
    out = ["## PMI-world model − control, paired by seed", "",
           "| benchmark | r (item) | r over pairs | top−bottom 5% gap | never-together acc. |", "|---|---|---|---|---|"]
    for bench in ("pairs", "paste"):
        if not all((s, m, bench) in by for s in seeds for m in ("pmi", "control")):
            continue
        cells = [paired_difference([by[(s, "control", bench)][k] for s in seeds],
                                   [by[(s, "pmi", bench)][k] for s in seeds])
                 for k in ("r", "r_pairs", "gap", "unseen")]
        out.append(f"| {bench} | " + " | ".join(cells) + " |")
    return out + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="runs/pmi-miniature")
    ap.add_argument("--report", default=str(ROOT / "docs" / "results" / "pmi_miniature.md"))
    ap.add_argument("--note", default="", help="A sentence added under the command line (e.g. first-pass times).")
    ap.add_argument("--steps", type=int, default=1000, help="training steps per model (quickstart's default 1000)")
    ap.add_argument("--run-dir", default=None, help="each seed's quickstart folder, with {seed} (default: "
                    "OUT/seed-{seed}); e.g. runs/qs5000-s{seed} to reuse `clipcomp quickstart -o runs/qs5000-s0 ...`")
    ap.add_argument("--min-accuracy", type=float, default=0.9,
                    help="gate: accuracy on the model's own training world (the project's standard 0.9)")
    ap.add_argument("--max-collapse", type=float, default=0.5, help="gate: top-prediction share per benchmark")
    args = ap.parse_args()

    from clipcomp.analysis.gates import gate_table
    from clipcomp.analysis.report import fmt as _f
    from clipcomp.analysis.report import write_report_keeping_reading
    from clipcomp.pipelines.miniature.gates import quickstart_gates
    from clipcomp.pipelines.miniature.pipeline import QuickstartConfig, run
    from clipcomp.pipelines.miniature.report import headline

    os.chdir(ROOT)
    print("Predicted by the paper (stated before any result): " + PREDICTED, flush=True)
    rows, minutes, gates = [], {}, []
    for seed in args.seeds:
        out = (args.run_dir or os.path.join(args.out, "seed-{seed}")).format(seed=seed)
        t0 = time.perf_counter()
        summary = run(QuickstartConfig(out=out, seed=seed, steps=args.steps), progress=False)
        minutes[seed] = summary["seconds"] / 60
        print(f"seed {seed}: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
        for g in quickstart_gates(summary, out, args.min_accuracy, args.max_collapse):
            gates.append(dataclasses.replace(g, domain=f"seed {seed}: {g.domain}"))
        for r in headline(summary):
            rows.append({"seed": seed, **r})
    gates_md = gate_table(gates)
    print("## Gates: did each model learn its base task?\n\n" + gates_md, flush=True)
    report = Path(args.report)
    failed = [g for g in gates if not g.passed]
    run_dir = f" --run-dir '{args.run_dir}'" if args.run_dir else ""
    command = (f"`python experiments/pmi_miniature.py --seeds {' '.join(map(str, args.seeds))} --steps {args.steps}"
               f"{run_dir}`"
               f" (`clipcomp quickstart --seed S --steps {args.steps}` per seed) on the project's CPU machine "
               f"({os.cpu_count()} cores, Python {platform.python_version()})")
    head = ["# PMI in miniature: accuracy follows co-occurrence, causally", "", f"Command: {command}.", "",
            f"**Predicted by the paper (stated before the results):** {PREDICTED}", "",
            "## Gates: did each model learn its base task?", "",
            "Base task: recognizing the class shape in scenes of the model's own training world (accuracy on the "
            "benchmark weighted by that world's co-occurrence joint; `clipcomp.pipelines.miniature.gates`), at "
            f"least {args.min_accuracy}; and no collapse (top prediction < {args.max_collapse} of a benchmark).",
            "", gates_md]
    if failed:
        g = failed[0]
        line = (f"gate failed: {g.name} ({g.domain}) = {g.value:.3f}, needs {g.direction} {g.threshold:.3f}; "
                f"{len(failed)} of {len(gates)} gates failed — no effect is reported")
        report.parent.mkdir(parents=True, exist_ok=True)
        write_report_keeping_reading(str(report), "\n".join(head + [f"**{line}.**", ""]) + "\n")
        raise SystemExit(f"error: {line}")
    cfg = summary["config"]
    report.parent.mkdir(parents=True, exist_ok=True)
    first = (args.run_dir or os.path.join(args.out, "seed-{seed}")).format(seed=args.seeds[0])
    shutil.copy(os.path.join(first, "pmi_curve.png"), report.parent / "pmi_miniature.png")
    shutil.copy(os.path.join(first, "pmi_pairs.png"), report.parent / "pmi_miniature_pairs.png")
    lines = head + ["## Results", "", "Minutes per seed (three models each; stages found on disk are reused, so a "
                    "re-run only re-reads results): "
                    + ", ".join(f"seed {s}: {m:.1f}" for s, m in minutes.items()) + ". " + args.note, "",
             f"World: {len(cfg['classes'])} class shapes × {len(cfg['partners'])} partner shapes, one of each per "
             f"64×64 scene. PMI world: a class's partners in seeded order have weights 1, {cfg['decay']}, "
             f"{cfg['decay']}², … and {cfg['never']} never appears with it; the joint is balanced so every shape "
             "is equally frequent (only co-occurrence differs). Control: uniform co-occurrence. Captions name the "
             f"second object with p = {cfg['completeness']}, attributes with p = {cfg['attribute_density']}. "
             f"{cfg['n_train']:,} training scenes per world; {cfg['model']} trained from scratch {cfg['steps']} "
             f"steps × {cfg['batch_size']}; fine-tuning: {cfg['finetune_steps']} steps on {cfg['finetune_n']:,} "
             "class scenes with a random partner pasted (1/10 of the area, colours disjoint from the evaluation "
             "pastes) and class-only captions. Test: "
             f"{cfg['per_pair']} scenes per (class, partner) pair per benchmark "
             f"({len(cfg['classes']) * len(cfg['partners']) * cfg['per_pair']:,} items); "
             "zero-shot classification of the class shape among the classes (chance "
             f"{1 / len(cfg['classes']):.3f}). r is Pearson over items with a finite PMI (PMI from the ConceptStats "
             "of the PMI world's captions, built by the statistics engine); the gap is accuracy of the top 5% of "
             "items by PMI minus the bottom 5%; never-together pairs (PMI = −inf) are reported apart.", "",
             "## Per seed", "",
             "| seed | model | benchmark | accuracy | r (item) [95% CI] | r over pairs | top−bottom 5% gap [95% CI] | "
             "never-together acc. |", "|---:|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['model']} | {r['benchmark']} | {_f(r['accuracy'])} | {_f(r['r'])} "
                     f"[{_f(r['r_ci'][0], 2)}, {_f(r['r_ci'][1], 2)}] | {_f(r['r_pairs'])} | {_f(r['gap'])} "
                     f"[{_f(r['gap_ci'][0], 2)}, {_f(r['gap_ci'][1], 2)}] | {_f(r['unseen'])} |")
    lines += ["", f"## Mean over {len(args.seeds)} seeds (± half-width of a 95% t-interval)", "",
              "| model | benchmark | accuracy | r (item) | r over pairs | top−bottom 5% gap | never-together acc. |",
              "|---|---|---:|---:|---:|---:|---:|"]
    order = {"pmi": 0, "control": 1, "pmi+paste-ft": 2}
    keys = sorted({(r["model"], r["benchmark"]) for r in rows}, key=lambda k: (order.get(k[0], 9), k[0], k[1]))
    agg = {}
    for k in keys:
        sub = [r for r in rows if (r["model"], r["benchmark"]) == k]
        cells = []
        for name in ("accuracy", "r", "r_pairs", "gap", "unseen"):
            m, h = mean_ci([r[name] for r in sub])
            agg[(k, name)] = m
            cells.append(f"{_f(m)} ± {_f(h)}" if math.isfinite(h) else _f(m))  # one seed: no interval
        lines.append(f"| {k[0]} | {k[1]} | " + " | ".join(cells) + " |")
    lines += ["", *paired(rows, args.seeds)]
    lines += [f"![accuracy vs PMI, seed {args.seeds[0]}](pmi_miniature.png)", "",
              f"![per-pair accuracy, seed {args.seeds[0]}](pmi_miniature_pairs.png)", ""]
    write_report_keeping_reading(str(report), "\n".join(lines) + "\n")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "rows.json"), "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=2, default=float)
    print(report.read_text())


if __name__ == "__main__":
    main()
