"""The quickstart report: one table (r, gap per model and benchmark), the accuracy-vs-PMI curves, and the
per-pair accuracies, as OUT/report.md + OUT/pmi_curve.png + OUT/pmi_pairs.png."""

from __future__ import annotations

import os

from clipcomp.analysis.report import fmt as _f
from clipcomp.io import atomic_write_text

MODEL_LABELS = {"pmi": "trained on the PMI-structured world", "control": "control: trained on uniform co-occurrence",
                "pmi+paste-ft": "PMI world, then fine-tuned with pasted-object augmentation"}
BENCH_LABELS = {"pairs": "two-object scenes (GenPairs in miniature)",
                "paste": "pasted objects (ImageNet-Paste in miniature)"}


def _ci(c) -> str:
    from clipcomp.analysis.report import fmt_ci

    return fmt_ci(c, 2)


def headline(summary: dict) -> list[dict]:
    rows = []
    for model, per_bench in summary["results"].items():
        for bench, per_stats in per_bench.items():
            a = per_stats["pmi"]["analysis"]
            g = a.get("group_level") or {}
            rows.append({"model": model, "benchmark": bench, "accuracy": a["accuracy"], "r": a["pearson"],
                         "r_ci": a["pearson_ci"], "r_pairs": g.get("pearson"), "gap": a["gap"], "gap_ci": a["gap_ci"],
                         "top": a["top_accuracy"], "bottom": a["bottom_accuracy"], "tail_k": a["tail_k"],
                         "unseen": a["unseen_accuracy"], "n_items": a["n_items"],
                         "at_chance": bool(a.get("at_chance")), "chance": a.get("chance")})
    return rows


