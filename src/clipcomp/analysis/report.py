"""Reports for the PMI analyses: a PNG curve (accuracy vs PMI bins with CI bars) and a Markdown summary."""

from __future__ import annotations

import json
import math
import os

from clipcomp.analysis.pmi import PMIAnalysis
from clipcomp.io import atomic_write_json, atomic_write_text


def fmt(v, digits: int = 3) -> str:
    """A number for a report: fixed digits, `n/a` for None, NaN and infinities."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def fmt_ci(ci, digits: int = 3) -> str:
    return f"[{fmt(ci[0], digits)}, {fmt(ci[1], digits)}]"


def plot_curve(res: PMIAnalysis, path: str, title: str, ylabel: str = "accuracy",
               extra: list[tuple[str, list[dict]]] | None = None) -> str:
    """Accuracy per equal-count PMI bin, Wilson 95% CIs as error bars; r and the 5% gap in the legend."""
    from clipcomp.io import new_figure, save_figure

    fig, ax = new_figure(figsize=(6.4, 4.2), dpi=150)
    if res.at_chance:
        label = f"{ylabel} (at chance {fmt(res.chance, 2)}: r and gap not meaningful)"
    else:
        label = (f"{ylabel} (r = {fmt(res.pearson, 2)}, top−bottom {int(res.settings.get('tail', 0.05) * 100)}% "
                 f"gap = {fmt(res.gap * 100, 1)} pts)")
    series = [(label, res.bins)]
    series += extra or []
    for label, bins in series:
        if not bins:
            continue
        x = [b["pmi_mean"] for b in bins]
        y = [b["accuracy"] for b in bins]
        # CIs of non-binary scores or rounding can put the mean a hair outside its interval: never a negative bar
        err = [[max(0.0, b["accuracy"] - b["ci_low"]) for b in bins],
               [max(0.0, b["ci_high"] - b["accuracy"]) for b in bins]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, linewidth=1.5, label=label)
    ax.set_xlabel("PMI of the concept pair (equal-count bins, bin mean)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    save_figure(fig, path)
    return path


def markdown(res: PMIAnalysis, title: str, plot_name: str | None, context: dict | None = None) -> str:
    lines = [f"# {title}", ""]
    if context:
        for k, v in context.items():
            lines.append(f"- **{k}**: {v}")
        lines.append("")
    lines += [
        f"Items: {res.n_items:,}; with a PMI: {res.n_used:,}; excluded: "
        + (", ".join(f"{k} {v:,}" for k, v in res.excluded.items()) or "none") + ".",
        "",
        "| measure | value | 95% CI (bootstrap) |",
        "|---|---:|---|",
        f"| accuracy | {fmt(res.accuracy)} | |",
        f"| Pearson r (PMI, correct) | {fmt(res.pearson)} | {fmt_ci(res.pearson_ci)} |",
        f"| Spearman ρ | {fmt(res.spearman)} | {fmt_ci(res.spearman_ci)} |",
        f"| partial r, controlling concept frequencies | {fmt(res.partial_r)} | {fmt_ci(res.partial_r_ci)} |",
        f"| top − bottom {int(res.settings.get('tail', 0.05) * 100)}% accuracy gap (k = {res.tail_k}) | "
        f"{fmt(res.gap)} ({fmt(res.top_accuracy)} vs {fmt(res.bottom_accuracy)}) | {fmt_ci(res.gap_ci)} |",
        f"| r over bins (bin mean PMI vs bin accuracy) | {fmt(res.bin_pearson)} | |",
    ]
    if res.group_level:
        g = res.group_level
        lines.append(f"| r over concept pairs ({g['n_groups']} pairs) | {fmt(g['pearson'])} | |")
    if res.unseen_accuracy is not None:
        lines.append(f"| accuracy on never-co-occurring pairs | {fmt(res.unseen_accuracy)} | |")
    if res.chance is not None:
        lines[lines.index(f"| accuracy | {fmt(res.accuracy)} | |")] = (
            f"| accuracy (chance {fmt(res.chance)}) | {fmt(res.accuracy)} | {fmt_ci(res.accuracy_ci)} (Wilson) |")
    if res.at_chance:
        lines += ["", f"**At chance**: the accuracy's 95% CI {fmt_ci(res.accuracy_ci)} covers the chance level "
                      f"{fmt(res.chance)}, so the correlations and the top−bottom gap above measure noise, not an "
                      "effect of PMI."]
    lines += ["", "## Accuracy by PMI bin (equal-count bins, Wilson 95% CI)", "",
              "| bin | n | PMI range | mean PMI | accuracy | 95% CI |", "|---:|---:|---|---:|---:|---|"]
    for b in res.bins:
        ci = f"[{fmt(b['ci_low'])}, {fmt(b['ci_high'])}]"
        lines.append(f"| {b['bin']} | {b['n']} | {fmt(b['pmi_min'], 2)} … {fmt(b['pmi_max'], 2)} | "
                     f"{fmt(b['pmi_mean'], 2)} | {fmt(b['accuracy'])} | {ci} |")
    if plot_name:
        lines += ["", f"![accuracy vs PMI]({plot_name})"]
    lines += ["", f"Settings: `{json.dumps(res.settings)}`", ""]
    return "\n".join(lines)


def write_report(res: PMIAnalysis, out_dir: str, title: str, context: dict | None = None,
                 extra_json: dict | None = None) -> dict[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    png = plot_curve(res, os.path.join(out_dir, "pmi_curve.png"), title)
    md_path = os.path.join(out_dir, "report.md")
    atomic_write_text(md_path, markdown(res, title, os.path.basename(png), context))
    js = os.path.join(out_dir, "analysis.json")
    atomic_write_json(js, {**res.as_dict(), **(extra_json or {}), "context": context or {}})
    return {"report": md_path, "plot": png, "json": js}


READING_MARK = "<!-- reading: written by a person after looking at the tables above; reruns keep it -->"


def write_report_keeping_reading(path: str, tables_md: str) -> str:
    """Write an experiment report: the tables a script computed, then the reading that a person wrote after
    looking at them (kept from the existing report below READING_MARK). Scripts never write interpretation."""
    import os

    from clipcomp.io import atomic_write_text

    reading = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = f.read()
        if READING_MARK in old:
            reading = old.split(READING_MARK, 1)[1].strip("\n")
    text = tables_md.rstrip("\n") + "\n\n" + READING_MARK + "\n" + (reading + "\n" if reading else "")
    atomic_write_text(path, text)
    return path
