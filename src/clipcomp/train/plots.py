"""Plots of training metrics from `metrics.jsonl` files (e.g. the gradient shares losses log)."""

from __future__ import annotations

import json

import numpy as np


def read_metric(path: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one metric in a metrics.jsonl (lines without it are skipped)."""
    steps, vals = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if key in row and row[key] is not None:
                steps.append(row["step"])
                vals.append(row[key])
    return np.array(steps), np.array(vals, dtype=float)


def plot_metric(groups: dict[str, list[str]], key: str, path: str, title: str, ylabel: str | None = None) -> str:
    """One line per group (mean over its runs at each logged step; the band is the min–max over runs)."""
    from clipcomp.io import new_figure, save_figure

    fig, ax = new_figure(figsize=(7, 4))
    for label, files in groups.items():
        series = [read_metric(f, key) for f in files]
        series = [s for s in series if s[0].size]
        if not series:
            continue
        steps = series[0][0]
        n = min(s[0].size for s in series)
        vals = np.stack([s[1][:n] for s in series])
        ax.plot(steps[:n], vals.mean(axis=0), label=label)
        if len(series) > 1:
            ax.fill_between(steps[:n], vals.min(axis=0), vals.max(axis=0), alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel or key)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    return path