def _panels(summary: dict, path: str, draw, title, xlabel: str, ylabel: str) -> None:
    """One panel per benchmark: `draw(ax, bench)` plots the models; shared axes, legend and saving."""
    from clipcomp.io import new_figure, save_figure

    benches = list(next(iter(summary["results"].values())))
    fig, axes = new_figure(1, len(benches), figsize=(6.0 * len(benches), 4.3), dpi=130, squeeze=False)
    for ax, bench in zip(axes[0], benches, strict=True):
        draw(ax, bench)
        ax.set_title(title(BENCH_LABELS.get(bench, bench)), fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def plot(summary: dict, path: str) -> None:
    """Accuracy per co-occurrence level (equal-count PMI bins, Wilson CIs) for every model."""

    def draw(ax, bench):
        for model, per_bench in summary["results"].items():
            a = per_bench[bench]["pmi"]["analysis"]
            bins = a["bins"]
            x = [b["pmi_mean"] for b in bins]
            y = [b["accuracy"] for b in bins]
            err = [[b["accuracy"] - b["ci_low"] for b in bins], [b["ci_high"] - b["accuracy"] for b in bins]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3,
                        label=f"{model}: r = {_f(a['pearson'], 2)}, gap = {_f(a['gap'] * 100, 1)} pts")
            if a["unseen_accuracy"] is not None:
                ax.plot([min(x) - 0.6], [a["unseen_accuracy"]], marker="x", markersize=9,
                        color=ax.lines[-1].get_color())

    _panels(summary, path, draw, lambda label: label,
            "PMI(class, partner) in the PMI world's captions\n(one point per co-occurrence level; × = never together)",
            "zero-shot accuracy on the class shape")


def plot_pairs(summary: dict, path: str) -> None:
    """Accuracy of every (class, partner) pair against its PMI; never-together pairs left of a dotted line."""

    def draw(ax, bench):
        lo = min((p["pmi"] for r in summary["results"].values() for p in r[bench]["pmi"]["pairs"]
                  if p["pmi"] is not None), default=0.0)
        for model, per_bench in summary["results"].items():
            ps = per_bench[bench]["pmi"]["pairs"]
            x = [p["pmi"] if p["pmi"] is not None else lo - 0.8 for p in ps]
            ax.scatter(x, [p["accuracy"] for p in ps], s=18, alpha=0.75, label=model)
        ax.axvline(lo - 0.4, color="gray", linewidth=0.8, linestyle=":")

    _panels(summary, path, draw, lambda label: f"per (class, partner) pair — {label}",
            "PMI (points left of the dotted line: never together)", "accuracy of the pair")


def markdown(cfg, summary: dict) -> str:
    rows = headline(summary)
    c = summary["config"]
    lines = ["# PMI in miniature — clipcomp quickstart", "",
             f"A world of {len(c['classes'])} class shapes ({', '.join(c['classes'])}) and "
             f"{len(c['partners'])} partner shapes ({', '.join(c['partners'])}); every training scene holds one "
             "of each. In the PMI world a class's "
             f"partners have weights 1, {c['decay']}, {c['decay']}², … and {c['never']} partner(s) per class never "
             "appear with it; all shapes are equally frequent. The control world has uniform co-occurrence. "
             f"{c['n_train']:,} training scenes per world, {c['model']} trained {c['steps']} steps × "
             f"{c['batch_size']}, "
             f"seed {c['seed']}. Test: {c['per_pair']} scenes per (class, partner) pair per benchmark; zero-shot "
             "classification of the class shape among the classes. PMI is looked up in the ConceptStats built "
             "from the PMI world's captions.", "", *gates_section(cfg, summary),
             "| model | benchmark | accuracy | r (item, 95% CI) | r over pairs | top−bottom 5% gap (95% CI) | "
             "never-together pairs |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["at_chance"]:  # the accuracy's CI covers chance: r and the gap would only measure noise
            lines.append(f"| {r['model']} | {r['benchmark']} | {_f(r['accuracy'])} (at chance {_f(r['chance'])}) | "
                         "n/a (at chance) | n/a | n/a (at chance) | " f"{_f(r['unseen'])} |")
            continue
        lines.append(f"| {r['model']} | {r['benchmark']} | {_f(r['accuracy'])} | {_f(r['r'])} {_ci(r['r_ci'])} | "
                     f"{_f(r['r_pairs'])} | {_f(r['gap'])} ({_f(r['top'])} vs {_f(r['bottom'])}) {_ci(r['gap_ci'])} | "
                     f"{_f(r['unseen'])} |")
    lines += ["", "Models: " + "; ".join(f"**{m}** — {MODEL_LABELS.get(m, m)}" for m in summary["results"]) + ".", ""]
    ctl = summary["results"].get("control")
    if ctl:
        own = [f"{b}: r = {_f(v['own']['analysis']['pearson'])}" for b, v in ctl.items() if "own" in v]
        if own:
            lines += ["Control against its own (near-constant) PMI: " + ", ".join(own) + ".", ""]
    lines += ["![accuracy vs PMI](pmi_curve.png)", "", "![per-pair accuracy](pmi_pairs.png)", "",
              "Timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in summary["timings_s"].items()) + ".", ""]
    env = summary.get("environment")
    if env:
        lines += [f"Environment: torch {env['torch']}, {env['torch_threads']} torch thread(s), {env['machine']} "
                  f"({env['cpu_count']} CPUs). Float sums depend on the thread count and the CPU's kernels: the "
                  "same seed and settings give these numbers exactly only with the same count on the same kind of "
                  "CPU.", ""]
    return "\n".join(lines)


def gates_section(cfg, summary: dict) -> list[str]:
    """The gate table (pipelines.miniature.gates, the project's standard 0.9 / 0.5) and, when a gate fails, a line
    saying the table below is not a result at that standard (the quickstart is the demo; experiments stop)."""
    from clipcomp.analysis.gates import gate_table
    from clipcomp.pipelines.miniature.gates import quickstart_gates

    gates = quickstart_gates(summary, cfg.out, 0.9, 0.5)
    failed = [g for g in gates if not g.passed]
    lines = ["## Gates: did each model learn its base task?", "",
             "Accuracy on the model's own training world (≥ 0.9) and no collapse (top prediction < 0.5).", "",
             gate_table(gates)]
    if failed:
        lines += [f"**{len(failed)} of {len(gates)} gates failed** (e.g. {failed[0].name}, {failed[0].domain}: "
                  f"{failed[0].value:.3f}): the models have not learned the base task at that standard, so the "
                  "table below shows the pipeline at work, not evidence (more `--steps`: docs/results/"
                  "pmi_miniature.md).", ""]
    return lines + ["## Accuracy vs PMI", ""]


def write_report(cfg, summary: dict) -> dict[str, str]:
    plot(summary, os.path.join(cfg.out, "pmi_curve.png"))
    plot_pairs(summary, os.path.join(cfg.out, "pmi_pairs.png"))
    md = os.path.join(cfg.out, "report.md")
    atomic_write_text(md, markdown(cfg, summary))
    return {"report": md, "plot": os.path.join(cfg.out, "pmi_curve.png")}
